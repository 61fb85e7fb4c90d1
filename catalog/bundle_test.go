package catalog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/counting"
	"github.com/pitr-dev/pitr/store/file"
)

// gotKeys records the keys read whole.
type gotKeys struct {
	store.Store
	mu   sync.Mutex
	keys []string
}

func (g *gotKeys) Get(ctx context.Context, key string) ([]byte, error) {
	g.mu.Lock()
	g.keys = append(g.keys, key)
	g.mu.Unlock()
	return g.Store.Get(ctx, key)
}

func (g *gotKeys) records() (n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range g.keys {
		if _, ok := manifest.ParseForwardKey(k); ok {
			n++
		}
	}
	return n
}

// A save whose four packs were repacked reads their records from the
// newest forward bundle, in a ranged read or two, when the listing shows
// them older than it; a record rewritten since, or any record when the
// bundle is damaged, is read itself. The graph is the same every way.
func TestGraphReadsRecordsFromTheBundle(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, root, bundleKey string, gone []manifest.PackID)
		records int  // record objects read
		large   bool // a bundle too large to read whole: its index, then ranges
	}{
		{"every record older than the bundle", nil, 0, false},
		{"a bundle read by ranges", nil, 0, true},
		{"a record rewritten after the bundle", func(t *testing.T, root, _ string, gone []manifest.PackID) {
			touch(t, filepath.Join(root, manifest.ForwardKey(gone[0])), time.Now())
		}, 1, false},
		{"a damaged bundle", func(t *testing.T, root, key string, _ []manifest.PackID) {
			path := filepath.Join(root, key)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[20] ^= 1
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, 4, false},
	} {
		fst, err := file.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		m, want := saveInPacks(t, fst, randomChunks(400), 4)
		gone := packsOf(m)
		recs := map[manifest.PackID][]byte{}
		for _, p := range gone {
			moveAll(t, fst, p, refsIn(t, fst, m, p), nil)
			b, err := fst.Get(ctx, manifest.ForwardKey(p))
			if err != nil {
				t.Fatal(err)
			}
			recs[p] = b
		}
		// An unrelated record in the bundle too, as gc writes them all;
		// a large one for a bundle read by ranges.
		other := &manifest.Forward{Pack: manifest.NewPackID()}
		if tc.large {
			to := manifest.NewPackID()
			other.Sizes = map[manifest.PackID]int64{to: 1 << 30}
			for i := range WholeBundle / 50 {
				other.Entries = append(other.Entries, manifest.ForwardEntry{ID: chunker.Sum([]byte(strconv.Itoa(i))), To: manifest.Loc{Pack: to, Offset: int64(i), Length: 1}})
			}
		}
		if recs[other.Pack], err = other.Encode(); err != nil {
			t.Fatal(err)
		}
		key, bundle := putBundle(t, fst, recs)
		hourAgo := time.Now().Add(-time.Hour)
		for _, p := range gone {
			touch(t, filepath.Join(fst.Root(), manifest.ForwardKey(p)), hourAgo)
		}
		if tc.damage != nil {
			tc.damage(t, fst.Root(), key, gone)
		}
		g := &gotKeys{Store: fst}
		st := counting.New(g)
		got, _, err := GraphWith(ctx, st, m, GraphOptions{Parallel: 4, Older: true})
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: Graph: %v", tc.name, err)
		}
		if n := g.records(); n != tc.records {
			t.Errorf("%s: %d records read themselves, want %d (%+v)", tc.name, n, tc.records, st.Snapshot())
		}
		if c := st.Snapshot(); c.Errors != 0 {
			t.Errorf("%s: %+v: a missing pack asked for", tc.name, c)
		}
		if whole := slices.Contains(g.keys, key); whole == tc.large && tc.damage == nil {
			t.Errorf("%s: the bundle of %d bytes read whole: %v", tc.name, len(bundle), whole)
		}
	}
}

func touch(t *testing.T, path string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// A bundle's copy that is stale though the listing says otherwise (a
// record rewritten by a gc whose clock was behind) leads to a pack that is
// gone with no record: the read then reads those chunks where the save
// names them, through the records themselves, listing them once for all
// such chunks, not once per chunk.
func TestAStaleBundleCopyCostsOneListing(t *testing.T) {
	ctx := context.Background()
	fst, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, want := saveInPacks(t, fst, randomChunks(400), 4)
	recs := map[manifest.PackID][]byte{}
	var p, q manifest.PackID
	var movedToQ []Ref
	for i, pk := range packsOf(m) {
		to, moved := moveAll(t, fst, pk, refsIn(t, fst, m, pk), nil)
		if i == 0 {
			p, q, movedToQ = pk, to, moved
		}
		if recs[pk], err = fst.Get(ctx, manifest.ForwardKey(pk)); err != nil {
			t.Fatal(err)
		}
	}
	putBundle(t, fst, recs)
	// Later: Q repacked into R, P's record rewritten to point at R, Q's
	// record gone; P's record stamped an hour back.
	r, movedToR := moveAll(t, fst, q, movedToQ, nil)
	rec := &manifest.Forward{Pack: p, Sizes: map[manifest.PackID]int64{}}
	for _, ref := range movedToR {
		rec.Entries = append(rec.Entries, manifest.ForwardEntry{ID: ref.ID, To: ref.Loc})
	}
	size, err := fst.Stat(ctx, manifest.PackKey(r))
	if err != nil {
		t.Fatal(err)
	}
	rec.Sizes[r] = size.Size
	b, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := fst.Put(ctx, manifest.ForwardKey(p), b); err != nil {
		t.Fatal(err)
	}
	if err := fst.Delete(ctx, manifest.ForwardKey(q)); err != nil {
		t.Fatal(err)
	}
	for _, pk := range packsOf(m) {
		touch(t, filepath.Join(fst.Root(), manifest.ForwardKey(pk)), time.Now().Add(-time.Hour))
	}
	st := counting.New(fst)
	got, _, err := GraphWith(ctx, st, m, GraphOptions{Parallel: 4, Older: true})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Graph: %v", err)
	}
	if c := st.Snapshot(); c.Lists > 2 || c.Requests() > 20 {
		t.Errorf("%+v: want at most 2 listings and 20 requests", c)
	}
}

// putBundle stores a bundle of recs and returns its key and bytes.
func putBundle(t *testing.T, st store.Store, recs map[manifest.PackID][]byte) (string, []byte) {
	t.Helper()
	b, err := manifest.EncodeBundle(recs)
	if err != nil {
		t.Fatal(err)
	}
	key := manifest.BundleKey()
	if err := st.Put(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
	return key, b
}
