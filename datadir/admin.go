package datadir

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// AdminPasswordFile holds the admin password serve generates when none is
// configured (mode 0600).
const AdminPasswordFile = "admin-password"

// LockFile is the file a process locks (flock) while it owns a data dir.
const LockFile = ".lock"

// ErrInUse: another process holds the data dir's lock.
var ErrInUse = errors.New("data dir in use by another pitr process")

// kept are the entries of a data dir that belong to the directory, not to
// the session in it: installing a restored session keeps them, and a data
// dir holding only them counts as empty.
var kept = []string{AdminPasswordFile, DivergedDir, LockFile}

// AdminPassword returns the admin password kept in dir, generating and
// storing one (mode 0600, written atomically) when there is none; created
// says it was generated now. The directory is created if missing.
func AdminPassword(dir string) (pw string, created bool, err error) {
	path := filepath.Join(dir, AdminPasswordFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		pw = strings.TrimSpace(string(b))
		if pw == "" {
			return "", false, fmt.Errorf("admin password file %s is empty (delete it to have a new one generated)", path)
		}
		return pw, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read admin password file: %w", err)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, fmt.Errorf("generate admin password: %w", err)
	}
	pw = base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("write admin password file: %w", err)
	}
	if err := writeFileAtomic(dir, AdminPasswordFile, []byte(pw+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return pw, true, nil
}

// ReadAdminPassword returns the admin password kept in dir, or "" when
// there is none.
func ReadAdminPassword(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, AdminPasswordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read admin password file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
