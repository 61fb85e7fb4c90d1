package datadir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/session"
)

// Dir is a data dir as the process that writes it knows it: where it is,
// whose session it holds, and the clock that stamps what is written. Its
// methods are the data dir's state transitions, each named for what
// happened and each one durable write of session.json (and of the graph
// where the transition replaces it): callers say what happened, Dir sets
// the fields.
type Dir struct {
	Path    string
	Session string // the session it holds, recorded in session.json
	Store   string // the store it is saved to (redacted form), recorded in session.json
	Writer  string // the host writing it, recorded in session.json ("" for none)
	// Clock stamps session.json and set-aside copies (nil: the wall clock).
	Clock clock.Clock
}

// Save names a save in the store: what a data dir is based on.
type Save struct {
	ID   string
	Time time.Time
}

// File is what a data dir's graph file holds: its hash and the last
// journaled change in it.
type File struct {
	SHA256     string
	JournalLSN uint64
}

// LoadFile returns what the graph file of dir holds, as its session.json
// records it, or nil when dir has no graph file.
func LoadFile(dir string) (*File, error) {
	meta, _, err := LoadMeta(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, GraphFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("check data dir %s: %w", dir, err)
	}
	return &File{SHA256: meta.GraphSHA256, JournalLSN: meta.JournalLSN}, nil
}

func (d Dir) now() time.Time { return clock.Or(d.Clock).Now() }

// at is d at another path (a directory being built to replace it).
func (d Dir) at(path string) Dir {
	d.Path = path
	return d
}

// meta is session.json for graph g of d's session, as d's writer: the
// fields every transition that writes a state of its own sets.
func (d Dir) meta(g *session.Graph) Meta {
	return Meta{Session: d.Session, StoreURL: d.Store, Writer: d.Writer, Initialized: g.Initialized, NodeCount: len(g.Nodes)}
}

// basedOn sets meta's base save (none when base is nil).
func basedOn(meta *Meta, base *Save) {
	meta.SaveID, meta.SaveTime = "", nil
	if base != nil {
		t := base.Time
		meta.SaveID, meta.SaveTime = base.ID, &t
	}
}

// Edited records that the session holds edits its base save lacks: graph
// g (up to its journal LSN) is written whole, pending on base (nil: never
// saved). rollback says the state is a rollback still to be committed, so
// that it stays one if the process dies first. It returns what the graph
// file now holds.
func (d Dir) Edited(g *session.Graph, base *Save, rollback bool) (File, error) {
	meta := d.meta(g)
	basedOn(&meta, base)
	meta.Pending, meta.Restored, meta.JournalLSN = true, rollback, g.JournalLSN
	graph := session.Encode(g)
	meta.GraphSHA256 = hashHex(graph)
	if err := d.write(graph, meta); err != nil {
		return File{}, err
	}
	return File{SHA256: meta.GraphSHA256, JournalLSN: meta.JournalLSN}, nil
}

// Saved records that the state up to graph g (its journal LSN) is save:
// only session.json is written, and the graph file stays as file says,
// the journal holding the changes since.
func (d Dir) Saved(g *session.Graph, save Save, file File) error {
	meta := d.savedMeta(g, save)
	meta.GraphSHA256, meta.JournalLSN = file.SHA256, file.JournalLSN
	return d.writeMeta(meta)
}

// SavedCheckpoint is Saved that also writes graph g whole (encoded
// straight into the file), so that the journal up to g is no longer
// needed. It returns what the graph file now holds.
func (d Dir) SavedCheckpoint(g *session.Graph, save Save) (File, error) {
	meta := d.savedMeta(g, save)
	meta.JournalLSN = g.JournalLSN
	sha, err := d.writeGraph(func(w io.Writer) error { return session.EncodeTo(w, g) }, meta)
	if err != nil {
		return File{}, err
	}
	return File{SHA256: sha, JournalLSN: g.JournalLSN}, nil
}

func (d Dir) savedMeta(g *session.Graph, save Save) Meta {
	meta := d.meta(g)
	basedOn(&meta, &save)
	meta.SaveLSN = g.JournalLSN
	return meta
}

// Restored records that pitr restore rolled the data dir back to save
// from: graph (decoded as g) is installed all at once (see install; with
// force, a session holding unsaved edits is set aside first and
// returned), marked as a rollback that start-up commits while newestID
// (the store's newest committed save at the restore, "" when unknown) is
// still the newest.
func (d Dir) Restored(graph []byte, g *session.Graph, from Save, newestID string, force bool) (*Diverged, error) {
	meta := d.meta(g)
	basedOn(&meta, &from)
	meta.Restored, meta.RestoredNewest = true, newestID
	return d.install(graph, meta, force)
}

// Fetched records that start-up restored save (the store's newest) into
// the data dir: graph (decoded as g) replaces what it held, with nothing
// pending.
func (d Dir) Fetched(graph []byte, g *session.Graph, save Save) error {
	meta := d.meta(g)
	basedOn(&meta, &save)
	return d.write(graph, meta)
}

// FoundAt records that start-up found local, the data dir's session, on
// save (the store's newest): it is no longer a rollback to commit, and,
// when holdsIt (its graph is that save's content), nothing is pending.
// The rest of session.json stays as local read it.
func (d Dir) FoundAt(local *Local, save Save, holdsIt bool) error {
	meta := local.Meta
	meta.Restored = false
	basedOn(&meta, &save)
	if holdsIt {
		meta.Pending, meta.GraphSHA256 = false, local.GraphSHA256
	}
	return d.writeMeta(meta)
}

// Adopted records that local, a data dir of another store or session, was
// taken over as d's session (--adopt): it names d's session and store and
// counts as never saved there, all of it pending. local is updated to
// match.
func (d Dir) Adopted(local *Local) error {
	m := &local.Meta
	m.Session, m.StoreURL = d.Session, d.Store
	m.SaveID, m.SaveTime, m.Pending, m.Restored, m.RestoredNewest = "", nil, true, false, ""
	local.Dirty = true
	return d.writeMeta(*m)
}
