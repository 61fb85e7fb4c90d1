package manifest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SessionsPrefix is the key prefix under which every session's objects
// live: "sessions/<session>/...".
const SessionsPrefix = "sessions/"

const (
	savesDir  = "/saves/"
	keySuffix = ".json"
	// invBase minus a save's Unix milliseconds is the key's inverted time.
	invBase   = 999999999999999
	invDigits = 15
	// idTimeLayout is the time part of a save id.
	idTimeLayout = "20060102T150405.000"
	idRandHex    = 6
	maxSession   = 128
)

// NewID returns a new save id for a save taken at t: its UTC time to the
// millisecond and 6 random hex digits, like "20250112T153445.123Z-1a2b3c".
// t must lie in the years 1970 to 9999.
func NewID(t time.Time) string {
	var r [idRandHex / 2]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails
	return t.UTC().Format(idTimeLayout) + "Z-" + hex.EncodeToString(r[:])
}

// IDTime returns the time of a save id (UTC, milliseconds).
func IDTime(id string) (time.Time, error) {
	bad := func(why string) error {
		return fmt.Errorf("parse save id %q: %w: %s", clip(id), ErrBadID, why)
	}
	const timeLen = len(idTimeLayout)
	if len(id) != timeLen+2+idRandHex || id[timeLen:timeLen+2] != "Z-" {
		return time.Time{}, bad(`want the form 20250112T153445.123Z-1a2b3c`)
	}
	if !isLowerHex(id[timeLen+2:], idRandHex) {
		return time.Time{}, bad("suffix is not 6 lower-case hex digits")
	}
	t, err := time.Parse(idTimeLayout, id[:timeLen])
	if err != nil || t.Format(idTimeLayout) != id[:timeLen] {
		return time.Time{}, bad("bad time")
	}
	if ms := t.UnixMilli(); ms < 0 || ms > invBase {
		return time.Time{}, bad("time out of range")
	}
	return t, nil
}

// ValidSessionName checks a session name: 1 to 128 characters of
// A-Z a-z 0-9 . _ -, and not "." or "..".
func ValidSessionName(name string) error {
	if name == "" || len(name) > maxSession {
		return fmt.Errorf("session name %q: %w: want 1 to %d characters", clip(name), ErrBadSession, maxSession)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("session name %q: %w: only A-Z a-z 0-9 . _ - allowed", clip(name), ErrBadSession)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("session name %q: %w", name, ErrBadSession)
	}
	return nil
}

// SessionPrefix is the key prefix of everything of a session:
// "sessions/<session>/".
func SessionPrefix(session string) string { return SessionsPrefix + session + "/" }

// ClaimKey is the key of a session's writer claim, owned by package claim.
// Package catalog reads only what it needs to tell committed saves.
func ClaimKey(session string) string { return SessionPrefix(session) + "claim.json" }

// SavesPrefix is the key prefix of a session's manifests:
// "sessions/<session>/saves/".
func SavesPrefix(session string) string { return SessionsPrefix + session + savesDir }

// inv is the inverted, zero-padded millisecond time used in keys. ms is
// clamped to 0..invBase.
func inv(ms int64) string {
	ms = min(max(ms, 0), invBase)
	s := strconv.FormatInt(invBase-ms, 10)
	return strings.Repeat("0", invDigits-len(s)) + s
}

// Key returns the store key of a save's manifest:
// sessions/<session>/saves/<inv>-<id>.json.
func Key(session, id string) (string, error) {
	if err := ValidSessionName(session); err != nil {
		return "", fmt.Errorf("manifest key: %w", err)
	}
	t, err := IDTime(id)
	if err != nil {
		return "", fmt.Errorf("manifest key: %w", err)
	}
	return SavesPrefix(session) + inv(t.UnixMilli()) + "-" + id + keySuffix, nil
}

// KeyAt returns the key to list session's saves after (StartAfter) to find
// the newest save taken at or before t first: keys of saves at or before t
// have an inverted time >= inv(t), and those equal to it sort after the
// bare inv(t). t is clamped to the times keys can hold (1970 to about
// the year 33658): a caller wanting no save for t before 1970 checks that.
func KeyAt(session string, t time.Time) string {
	return SavesPrefix(session) + inv(t.UnixMilli())
}

// ParseKey splits a manifest key into session and save id, checking that
// the inverted time agrees with the id.
func ParseKey(key string) (session, id string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("parse manifest key %q: %w: %s", clip(key), ErrBadKey, why)
	}
	rest, ok := strings.CutPrefix(key, SessionsPrefix)
	if !ok {
		return "", "", bad("not under " + SessionsPrefix)
	}
	session, name, ok := strings.Cut(rest, savesDir)
	if !ok {
		return "", "", bad("not under sessions/<session>/saves/")
	}
	if err := ValidSessionName(session); err != nil {
		return "", "", bad(err.Error())
	}
	name, ok = strings.CutSuffix(name, keySuffix)
	if !ok || len(name) < invDigits+1 || name[invDigits] != '-' {
		return "", "", bad("want <inv>-<id>.json")
	}
	id = name[invDigits+1:]
	t, err := IDTime(id)
	if err != nil {
		return "", "", bad(err.Error())
	}
	if name[:invDigits] != inv(t.UnixMilli()) {
		return "", "", bad("inverted time does not match the id")
	}
	return session, id, nil
}
