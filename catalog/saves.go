package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// loadParallel bounds the manifests List loads at once.
const loadParallel = 16

// SaveRef is a save known from its key alone, without loading the manifest.
type SaveRef struct {
	Session string
	ID      string
	Time    time.Time // from the id: UTC, milliseconds
	Key     string
}

// Put stores m under manifest.Key(m.Session, m.ID). It first sets m.Time
// to its stored form (UTC, milliseconds). The caller must have stored every chunk
// m names: the manifest is the save's commit point.
func Put(ctx context.Context, st store.Store, m *manifest.Manifest) error {
	m.Time = m.Time.UTC().Truncate(time.Millisecond)
	data, err := manifest.Encode(m)
	if err != nil {
		return fmt.Errorf("put manifest of session %q: %w", m.Session, err)
	}
	key, err := manifest.Key(m.Session, m.ID)
	if err != nil {
		return fmt.Errorf("put manifest of session %q: %w", m.Session, err)
	}
	if err := st.Put(ctx, key, data); err != nil {
		return fmt.Errorf("put manifest %s: %w", key, err)
	}
	return nil
}

// Load reads and decodes the manifest of save id of session. A missing
// manifest wraps store.ErrNotFound.
func Load(ctx context.Context, st store.Store, session, id string) (*manifest.Manifest, error) {
	key, err := manifest.Key(session, id)
	if err != nil {
		return nil, fmt.Errorf("load save %q of session %q: %w", id, session, err)
	}
	return loadKey(ctx, st, session, id, key)
}

// LoadCommitted returns save id of session if it is a committed save (see
// claim.Commits), as listed by List and chosen by At and Newest. A missing
// manifest, or one the session's writer claim does not account for (a save
// in flight, or one a fenced writer stored), is an error wrapping
// manifest.ErrNoSuchSave that names the save, the session and the store.
func LoadCommitted(ctx context.Context, st store.Store, session, id string) (*manifest.Manifest, error) {
	m, err := Load(ctx, st, session, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("save %s of session %s: %w in %s", id, session, manifest.ErrNoSuchSave, st)
	}
	if err != nil {
		return nil, err
	}
	commits, err := claim.ReadCommits(ctx, st, session)
	if err != nil {
		return nil, fmt.Errorf("load save %s of session %s: %w", id, session, err)
	}
	if !commits.Committed(m) {
		return nil, fmt.Errorf("save %s of session %s: %w in %s (its manifest was stored but never committed: a save in flight, or one a fenced writer stored)",
			id, session, manifest.ErrNoSuchSave, st)
	}
	return m, nil
}

func loadKey(ctx context.Context, st store.Store, session, id, key string) (*manifest.Manifest, error) {
	data, err := st.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("load manifest %s: %w", key, err)
	}
	m, err := manifest.Decode(data)
	if err == nil {
		err = m.CheckNames(session, id)
	}
	if err != nil {
		return nil, fmt.Errorf("load manifest %s: %w", key, err)
	}
	return m, nil
}

// Delete removes the manifest of save id of session (a missing one is not
// an error). Its chunks stay until gc.
func Delete(ctx context.Context, st store.Store, session, id string) error {
	key, err := manifest.Key(session, id)
	if err != nil {
		return fmt.Errorf("delete save %q of session %q: %w", id, session, err)
	}
	if err := st.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete manifest %s: %w", key, err)
	}
	return nil
}

// refOf parses a listed key of session's saves; ok is false for an object
// that is not a manifest key of that session (it is skipped).
func refOf(session string, o store.ObjectInfo) (SaveRef, bool) {
	if o.IsPrefix {
		return SaveRef{}, false
	}
	s, id, err := manifest.ParseKey(o.Key)
	if err != nil || s != session {
		return SaveRef{}, false
	}
	t, _ := manifest.IDTime(id) // ParseKey checked it
	return SaveRef{Session: s, ID: id, Time: t, Key: o.Key}, true
}

