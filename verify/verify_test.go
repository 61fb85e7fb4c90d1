package verify_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/internal/damage"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/file"
	"github.com/pitr-dev/pitr/verify"
)

var admin = session.Actor{User: "root", Admin: true}

// fixture is a store with three saves of session "s": 30 nodes, then nodes
// 0-2 changed, then nodes 3-5 changed. Chunks of nodes 10 and up are in
// every save.
type fixture struct {
	st      *file.Store
	saves   []*manifest.Manifest
	entries [][]manifest.Entry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := session.New()
	sv := replicate.New(s, replicate.Config{Store: st, Session: "s", Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	for i, nodes := range [][2]int{{0, 30}, {0, 3}, {3, 3}} {
		for n := nodes[0]; n < nodes[0]+nodes[1]; n++ {
			data := randomData(4000, uint64(100*i+n))
			if _, err := s.Put(admin, "node-"+strconv.Itoa(n), session.NodeInput{Type: "object", Data: data}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := sv.Save(ctx, "api"); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{st: st}
	if f.saves, err = catalog.List(ctx, st, "s"); err != nil || len(f.saves) != 3 {
		t.Fatalf("saves: %d %v", len(f.saves), err)
	}
	for _, m := range f.saves {
		es, err := catalog.Entries(ctx, st, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.entries = append(f.entries, es)
	}
	return f
}

func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// inSaves returns a data chunk that is in exactly the saves listed (by
// index), and in no other.
func (f *fixture) inSaves(t *testing.T, want ...int) chunker.ID {
	t.Helper()
	in := map[chunker.ID][]int{}
	for i, es := range f.entries {
		for _, e := range es {
			if l := in[e.ID]; len(l) == 0 || l[len(l)-1] != i {
				in[e.ID] = append(in[e.ID], i)
			}
		}
	}
	for _, es := range f.entries {
		for _, e := range es {
			if slices.Equal(in[e.ID], want) {
				return e.ID
			}
		}
	}
	t.Fatalf("no chunk in exactly saves %v", want)
	return chunker.ID{}
}

// entry returns the entry of data chunk id.
func (f *fixture) entry(t *testing.T, id chunker.ID) manifest.Entry {
	t.Helper()
	for _, es := range f.entries {
		for _, e := range es {
			if e.ID == id {
				return e
			}
		}
	}
	t.Fatalf("no chunk %s", id)
	return manifest.Entry{}
}

func (f *fixture) ids(idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, f.saves[i].ID)
	}
	return out
}

func run(t *testing.T, st store.Store, opts verify.Options) verify.Report {
	t.Helper()
	rep, err := verify.Run(context.Background(), st, "s", opts)
	if err != nil {
		t.Fatalf("verify %+v: %v", opts, err)
	}
	return rep
}

// assertProblems checks that the report names exactly these saves, each
// once, for chunk id with kind and a What containing what.
func assertProblems(t *testing.T, rep verify.Report, saves []string, id chunker.ID, kind verify.Kind, what string) {
	t.Helper()
	var got []string
	for _, p := range rep.Problems {
		if p.ChunkID != id.String() || p.Kind != kind || !strings.Contains(p.What, what) {
			t.Errorf("unexpected problem %s (kind %q)", p, p.Kind)
			continue
		}
		got = append(got, p.SaveID)
	}
	if !slices.Equal(got, saves) {
		t.Errorf("problems name saves %v, want %v", got, saves)
	}
}

func TestCleanStorePasses(t *testing.T) {
	f := newFixture(t)
	rep := run(t, f.st, verify.Options{})
	if !rep.OK() || rep.Saves != 3 || rep.TreeNodes == 0 || rep.Read != 0 || rep.Decoded != 0 {
		t.Fatalf("existence check: %+v", rep)
	}
	full := run(t, f.st, verify.Options{ReadData: true})
	if !full.OK() || full.Saves != 3 || full.Decoded != 3 || full.DataChunks != rep.DataChunks {
		t.Fatalf("read-data check: %+v", full)
	}
	// every distinct chunk downloaded once: later saves reuse what the
	// previous one downloaded
	if full.Read != full.DataChunks || full.Downloads != full.DataChunks || full.Chunks != full.DataChunks+full.TreeNodes+full.ListChunks {
		t.Fatalf("read %d, downloads %d, of %d data chunks", full.Read, full.Downloads, full.DataChunks)
	}
}

// A missing pack is found without reading data: the saves whose chunk
// tree is in it are named, with the node and the pack.
func TestMissingPackNamedForTheSavesUsingIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	last := f.saves[2]
	key := manifest.PackKey(last.Tree.RootLoc.Pack)
	if err := f.st.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	for _, readData := range []bool{false, true} {
		rep := run(t, f.st, verify.Options{ReadData: readData})
		if len(rep.Problems) != 1 {
			t.Fatalf("problems %v, want one for save %s", rep.Problems, last.ID)
		}
		p := rep.Problems[0]
		if p.SaveID != last.ID || p.Kind != verify.Missing || p.ChunkID != last.Tree.Root.String() ||
			!strings.Contains(p.What, last.Tree.RootLoc.Pack.String()) || !strings.Contains(p.What, "chunk tree") {
			t.Errorf("problem %s (kind %q)", p, p.Kind)
		}
		if readData && rep.Decoded != 2 {
			t.Errorf("decoded %d saves, want the 2 whole ones", rep.Decoded)
		}
	}
}

func TestOverwrittenChunkFoundOnlyByReadingData(t *testing.T) {
	for _, tc := range []struct{ name, what string }{
		{damage.Flip, ""},
		{damage.Garbage, "lz4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			id := f.inSaves(t, 1, 2)
			e := f.entry(t, id)
			if _, err := damage.Chunk(context.Background(), f.st, e, tc.name); err != nil {
				t.Fatal(err)
			}
			if rep := run(t, f.st, verify.Options{}); !rep.OK() {
				t.Fatalf("existence check found %v", rep.Problems)
			}
			rep := run(t, f.st, verify.Options{ReadData: true})
			assertProblems(t, rep, f.ids(1, 2), id, verify.Corrupt, tc.what)
			for _, p := range rep.Problems {
				if !strings.Contains(p.What, e.Loc.Pack.String()) {
					t.Errorf("problem %s does not name the pack %s", p, e.Loc.Pack)
				}
			}
			if rep.Decoded != 1 {
				t.Errorf("decoded %d saves, want 1 (the first)", rep.Decoded)
			}
		})
	}
}

func TestBadManifestAndListAreProblems(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key, err := manifest.Key("s", f.saves[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Put(ctx, key, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	root := f.saves[2].Tree.Root
	if _, err := damage.Chunk(ctx, f.st, manifest.Entry{ID: root, Loc: f.saves[2].Tree.RootLoc}, damage.Garbage); err != nil {
		t.Fatal(err)
	}
	// save 1 claims another graph: found only when its graph is checked
	m := *f.saves[1]
	m.ContentSHA256 = strings.Repeat("ab", 32)
	if err := catalog.Put(ctx, f.st, &m); err != nil {
		t.Fatal(err)
	}
	rep := run(t, f.st, verify.Options{ReadData: true})
	for _, p := range rep.Problems {
		t.Log(p)
	}
	if rep.Saves != 3 || len(rep.Problems) < 3 {
		t.Fatalf("report %+v", rep)
	}
	want := []struct {
		save, chunk string
		kind        verify.Kind
		what        string
	}{
		{f.saves[0].ID, "", verify.Manifest, "manifest unreadable"},
		{f.saves[1].ID, "", verify.Graph, "hashes to"},
		{f.saves[2].ID, root.String(), verify.Corrupt, "chunk tree"},
	}
	for _, w := range want {
		if !slices.ContainsFunc(rep.Problems, func(p verify.Problem) bool {
			return p.SaveID == w.save && p.ChunkID == w.chunk && p.Kind == w.kind && strings.Contains(p.String(), w.what)
		}) {
			t.Errorf("no problem %+v in %v", w, rep.Problems)
		}
	}
	if got := rep.Problems[0].String(); !strings.HasPrefix(got, "save "+f.saves[0].ID+": manifest unreadable: ") {
		t.Errorf("problem line %q", got)
	}
}

func TestSaveOption(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := damage.Chunk(ctx, f.st, f.entry(t, f.inSaves(t, 1, 2)), damage.Garbage); err != nil {
		t.Fatal(err)
	}
	if rep := run(t, f.st, verify.Options{SaveID: f.saves[0].ID, ReadData: true}); !rep.OK() || rep.Saves != 1 || rep.Decoded != 1 {
		t.Fatalf("--save of a good save: %+v", rep)
	}
	if rep := run(t, f.st, verify.Options{SaveID: f.saves[1].ID, ReadData: true}); rep.OK() || rep.Saves != 1 {
		t.Fatalf("--save of a damaged save: %+v", rep)
	}
	other := manifest.NewID(time.Now())
	if _, err := verify.Run(ctx, f.st, "s", verify.Options{SaveID: other}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("--save of an absent save: %v", err)
	}
	if _, err := verify.Run(ctx, f.st, "s", verify.Options{SaveID: "nope"}); !errors.Is(err, manifest.ErrBadID) {
		t.Fatalf("--save nope: %v", err)
	}
}

func TestSubset(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rep := run(t, f.st, verify.Options{SubsetPercent: 0, Seed: 1})
	if !rep.OK() || rep.Read != 0 || rep.Subset {
		t.Fatalf("0%%: %+v", rep)
	}
	rep = run(t, f.st, verify.Options{SubsetPercent: 100, Seed: 1})
	if !rep.OK() || rep.Read != rep.DataChunks || rep.Decoded != 0 {
		t.Fatalf("100%%: %+v", rep)
	}
	// Every data chunk damaged: the chunks a subset reads are exactly the
	// ones it reports, and a seed always chooses the same ones.
	done := map[chunker.ID]bool{}
	for _, es := range f.entries {
		for _, e := range es {
			if done[e.ID] {
				continue // flipped twice, a byte comes back
			}
			done[e.ID] = true
			if _, err := damage.Chunk(ctx, f.st, e, damage.Flip); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.entries = nil
	found := func(seed int64) []string {
		rep := run(t, f.st, verify.Options{SubsetPercent: 25, Seed: seed})
		want := (rep.DataChunks*25 + 99) / 100
		if rep.Read != want || !rep.Subset || rep.Seed != seed {
			t.Fatalf("25%% of %d chunks: read %d, want %d", rep.DataChunks, rep.Read, want)
		}
		var ids []string
		for _, p := range rep.Problems {
			if p.Kind != verify.Corrupt {
				t.Fatalf("problem %s", p)
			}
			if !slices.Contains(ids, p.ChunkID) {
				ids = append(ids, p.ChunkID)
			}
		}
		slices.Sort(ids)
		if len(ids) != want {
			t.Fatalf("25%%: %d corrupt chunks reported, %d read", len(ids), want)
		}
		return ids
	}
	if a, b := found(42), found(42); !slices.Equal(a, b) {
		t.Fatalf("same seed, different chunks:\n%v\n%v", a, b)
	}
}

func TestRunErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, opts := range []verify.Options{{SubsetPercent: 101}, {SubsetPercent: -1}, {ReadData: true, SubsetPercent: 5}} {
		if _, err := verify.Run(ctx, f.st, "s", opts); err == nil {
			t.Errorf("options %+v accepted", opts)
		}
	}
	if _, err := verify.Run(ctx, f.st, "nobody", verify.Options{}); !errors.Is(err, manifest.ErrNoSaves) {
		t.Errorf("session without saves: %v", err)
	}
	// a store that cannot list cannot be verified at all
	if err := os.RemoveAll(filepath.Join(f.st.Root(), "sessions")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.st.Root(), "sessions"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Run(ctx, f.st, "s", verify.Options{}); err == nil {
		t.Error("verify of an unlistable store succeeded")
	}
}
