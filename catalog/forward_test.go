package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/counting"
	"github.com/pitr-dev/pitr/store/file"
)

// refsIn returns every chunk and tree node of save m stored in pack p.
func refsIn(t *testing.T, st store.Store, m *manifest.Manifest, p manifest.PackID) []Ref {
	t.Helper()
	var refs []Ref
	entries, err := Entries(context.Background(), st, m, func(n TreeNodeAt) { refs = append(refs, n.Ref) })
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		refs = append(refs, Ref{ID: e.ID, Loc: e.Loc})
	}
	refs = slices.DeleteFunc(refs, func(r Ref) bool { return r.Loc.Pack != p })
	slices.SortFunc(refs, func(a, b Ref) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return slices.CompactFunc(refs, func(a, b Ref) bool { return a.ID == b.ID })
}

// moveAll copies the frames refs name, all in pack from, into a new pack in
// reverse order, writes from's forward record (leaving out the chunks in
// drop), deletes from and returns the new pack and where each ref went.
func moveAll(t *testing.T, st store.Store, from manifest.PackID, refs []Ref, drop map[chunker.ID]bool) (manifest.PackID, []Ref) {
	t.Helper()
	ctx := context.Background()
	body, err := st.Get(ctx, manifest.PackKey(from))
	if err != nil {
		t.Fatal(err)
	}
	to := manifest.NewPackID()
	var pack []byte
	fw := &manifest.Forward{Pack: from}
	moved := make([]Ref, len(refs))
	for i := len(refs) - 1; i >= 0; i-- {
		r := refs[i]
		l := manifest.Loc{Pack: to, Offset: int64(len(pack)), Length: r.Loc.Length}
		pack = append(pack, body[r.Loc.Offset:r.Loc.Offset+r.Loc.Length]...)
		moved[i] = Ref{ID: r.ID, Loc: l}
		if !drop[r.ID] {
			fw.Entries = append(fw.Entries, manifest.ForwardEntry{ID: r.ID, To: l})
		}
	}
	fw.Sizes = map[manifest.PackID]int64{to: int64(len(pack))}
	if len(fw.Entries) == 0 {
		fw.Sizes = nil
	}
	rec, err := fw.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for key, b := range map[string][]byte{manifest.PackKey(to): pack, manifest.ForwardKey(from): rec} {
		if err := st.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Delete(ctx, manifest.PackKey(from)); err != nil {
		t.Fatal(err)
	}
	return to, moved
}

// A save whose packs were repacked reads through their forward records,
// along a chain of them; a chunk a record leaves out, or a gone pack
// without a record, is missing and named.
func TestReadsFollowForwardRecords(t *testing.T) {
	ctx := context.Background()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, want := saveInPacks(t, st, randomChunks(3000), 3) // tree nodes in the last pack
	check := func(what string) {
		t.Helper()
		got, _, err := Graph(ctx, st, m, 4, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: Graph: %v (equal %v)", what, err, bytes.Equal(got, want))
		}
		// The old locations, as the save names them, read one by one.
		es, err := Entries(ctx, st, m, nil)
		if err != nil {
			t.Fatalf("%s: Entries: %v", what, err)
		}
		var n int
		for _, e := range es[:50] {
			err := ReadChunks(ctx, st, []Ref{{ID: e.ID, Loc: e.Loc}}, 2, func(int, []byte) error { n++; return nil })
			if err != nil {
				t.Fatalf("%s: ReadChunks: %v", what, err)
			}
		}
		if n != 50 {
			t.Fatalf("%s: %d chunks read, want 50", what, n)
		}
	}
	packs := packsOf(m)
	// Move the tree's pack, then the data pack it went to again: a chain.
	treePack := m.Tree.RootLoc.Pack
	q, movedQ := moveAll(t, st, treePack, refsIn(t, st, m, treePack), nil)
	check("tree pack forwarded")
	_, _ = moveAll(t, st, q, movedQ, nil)
	check("tree pack forwarded twice")
	other := packs[0]
	if other == treePack {
		other = packs[1]
	}
	inOther := refsIn(t, st, m, other)
	_, _ = moveAll(t, st, other, inOther, map[chunker.ID]bool{inOther[5].ID: true})
	_, _, err = Graph(ctx, st, m, 4, nil)
	var ce *ChunkError
	if !errors.Is(err, ErrMissing) || !errors.As(err, &ce) || ce.Ref.ID != inOther[5].ID || !strings.Contains(err.Error(), "does not list") {
		t.Fatalf("a chunk the record leaves out: %v", err)
	}
	if err := st.Delete(ctx, manifest.ForwardKey(other)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Graph(ctx, st, m, 4, nil); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "nor a forward record") {
		t.Fatalf("a gone pack without a record: %v", err)
	}
}

func packsOf(m *manifest.Manifest) []manifest.PackID {
	var ps []manifest.PackID
	for p := range m.Packs {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b manifest.PackID) int { return bytes.Compare(a[:], b[:]) })
	return ps
}

