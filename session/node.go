// Package session owns the collaborative graph a pitr server hosts: nodes
// (id, type, owner, deps, data and a server-assigned per-node version), the
// users online, ownership rules and the waiting → active state, plus the
// graph's deterministic, versioned binary encoding. It knows nothing of
// storage or HTTP.
package session

import (
	"errors"
	"fmt"
)

// Common is the owner of nodes that belong to nobody in particular.
const Common = "COMMON"

// Limits on names.
const (
	MaxIDLen   = 128
	MaxDeps    = 4096
	MaxTypeLen = 128
)

// Errors returned by Session methods, wrapped with details. The server maps
// them to HTTP statuses.
var (
	ErrInvalid   = errors.New("invalid input")
	ErrNotFound  = errors.New("not found")
	ErrForbidden = errors.New("forbidden")
	ErrConflict  = errors.New("conflict")
	ErrCorrupt   = errors.New("corrupt graph encoding")
	// ErrFenced: another server took over the session, so this one refuses
	// every edit (see Session.Fence).
	ErrFenced = errors.New("fenced")
	// ErrAdminOnly wraps ErrForbidden for what only an admin may do.
	ErrAdminOnly = fmt.Errorf("%w (needs the admin password)", ErrForbidden)
)

// Node is one node of the graph. A *Node held by a Session is never modified:
// every change replaces it with a new value (copy-on-write), so snapshots can
// share nodes with the live graph.
type Node struct {
	ID      string
	Type    string
	Owner   string
	Deps    []string
	Data    []byte
	Version uint64
}

// NodeInput is what a client sends to create or replace a node. Put keeps
// Data as it is: the caller gives it up.
type NodeInput struct {
	Type  string
	Owner string // "" means Common
	Deps  []string
	Data  []byte
}

// Actor is who asks for a change: a user name (may be empty for anonymous
// callers) and whether they hold the admin password.
type Actor struct {
	User  string
	Admin bool
}

// ValidID reports whether id is a valid node id: 1 to 128 characters of
// A-Za-z0-9._-
func ValidID(id string) error {
	if err := validName(id, MaxIDLen); err != nil {
		return fmt.Errorf("node id %q: %w", truncate(id), err)
	}
	return nil
}

// ValidUser reports whether name is a valid user name (same alphabet as node
// ids, and not the reserved owner COMMON).
func ValidUser(name string) error {
	if err := validName(name, MaxIDLen); err != nil {
		return fmt.Errorf("user name %q: %w", truncate(name), err)
	}
	if name == Common {
		return fmt.Errorf("user name %q is reserved: %w", name, ErrInvalid)
	}
	return nil
}

func validOwner(owner string) error {
	if owner == Common {
		return nil
	}
	if err := validName(owner, MaxIDLen); err != nil {
		return fmt.Errorf("owner %q: %w", truncate(owner), err)
	}
	return nil
}

func validType(typ string) error {
	if typ == "" || len(typ) > MaxTypeLen {
		return fmt.Errorf("type must be 1 to %d bytes: %w", MaxTypeLen, ErrInvalid)
	}
	for _, r := range typ {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("type %q has a control character: %w", truncate(typ), ErrInvalid)
		}
	}
	return nil
}

func validName(s string, max int) error {
	if len(s) == 0 || len(s) > max {
		return fmt.Errorf("must be 1 to %d characters: %w", max, ErrInvalid)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("only A-Za-z0-9._- are allowed: %w", ErrInvalid)
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func validDeps(deps []string) error {
	if len(deps) > MaxDeps {
		return fmt.Errorf("%d deps, at most %d: %w", len(deps), MaxDeps, ErrInvalid)
	}
	seen := make(map[string]struct{}, len(deps))
	for _, d := range deps {
		if err := ValidID(d); err != nil {
			return fmt.Errorf("dep: %w", err)
		}
		if _, dup := seen[d]; dup {
			return fmt.Errorf("dep %q listed twice: %w", d, ErrInvalid)
		}
		seen[d] = struct{}{}
	}
	return nil
}
