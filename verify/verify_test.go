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
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/restore"
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
	if f.saves, err = manifest.List(ctx, st, "s"); err != nil || len(f.saves) != 3 {
		t.Fatalf("saves: %d %v", len(f.saves), err)
	}
	for _, m := range f.saves {
		es, err := restore.Entries(ctx, st, m)
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
	if !rep.OK() || rep.Saves != 3 || rep.ListChunks == 0 || rep.Read != 0 || rep.Decoded != 0 {
		t.Fatalf("existence check: %+v", rep)
	}
	full := run(t, f.st, verify.Options{ReadData: true})
	if !full.OK() || full.Saves != 3 || full.Decoded != 3 || full.DataChunks != rep.DataChunks {
		t.Fatalf("read-data check: %+v", full)
	}
	// every distinct chunk downloaded once: later saves reuse what the
	// previous one downloaded
	if full.Read != full.DataChunks || full.Downloads != full.DataChunks || full.Chunks != full.DataChunks+full.ListChunks {
		t.Fatalf("read %d, downloads %d, of %d data chunks", full.Read, full.Downloads, full.DataChunks)
	}
}

func TestMissingChunkNamedForEverySaveUsingIt(t *testing.T) {
	f := newFixture(t)
	shared := f.inSaves(t, 0, 1, 2)
	first := f.inSaves(t, 0)
	ctx := context.Background()
	for _, id := range []chunker.ID{shared, first} {
		if err := f.st.Delete(ctx, chunker.ObjectKey(id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, readData := range []bool{false, true} {
		rep := run(t, f.st, verify.Options{ReadData: readData})
		var sharedProbs, firstProbs verify.Report
		for _, p := range rep.Problems {
			if p.ChunkID == shared.String() {
				sharedProbs.Problems = append(sharedProbs.Problems, p)
			} else {
				firstProbs.Problems = append(firstProbs.Problems, p)
			}
		}
		assertProblems(t, sharedProbs, f.ids(0, 1, 2), shared, verify.Missing, "missing")
		assertProblems(t, firstProbs, f.ids(0), first, verify.Missing, "missing")
		if readData && rep.Decoded != 0 {
			t.Errorf("decoded %d saves with a missing chunk", rep.Decoded)
		}
	}
}

func TestOverwrittenChunkFoundOnlyByReadingData(t *testing.T) {
	for _, tc := range []struct {
		name, what string
		body       func(t *testing.T) []byte
	}{
		{"other valid lz4", "hash mismatch", func(t *testing.T) []byte {
			b, err := chunker.Compress([]byte("other bytes"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"not lz4", "lz4", func(*testing.T) []byte { return []byte("garbage, not an lz4 frame") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			id := f.inSaves(t, 1, 2)
			if err := f.st.Put(context.Background(), chunker.ObjectKey(id), tc.body(t)); err != nil {
				t.Fatal(err)
			}
			if rep := run(t, f.st, verify.Options{}); !rep.OK() {
				t.Fatalf("existence check found %v", rep.Problems)
			}
			rep := run(t, f.st, verify.Options{ReadData: true})
			assertProblems(t, rep, f.ids(1, 2), id, verify.Corrupt, tc.what)
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
	list := f.saves[2].ChunkList.Chunks[0].ID
	if err := f.st.Delete(ctx, chunker.ObjectKey(list)); err != nil {
		t.Fatal(err)
	}
	// save 1 claims another graph: found only when its graph is checked
	m := *f.saves[1]
	m.GraphSHA256 = strings.Repeat("ab", 32)
	if err := manifest.Put(ctx, f.st, &m); err != nil {
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
		{f.saves[1].ID, "", verify.Graph, "graph hash"},
		{f.saves[2].ID, list.String(), verify.Missing, "chunk list"},
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
	if err := f.st.Delete(ctx, chunker.ObjectKey(f.inSaves(t, 1, 2))); err != nil {
		t.Fatal(err)
	}
	if rep := run(t, f.st, verify.Options{SaveID: f.saves[0].ID, ReadData: true}); !rep.OK() || rep.Saves != 1 || rep.Decoded != 1 {
		t.Fatalf("--save of a good save: %+v", rep)
	}
	if rep := run(t, f.st, verify.Options{SaveID: f.saves[1].ID}); rep.OK() || rep.Saves != 1 {
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

// recorder records the keys of chunks downloaded.
type recorder struct {
	store.Store
	mu   sync.Mutex
	gets []string
}

func (r *recorder) Get(ctx context.Context, key string) ([]byte, error) {
	r.mu.Lock()
	r.gets = append(r.gets, key)
	r.mu.Unlock()
	return r.Store.Get(ctx, key)
}

// dataGets returns the data chunk keys downloaded (not list chunks), sorted.
func (r *recorder) dataGets(lists map[string]bool) []string {
	var out []string
	for _, k := range r.gets {
		if strings.HasPrefix(k, "chunks/") && !lists[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func TestSubset(t *testing.T) {
	f := newFixture(t)
	lists := map[string]bool{}
	for _, m := range f.saves {
		for _, c := range m.ChunkList.Chunks {
			lists[chunker.ObjectKey(c.ID)] = true
		}
	}
	sample := func(percent float64, seed int64) (verify.Report, []string) {
		r := &recorder{Store: f.st}
		rep := run(t, r, verify.Options{SubsetPercent: percent, Seed: seed})
		return rep, r.dataGets(lists)
	}
	rep, got := sample(0, 1)
	if !rep.OK() || rep.Read != 0 || len(got) != 0 || rep.Subset {
		t.Fatalf("0%%: read %d chunks %v", rep.Read, got)
	}
	rep, got = sample(100, 1)
	if !rep.OK() || rep.Read != rep.DataChunks || len(got) != rep.DataChunks || rep.Decoded != 0 {
		t.Fatalf("100%%: %+v, %d downloads", rep, len(got))
	}
	rep, a := sample(25, 42)
	_, b := sample(25, 42)
	want := (rep.DataChunks*25 + 99) / 100
	if rep.Read != want || len(a) != want || !rep.Subset || rep.Seed != 42 {
		t.Fatalf("25%% of %d chunks: read %d, downloaded %d, want %d", rep.DataChunks, rep.Read, len(a), want)
	}
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different chunks:\n%v\n%v", a, b)
	}
	// a corrupt chunk in the subset is found; a missing one outside it too
	corrupt, err := chunker.ParseID(strings.TrimPrefix(a[0], "chunks/"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Put(context.Background(), a[0], []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if rep, _ := sample(25, 42); !slices.ContainsFunc(rep.Problems, func(p verify.Problem) bool {
		return p.ChunkID == corrupt.String() && p.Kind == verify.Corrupt
	}) {
		t.Fatalf("corrupt chunk of the subset not found: %v", rep.Problems)
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