// A small older save whose packs were repacked is read in rounds: its own
// packs whole (a gone one asked for once, then its record), then the spans
// its records forward to, then, along a chain, the next; the walk and the
// data then cost no request.
func TestGraphPrefetchesThroughForwardRecords(t *testing.T) {
	ctx := context.Background()
	fst, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, want := saveInPacks(t, fst, randomChunks(600), 3)
	treePack := m.Tree.RootLoc.Pack
	q, movedQ := moveAll(t, fst, treePack, refsIn(t, fst, m, treePack), nil)
	moveAll(t, fst, q, movedQ, nil) // a chain: tree pack → q → another
	other := packsOf(m)[0]
	if other == treePack {
		other = packsOf(m)[1]
	}
	moveAll(t, fst, other, refsIn(t, fst, m, other), nil)
	for _, tc := range []struct {
		older                   bool
		errors, lists, requests int64
	}{
		// 3 whole GETs (2 gone: 2 records), 2 forwarded spans (q gone: its
		// record), 1 span at the chain's end.
		{older: false, errors: 3, lists: 0, requests: 9},
		// Listed first: no GET of a gone pack (the tree pack, the other
		// and q): one listing for three failed GETs.
		{older: true, errors: 0, lists: 1, requests: 7},
	} {
		st := counting.New(fst)
		got, _, err := GraphWith(ctx, st, m, GraphOptions{Parallel: 4, Older: tc.older})
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("older=%v: Graph: %v", tc.older, err)
		}
		c := st.Snapshot()
		if c.Errors != tc.errors || c.Lists != tc.lists || c.Requests() != tc.requests {
			t.Errorf("older=%v: %+v: want %d requests (%d lists), of which %d for gone packs",
				tc.older, c, tc.requests, tc.lists, tc.errors)
		}
	}
}