// firstCommitted returns the first committed save in the listing opts
// selects (newest first), or nil when there is none. Usually the first key
// is committed: one List request with a small page, one claim read and one
// manifest read. The claim is read while the listing and the manifest
// are: two round trips, not three. (Whichever the store answers first,
// the claim judges the listed saves as a claim read before the listing
// would, or knowing more: a save committed by then counts, one a fenced
// writer stored does not, one still in flight does not.)
func firstCommitted(ctx context.Context, st store.Store, session string, opts store.ListOptions) (*manifest.Manifest, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	var commits *claim.Commits
	var claimErr error
	go func() {
		defer close(done)
		commits, claimErr = claim.ReadCommits(ctx, st, session)
	}()
	readCommits := func() error { // ReadCommits ends with ctx
		<-done
		return claimErr
	}
	var found *manifest.Manifest
	opts.Limit = 4
	err := st.List(ctx, opts, func(o store.ObjectInfo) error {
		ref, good := refOf(session, o)
		if !good {
			return nil
		}
		m, err := loadKey(ctx, st, session, ref.ID, ref.Key)
		if err != nil {
			return err
		}
		if readCommits() != nil {
			return store.ErrStop // reported below
		}
		if commits.Committed(m) {
			found = m
			return store.ErrStop
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", opts.Prefix, err)
	}
	// A claim that cannot be read fails the search, even of no save.
	if err := readCommits(); err != nil {
		return nil, err
	}
	return found, nil
}

// Newest returns the session's newest save; manifest.ErrNoSaves when it
// has none.
func Newest(ctx context.Context, st store.Store, session string) (*manifest.Manifest, error) {
	if err := manifest.ValidSessionName(session); err != nil {
		return nil, fmt.Errorf("newest save: %w", err)
	}
	prefix := manifest.SavesPrefix(session)
	m, err := firstCommitted(ctx, st, session, store.ListOptions{Prefix: prefix})
	if err != nil {
		return nil, fmt.Errorf("newest save of session %q: %w", session, err)
	}
	if m == nil {
		return nil, fmt.Errorf("newest save of session %q in %s: %w", session, st, manifest.ErrNoSaves)
	}
	return m, nil
}

// At returns the newest save of session taken at or before t, with one
// listing request. When there is none, the error wraps
// manifest.ErrNoneBefore and names the earliest save (and also wraps
// manifest.ErrNoSaves if the session has no saves at all).
func At(ctx context.Context, st store.Store, session string, t time.Time) (*manifest.Manifest, error) {
	if err := manifest.ValidSessionName(session); err != nil {
		return nil, fmt.Errorf("find save: %w", err)
	}
	prefix := manifest.SavesPrefix(session)
	at := manifest.FormatTime(t)
	if ms := t.UnixMilli(); ms >= 0 {
		m, err := firstCommitted(ctx, st, session, store.ListOptions{Prefix: prefix, StartAfter: manifest.KeyAt(session, t)})
		if err != nil {
			return nil, fmt.Errorf("find save of session %q at or before %s: %w", session, at, err)
		}
		if m != nil {
			return m, nil
		}
	}
	refs, err := Refs(ctx, st, session)
	if err != nil {
		return nil, fmt.Errorf("find save of session %q at or before %s: %w", session, at, err)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("find save of session %q at or before %s: %w in %s (%w)", session, at, manifest.ErrNoSaves, st, manifest.ErrNoneBefore)
	}
	earliest := refs[0]
	return nil, fmt.Errorf("find save of session %q: %w %s; the earliest save is %s, taken at %s",
		session, manifest.ErrNoneBefore, at, earliest.ID, manifest.FormatTime(earliest.Time))
}

// Refs lists the saves of session from their keys alone, oldest first,
// skipping objects under the saves prefix that are not manifest keys.
func Refs(ctx context.Context, st store.Store, session string) ([]SaveRef, error) {
	if err := manifest.ValidSessionName(session); err != nil {
		return nil, fmt.Errorf("list saves: %w", err)
	}
	prefix := manifest.SavesPrefix(session)
	var refs []SaveRef
	err := st.List(ctx, store.ListOptions{Prefix: prefix}, func(o store.ObjectInfo) error {
		if r, ok := refOf(session, o); ok {
			refs = append(refs, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list saves of session %q: list %s: %w", session, prefix, err)
	}
	slices.Reverse(refs) // keys list newest first
	return refs, nil
}

// List loads every committed save of session, oldest first (see claim.Commits:
// manifests a fenced writer stored, or a save still in flight, are left
// out). It fails on the first manifest that does not load, naming it.
func List(ctx context.Context, st store.Store, session string) ([]*manifest.Manifest, error) {
	all, err := ListAll(ctx, st, session)
	if err != nil {
		return nil, err
	}
	commits, err := claim.ReadCommits(ctx, st, session)
	if err != nil {
		return nil, fmt.Errorf("list saves of session %q: %w", session, err)
	}
	return slices.DeleteFunc(all, func(m *manifest.Manifest) bool { return !commits.Committed(m) }), nil
}

// ListAll loads every manifest stored for session, committed or not,
// oldest first, with up to 16 loads at once: what gc must keep.
func ListAll(ctx context.Context, st store.Store, session string) ([]*manifest.Manifest, error) {
	refs, err := Refs(ctx, st, session)
	if err != nil {
		return nil, err
	}
	out := make([]*manifest.Manifest, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadParallel)
	for i, ref := range refs {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			m, err := loadKey(gctx, st, session, ref.ID, ref.Key)
			out[i] = m
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("list saves of session %q: %w", session, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list saves of session %q: %w", session, err)
	}
	return out, nil
}

// Sessions lists the names of the sessions in the store (every valid name
// under sessions/, whether or not it has saves), sorted.
func Sessions(ctx context.Context, st store.Store) ([]string, error) {
	var names []string
	err := st.List(ctx, store.ListOptions{Prefix: manifest.SessionsPrefix, Delimiter: "/"}, func(o store.ObjectInfo) error {
		if !o.IsPrefix {
			return nil
		}
		name := strings.TrimSuffix(strings.TrimPrefix(o.Key, manifest.SessionsPrefix), "/")
		if manifest.ValidSessionName(name) == nil {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions in %s: %w", st, err)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
