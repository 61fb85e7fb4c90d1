package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DivergedDir is the subdirectory of a data dir that holds local copies set
// aside because they diverged from the store (see SetAside).
const DivergedDir = "diverged"

// DivergedInfoFile describes a set-aside copy, next to its graph and
// session.json.
const DivergedInfoFile = "diverged.json"

// ErrNoDiverged: no set-aside copy has the name asked for.
var ErrNoDiverged = errors.New("no such set-aside copy")

// DivergedInfo is diverged.json: why a copy was set aside and against what.
type DivergedInfo struct {
	Session     string    `json:"session"`
	Store       string    `json:"store,omitempty"`
	BaseSave    string    `json:"base_save"`    // the save the copy's edits were made on ("" if never saved)
	NewestSave  string    `json:"newest_save"`  // the store's newest committed save when it was set aside
	SetAsideAt  time.Time `json:"set_aside_at"` // UTC
	GraphSHA256 string    `json:"graph_sha256"` // of the copy's graph.pitrg
	NodeCount   int       `json:"node_count"`
	Reason      string    `json:"reason"`
}

// Diverged is one set-aside copy: its name (the directory under
// <data-dir>/diverged/), path and description.
type Diverged struct {
	Name string
	Path string
	Info DivergedInfo
}

// SetAside copies the session of the data dir (graph.pitrg and
// session.json, as they are) into <dir>/diverged/<time>-<base save>/ with a
// diverged.json made of info (its SetAsideAt stamped by the dir's clock when
// zero), and returns that copy. It does not change the session in dir: the
// caller replaces it afterwards, so a crash in between leaves the copy and
// the original both in place. A copy of the same graph already set aside is
// returned as it is instead of being copied again.
func (d Dir) SetAside(info DivergedInfo) (*Diverged, error) {
	dir := d.Path
	if info.SetAsideAt.IsZero() {
		info.SetAsideAt = d.now()
	}
	graph, err := os.ReadFile(filepath.Join(dir, GraphFile))
	if err != nil {
		return nil, fmt.Errorf("set aside data dir %s: %w", dir, err)
	}
	info.GraphSHA256 = hashHex(graph)
	existing, err := ListDiverged(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range existing {
		if e.Info.GraphSHA256 == info.GraphSHA256 && e.Info.BaseSave == info.BaseSave {
			return &e, nil
		}
	}
	info.SetAsideAt = info.SetAsideAt.UTC()
	base := info.BaseSave
	if base == "" {
		base = "unsaved"
	}
	name := info.SetAsideAt.Format("20060102T150405.000Z") + "-" + base
	name = strings.ReplaceAll(name, ".", "")
	parent := filepath.Join(dir, DivergedDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("set aside data dir %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("set aside data dir %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	if err := writeAtomic(tmp, GraphFile, graph); err != nil {
		return nil, err
	}
	if meta, err := os.ReadFile(filepath.Join(dir, MetaFile)); err == nil {
		if err := writeAtomic(tmp, MetaFile, meta); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("set aside data dir %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", DivergedInfoFile, err)
	}
	if err := writeAtomic(tmp, DivergedInfoFile, append(b, '\n')); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("set aside data dir %s: %w", dir, err)
	}
	final := filepath.Join(parent, name)
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("set aside data dir %s: %w", dir, err)
	}
	if err := syncDir(parent); err != nil {
		return nil, err
	}
	return &Diverged{Name: name, Path: final, Info: info}, nil
}

// ListDiverged lists the copies set aside in dir, oldest first. Entries
// that are not set-aside copies (no readable diverged.json) are skipped.
func ListDiverged(dir string) ([]Diverged, error) {
	parent := filepath.Join(dir, DivergedDir)
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list set-aside copies in %s: %w", parent, err)
	}
	var out []Diverged
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		d, err := loadDivergedInfo(parent, e.Name())
		if err != nil {
			continue
		}
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Info.SetAsideAt.Before(out[j].Info.SetAsideAt) })
	return out, nil
}

// LoadDiverged loads the set-aside copy called name in dir: its description
// and its session.
func LoadDiverged(dir, name string) (*Diverged, *Local, error) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return nil, nil, fmt.Errorf("set-aside copy %q: %w", name, ErrNoDiverged)
	}
	parent := filepath.Join(dir, DivergedDir)
	d, err := loadDivergedInfo(parent, name)
	if err != nil {
		return nil, nil, err
	}
	l, err := Load(d.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("set-aside copy %s: %w", name, err)
	}
	return d, l, nil
}

func loadDivergedInfo(parent, name string) (*Diverged, error) {
	p := filepath.Join(parent, name)
	b, err := os.ReadFile(filepath.Join(p, DivergedInfoFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("set-aside copy %s in %s: %w", name, parent, ErrNoDiverged)
	}
	if err != nil {
		return nil, fmt.Errorf("read set-aside copy %s: %w", p, err)
	}
	var info DivergedInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(p, DivergedInfoFile), err)
	}
	return &Diverged{Name: name, Path: p, Info: info}, nil
}

// DropDiverged deletes the set-aside copy called name in dir, once an
// operator has applied what they wanted from it.
func DropDiverged(dir, name string) error {
	d, _, err := LoadDiverged(dir, name)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(d.Path); err != nil {
		return fmt.Errorf("drop set-aside copy %s: %w", name, err)
	}
	return syncDir(filepath.Join(dir, DivergedDir))
}
