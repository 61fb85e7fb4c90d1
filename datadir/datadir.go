// Package datadir owns pitr's local data directory: the encoded graph
// (graph.pitrg) and session.json, both written atomically (temp file, fsync,
// rename, fsync of the directory) so that a crash never leaves a half-written
// state, and the all-or-nothing installation of a restored session.
//
// session.json changes only through the state transitions of Dir, each
// named for what happened (Edited, Saved, SavedCheckpoint, Restored,
// Fetched, FoundAt, Adopted, and Checkpoint's journal replay) and each one
// durable write stamped by the Dir's clock; SetAside keeps a copy of a
// diverged state. Readers use Load, LoadMeta, HasSession and HasPending.
package datadir

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pitr-dev/pitr/session"
)

// File names inside the data dir.
const (
	GraphFile = "graph.pitrg"
	MetaFile  = "session.json"
)

// Errors.
var (
	// ErrNoSession: the directory holds no session (missing or empty).
	ErrNoSession = errors.New("no session in data dir")
	// ErrExists: the directory already holds something and force was not given.
	ErrExists = errors.New("data dir is not empty")
)

// Meta is session.json: human-readable facts about the local state. It is
// read with Load or LoadMeta and written only by the transitions of Dir.
type Meta struct {
	Session     string     `json:"session"`
	SaveID      string     `json:"save_id"`            // the save this state was last written to the store as ("" if never)
	SaveTime    *time.Time `json:"save_time"`          // that save's time
	Initialized bool       `json:"initialized"`        // the session was active
	NodeCount   int        `json:"node_count"`         // nodes in graph.pitrg
	GraphSHA256 string     `json:"graph_sha256"`       // of graph.pitrg, to detect a graph written after this file
	Pending     bool       `json:"pending"`            // graph.pitrg holds changes not yet in the store
	Restored    bool       `json:"restored,omitempty"` // written by pitr restore, not yet served
	// RestoredNewest is the store's newest committed save when pitr restore
	// wrote this: a rollback is committed only while it still is.
	RestoredNewest string `json:"restored_newest,omitempty"`
	StoreURL       string `json:"store,omitempty"` // where it was saved (redacted form)
	// JournalLSN is the last journaled change graph.pitrg holds: start-up
	// replays only the journal's records after it.
	JournalLSN uint64 `json:"journal_lsn,omitempty"`
	// SaveLSN is the last journaled change save SaveID holds: the graph
	// with the journal replayed up to it is that save's content. Changes
	// after it are unsaved. (A save does not rewrite graph.pitrg: the
	// journal keeps the changes until a checkpoint folds them in.)
	SaveLSN uint64    `json:"save_lsn,omitempty"`
	Updated time.Time `json:"updated"`          // when this file was written
	Writer  string    `json:"writer,omitempty"` // host that wrote it
}

// Local is a session loaded from a data dir.
type Local struct {
	Graph *session.Graph
	Meta  Meta
	// Dirty is set when the graph holds changes the store may not have: Meta
	// says so, or graph.pitrg was replaced after session.json.
	Dirty bool
	// GraphSHA256 is the hex SHA-256 of graph.pitrg as read.
	GraphSHA256 string
}

// HasSession reports whether dir holds a session.
func HasSession(dir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dir, MetaFile))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		_, gerr := os.Stat(filepath.Join(dir, GraphFile))
		if gerr == nil {
			return true, nil
		}
		return false, nil
	}
	return false, fmt.Errorf("check data dir %s: %w", dir, err)
}

// Load reads the session in dir. A missing session is ErrNoSession; a
// corrupt graph is an error wrapping session.ErrCorrupt.
func Load(dir string) (*Local, error) {
	raw, err := os.ReadFile(filepath.Join(dir, GraphFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load %s: %w", dir, ErrNoSession)
	}
	if err != nil {
		return nil, fmt.Errorf("load data dir %s: %w", dir, err)
	}
	g, err := session.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", filepath.Join(dir, GraphFile), err)
	}
	l := &Local{Graph: g, GraphSHA256: hashHex(raw)}
	mb, err := os.ReadFile(filepath.Join(dir, MetaFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		l.Dirty = true
	case err != nil:
		return nil, fmt.Errorf("load data dir %s: %w", dir, err)
	default:
		if err := json.Unmarshal(mb, &l.Meta); err != nil {
			return nil, fmt.Errorf("load %s: %w", filepath.Join(dir, MetaFile), err)
		}
		l.Dirty = l.Meta.Pending || l.Meta.GraphSHA256 != l.GraphSHA256
	}
	l.Meta.NodeCount = len(g.Nodes)
	l.Meta.Initialized = g.Initialized
	return l, nil
}

// write replaces the local state atomically: graph first, then session.json.
// meta.GraphSHA256 must be the hex SHA-256 of graph; when empty it is
// computed here.
func (d Dir) write(graph []byte, meta Meta) error {
	dir := d.Path
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write data dir %s: %w", dir, err)
	}
	var sum chan string
	if meta.GraphSHA256 == "" { // hashed while the file is written and synced
		sum = make(chan string, 1)
		go func() { sum <- hashHex(graph) }()
	}
	err := writeAtomic(dir, GraphFile, graph)
	if sum != nil {
		meta.GraphSHA256 = <-sum
	}
	if err != nil {
		return err
	}
	return d.writeMeta(meta)
}