// allRepacked returns a store holding a save of 300 chunks in 3 packs,
// every pack moved (moveAll), and the save's data chunks by the pack the
// save names.
func allRepacked(t *testing.T) (*file.Store, *manifest.Manifest, map[manifest.PackID][]Ref) {
	t.Helper()
	ctx := context.Background()
	fst, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := saveInPacks(t, fst, randomChunks(300), 3)
	es, err := Entries(ctx, fst, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packsOf(m) {
		moveAll(t, fst, p, refsIn(t, fst, m, p), nil)
	}
	byPack := map[manifest.PackID][]Ref{}
	for _, e := range es {
		byPack[e.Loc.Pack] = append(byPack[e.Loc.Pack], Ref{ID: e.ID, Loc: e.Loc})
	}
	return fst, m, byPack
}

// Once a read has met one gone pack, the reads that follow (the next
// level of a tree, the data) know every gone pack from one listing of the
// records, and go straight where the chunks are: no further missing pack
// is asked for.
func TestReadsListTheGonePacksOnce(t *testing.T) {
	ctx := context.Background()
	fst, m, byPack := allRepacked(t)
	st := counting.New(fst)
	o := readOpts{parallel: 4, fwd: NewForwards()}
	read := func(refs []Ref) {
		t.Helper()
		if err := readRefs(ctx, st, refs, o, func(_ int, _ []byte, err error) error { return err }); err != nil {
			t.Fatal(err)
		}
	}
	ps := packsOf(m)
	read(byPack[ps[0]][:5]) // meets the first gone pack: its record, and a listing
	first := st.Snapshot()
	if first.Errors != 1 || first.Lists != 1 {
		t.Fatalf("first read: %+v, want one missing pack and one listing", first)
	}
	read(append(byPack[ps[1]], byPack[ps[2]]...))
	if c := st.Snapshot().Sub(first); c.Errors != 0 || c.Lists != 0 || c.Gets != 2 {
		t.Errorf("second read: %+v, want the 2 records and no missing pack", c)
	}
}

// onceBlocked blocks the first Get until its context ends; later Gets
// find nothing.
type onceBlocked struct {
	store.Store
	first   sync.Once
	started chan struct{}
}

func (b *onceBlocked) Get(ctx context.Context, key string) ([]byte, error) {
	blocked := false
	b.first.Do(func() { blocked = true; close(b.started) })
	if blocked {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("get %s: %w", key, store.ErrNotFound)
}

// A reader waiting for a record that another reader is reading gets the
// record's answer, not the other reader's cancellation. (Found by review.)
func TestForwardsLoadOutlivesTheLoadersCancel(t *testing.T) {
	st := &onceBlocked{Store: nil, started: make(chan struct{})}
	fs := NewForwards()
	p := manifest.NewPackID()
	ctxA, cancel := context.WithCancel(context.Background())
	go func() { _, _ = fs.Load(ctxA, st, p) }()
	<-st.started
	done := make(chan error)
	go func() { _, err := fs.Load(context.Background(), st, p); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a waiter with a live context: %v, want the record's own answer (not found)", err)
	}
}

// Pack X is still there (a gc run stopped between its record and its
// delete); its record sends chunk c to Y, which a later repack deleted
// without forwarding c. A read that knows the gone packs from a listing
// goes to Y first, then reads c in X, where the save names it. (Found by
// review.)
func TestReadFallsBackToAPackStillThere(t *testing.T) {
	ctx := context.Background()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := saveInPacks(t, st, randomChunks(300), 3)
	ps := packsOf(m)
	x, g := ps[0], ps[1]
	refsX := refsIn(t, st, m, x)
	body, err := st.Get(ctx, manifest.PackKey(x))
	if err != nil {
		t.Fatal(err)
	}
	y, _ := moveAll(t, st, x, refsX, nil)
	if err := st.Put(ctx, manifest.PackKey(x), body); err != nil { // x stays
		t.Fatal(err)
	}
	moveAll(t, st, y, nil, nil) // y repacked, c not forwarded
	refsG := refsIn(t, st, m, g)
	moveAll(t, st, g, refsG, nil) // another gone pack, to start the listing
	fw := NewForwards()
	read := func(refs []Ref) error {
		return readRefs(ctx, st, refs, readOpts{parallel: 4, fwd: fw}, func(_ int, _ []byte, err error) error { return err })
	}
	if err := read(refsG[:1]); err != nil {
		t.Fatal(err)
	}
	if err := read(refsX[:1]); err != nil {
		t.Fatalf("read of a chunk in a pack still there, after a listing: %v", err)
	}
}

// moveFar moves save m's chunks in pack from into a new pack, half of
// them after filler bytes (what other saves need), writes from's record
// and deletes from.
func moveFar(t *testing.T, st store.Store, m *manifest.Manifest, from manifest.PackID, filler int) {
	t.Helper()
	ctx := context.Background()
	body, err := st.Get(ctx, manifest.PackKey(from))
	if err != nil {
		t.Fatal(err)
	}
	refs := refsIn(t, st, m, from)
	to := manifest.NewPackID()
	var pack []byte
	rec := &manifest.Forward{Pack: from}
	for i, r := range refs {
		if i == len(refs)/2 {
			pack = append(pack, make([]byte, filler)...)
		}
		l := manifest.Loc{Pack: to, Offset: int64(len(pack)), Length: r.Loc.Length}
		pack = append(pack, body[r.Loc.Offset:r.Loc.Offset+r.Loc.Length]...)
		rec.Entries = append(rec.Entries, manifest.ForwardEntry{ID: r.ID, To: l})
	}
	rec.Sizes = map[manifest.PackID]int64{to: int64(len(pack))}
	enc, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for key, b := range map[string][]byte{manifest.PackKey(to): pack, manifest.ForwardKey(from): enc} {
		if err := st.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Delete(ctx, manifest.PackKey(from)); err != nil {
		t.Fatal(err)
	}
}

// A small save whose chunks gc moved far apart in the packs it moved
// them to (among what other saves need) still reads them in one round, a
// span per pack, as long as what it then holds totals at most
// WholeForwarded: more bytes than the chunks, fewer requests. Beyond
// that, it reads what the tree names.
func TestGraphPrefetchesForwardedSpansWithinABudget(t *testing.T) {
	ctx := context.Background()
	big := make([]byte, 4<<20) // incompressible
	r := rand.New(rand.NewPCG(5, 6))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	for _, tc := range []struct {
		name string
		held int  // MiB in the pack that stays, read first
		span bool // whether the moved pack's span is read at once
	}{
		// The listing, the kept pack, the record, the one span; the
		// tree and the data then cost nothing more.
		{"little else held", 0, true},
		// 31 MiB held, and the span of 33 MiB would pass 64: the tree
		// and the data are read from the moved pack by what they name
		// (its two halves, far apart).
		{"the save's other pack held", 31, false},
	} {
		fst, err := file.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		// Chunks alternate between the two packs: pack 0, which stays,
		// gets tc.held MiB in chunks of up to 4 MiB first.
		var datas [][]byte
		left := tc.held << 20
		for i, c := range randomChunks(300) {
			if i%2 == 0 && left > 0 {
				c = slices.Clone(big[:min(left, len(big))])
				c[0] = byte(i)
				left -= len(c)
			}
			datas = append(datas, c)
		}
		m, want := saveInPacks(t, fst, datas, 2)
		moveFar(t, fst, m, m.Tree.RootLoc.Pack, WholeSave+1<<20)
		st := counting.New(fst)
		got, _, err := GraphWith(ctx, st, m, GraphOptions{Parallel: 4, Older: true})
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: Graph: %v", tc.name, err)
		}
		c := st.Snapshot()
		if c.Errors != 0 {
			t.Errorf("%s: %+v: a missing pack asked for", tc.name, c)
		}
		spanRead := c.BytesGot > int64(tc.held<<20)+WholeSave
		if spanRead != tc.span || (tc.span && c.Requests() != 4) {
			t.Errorf("%s: %+v: the span read at once: %v, want %v (and then 4 requests)", tc.name, c, spanRead, tc.span)
		}
	}
}

// failFirstList fails the first listing of chunks/f/.
type failFirstList struct {
	store.Store
	failed bool
}

func (f *failFirstList) List(ctx context.Context, o store.ListOptions, fn func(store.ObjectInfo) error) error {
	if o.Prefix == manifest.ForwardsPrefix && !f.failed {
		f.failed = true
		return errors.New("list: slow down")
	}
	return f.Store.List(ctx, o, fn)
}

// A listing taken before the reads (ListGone) that fails costs only the
// shortcut: the first missing pack lists again, and the reads after it
// know every gone pack.
func TestAFailedListingIsTakenAgain(t *testing.T) {
	ctx := context.Background()
	fst, m, byPack := allRepacked(t)
	st := counting.New(&failFirstList{Store: fst})
	fw := NewForwards()
	fw.ListGone(ctx, st)
	o := readOpts{parallel: 4, fwd: fw}
	ps := packsOf(m)
	for _, refs := range [][]Ref{byPack[ps[0]][:5], append(byPack[ps[1]], byPack[ps[2]]...)} {
		if err := readRefs(ctx, st, refs, o, func(_ int, _ []byte, err error) error { return err }); err != nil {
			t.Fatal(err)
		}
	}
	// The failed listing, one missing pack, the listing again; then
	// the records of the other two packs and no missing pack.
	if c := st.Snapshot(); c.Lists != 2 || c.Errors != 2 {
		t.Errorf("%+v: want 2 listings and 2 errors (the failed listing, one missing pack)", c)
	}
}

// stillThere: pack x is still in the store with a record sending its
// chunks to y, which was repacked since without forwarding them (a gc run
// stopped before deleting x); g is a plain repacked pack.
func stillThere(t *testing.T) (st *file.Store, refsX, refsG []Ref) {
	t.Helper()
	ctx := context.Background()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := saveInPacks(t, st, randomChunks(300), 3)
	ps := packsOf(m)
	x, g := ps[0], ps[1]
	refsX = refsIn(t, st, m, x)
	body, err := st.Get(ctx, manifest.PackKey(x))
	if err != nil {
		t.Fatal(err)
	}
	y, _ := moveAll(t, st, x, refsX, nil)
	if err := st.Put(ctx, manifest.PackKey(x), body); err != nil {
		t.Fatal(err)
	}
	moveAll(t, st, y, nil, nil)
	refsG = refsIn(t, st, m, g)
	moveAll(t, st, g, refsG, nil)
	return st, refsX, refsG
}

// A chunk not where x's record leads is read in x, where the save names
// it: by a reader that goes by the records only (verify, gc), and by one
// whose retries have listed the records after a stale copy.
func TestAChunkNotWhereItsRecordLeadsIsReadWhereNamed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		fw   func(refsG []Ref) *Forwards
	}{
		{"records only", func([]Ref) *Forwards {
			fw := NewForwards()
			fw.RecordsOnly()
			return fw
		}},
		{"after a stale copy", func(refsG []Ref) *Forwards {
			fw := NewForwards()
			// A stale copy of g's record, as a bundle's could be: it
			// sends g's chunk to a pack that does not exist.
			z := manifest.NewPackID()
			fw.setIfUnread(&manifest.Forward{Pack: refsG[0].Loc.Pack, Sizes: map[manifest.PackID]int64{z: refsG[0].Loc.Length},
				Entries: []manifest.ForwardEntry{{ID: refsG[0].ID, To: manifest.Loc{Pack: z, Length: refsG[0].Loc.Length}}}})
			return fw
		}},
	} {
		st, refsX, refsG := stillThere(t)
		fw := tc.fw(refsG)
		read := func(refs []Ref) error {
			return readRefs(ctx, st, refs, readOpts{parallel: 4, fwd: fw}, func(_ int, _ []byte, err error) error { return err })
		}
		if err := read(refsG[:1]); err != nil {
			t.Fatalf("%s: a chunk of g: %v", tc.name, err)
		}
		if err := read(refsX[:1]); err != nil {
			t.Fatalf("%s: a chunk in x, still there: %v", tc.name, err)
		}
	}
}