// writeGraph is write for a graph too large to hold encoded in memory:
// encode writes it to the file (buffered), which is hashed on the way. It
// returns the hash, as written into session.json.
func (d Dir) writeGraph(encode func(io.Writer) error, meta Meta) (string, error) {
	dir := d.Path
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, GraphFile)
	f, err := os.CreateTemp(dir, "."+GraphFile+".tmp-")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	err = encode(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	meta.GraphSHA256 = hex.EncodeToString(h.Sum(nil))
	return meta.GraphSHA256, d.writeMeta(meta)
}

// writeMeta replaces session.json atomically, stamped with the time of
// the write.
func (d Dir) writeMeta(meta Meta) error {
	meta.Updated = d.now().UTC()
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", MetaFile, err)
	}
	return writeAtomic(d.Path, MetaFile, append(b, '\n'))
}

// install puts a restored session into the data dir all at once: it is built in a
// sibling temporary directory and renamed into place, so a failure leaves
// dir as it was. Without force, dir must be missing or empty (but for the
// kept entries: the admin password, set-aside copies). With force, a
// session in dir holding unsaved edits is set aside first (see SetAside)
// and returned, so that replacing it loses nothing. The kept entries are
// hard-linked into the new directory, so they exist in dir until the
// swap and in the new one after it.
func (d Dir) install(graph []byte, meta Meta, force bool) (*Diverged, error) {
	d.Path = filepath.Clean(d.Path)
	if !force {
		return nil, d.swapIn(graph, meta, checkEmpty(d.Path))
	}
	pending, err := HasPending(d.Path)
	if err != nil || !pending {
		return nil, d.swapIn(graph, meta, err)
	}
	old, _, err := LoadMeta(d.Path)
	if err != nil {
		return nil, err
	}
	aside, err := d.SetAside(DivergedInfo{Session: old.Session, Store: old.StoreURL, BaseSave: old.SaveID, NewestSave: meta.SaveID,
		NodeCount: old.NodeCount, Reason: "replaced by a restore (--force) while it held unsaved edits"})
	if err != nil {
		return nil, err
	}
	return aside, d.swapIn(graph, meta, nil)
}

// swapIn does install's work once its checks passed (check is nil).
func (d Dir) swapIn(graph []byte, meta Meta, check error) error {
	if check != nil {
		return check
	}
	dir := d.Path
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("install session into %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".restore-")
	if err != nil {
		return fmt.Errorf("install session into %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	if err := d.at(tmp).write(graph, meta); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("install session into %s: %w", dir, err)
	}
	if err := linkKept(dir, tmp); err != nil {
		return fmt.Errorf("install session into %s: %w", dir, err)
	}
	var old string
	if _, err := os.Lstat(dir); err == nil {
		old = filepath.Join(parent, "."+filepath.Base(dir)+".old-"+randHex())
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("install session: move %s aside: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return fmt.Errorf("install session into %s: %w", dir, err)
	}
	if err := syncDir(parent); err != nil {
		return err
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("install session: remove previous %s: %w", old, err)
		}
	}
	return nil
}

// linkKept hard-links the kept entries of dir (the admin password, set-aside
// copies) into tmp, the directory about to replace dir; a file system
// without hard links gets copies.
func linkKept(dir, tmp string) error {
	for _, name := range kept {
		root := filepath.Join(dir, name)
		if _, err := os.Lstat(root); err != nil {
			continue
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			to := filepath.Join(tmp, rel)
			if d.IsDir() {
				return os.MkdirAll(to, 0o755)
			}
			if err := os.Link(p, to); err == nil {
				return nil
			}
			return copyFile(p, to)
		})
		if err != nil {
			return fmt.Errorf("keep %s: %w", name, err)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	fi, err := os.Stat(from)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Dir(to), filepath.Base(to), b, fi.Mode().Perm())
}

// HasPending reports whether dir holds a session with changes its last save
// lacks: session.json says so, is missing, or graph.pitrg was replaced after
// it. The graph is not decoded.
func HasPending(dir string) (bool, error) {
	graph, err := os.ReadFile(filepath.Join(dir, GraphFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check data dir %s: %w", dir, err)
	}
	meta, ok, err := LoadMeta(dir)
	if err != nil {
		return false, err
	}
	return !ok || meta.Pending || meta.GraphSHA256 != hashHex(graph), nil
}

func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check data dir %s: %w", dir, err)
	}
	entries = slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return slices.Contains(kept, e.Name()) })
	if len(entries) == 0 {
		return nil
	}
	if has, _ := HasSession(dir); has {
		return fmt.Errorf("%s already holds a session (use --force to replace it): %w", dir, ErrExists)
	}
	return fmt.Errorf("%s holds %d other files (use --force to replace it): %w", dir, len(entries), ErrExists)
}

func writeAtomic(dir, name string, data []byte) error {
	return writeFileAtomic(dir, name, data, 0o644)
}

// writeFileAtomic writes dir/name with mode perm: temp file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(dir, name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, perm)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// LoadMeta reads only session.json of dir; ok is false when there is none.
func LoadMeta(dir string) (meta Meta, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Meta{}, false, nil
	}
	if err != nil {
		return Meta{}, false, fmt.Errorf("load data dir %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return Meta{}, false, fmt.Errorf("load %s: %w", filepath.Join(dir, MetaFile), err)
	}
	return meta, true, nil
}
