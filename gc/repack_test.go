package gc_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/gc"
	"github.com/pitr-dev/pitr/gcsafety"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/counting"
	"github.com/pitr-dev/pitr/store/file"
	"github.com/pitr-dev/pitr/verify"
)

// history is a session whose older saves name packs the newest no longer
// does, because the saver moved the chunks it kept using into its own
// pack: S1 (40 nodes, pack P1), then S2 with 30 of them changed, which
// copies the other 10 out of P1. Every object is then two hours old.
type history struct {
	st     *file.Store
	ps     *pauseStore // what the saver writes through
	sess   *session.Session
	sv     *replicate.Saver
	saves  []*manifest.Manifest
	graphs [][]byte // each save's graph, as read before any gc
}

func newHistory(t *testing.T) *history {
	t.Helper()
	ctx := context.Background()
	h := &history{st: newFileStore(t), sess: session.New()}
	h.ps = newPauseStore(h.st)
	s := h.sess
	sv := replicate.New(s, replicate.Config{Store: h.ps, Session: "s", Logger: slog.New(slog.DiscardHandler)})
	h.sv = sv
	for i, n := range []int{40, 30, 5} {
		putNodes(t, s, 0, n, 3000, uint64(100*i))
		r, err := sv.Save(ctx, "api")
		if err != nil {
			t.Fatal(err)
		}
		m, err := catalog.Load(ctx, h.st, "s", r.ID)
		if err != nil {
			t.Fatal(err)
		}
		g, _, err := catalog.Graph(ctx, h.st, m, 4, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.saves, h.graphs = append(h.saves, m), append(h.graphs, g)
	}
	if _, still := h.saves[1].Packs[onlyPack(t, h.saves[0])]; still {
		t.Fatal("fixture: the second save still names the first save's pack")
	}
	ageChunks(t, h.st, time.Now().Add(-2*time.Hour))
	return h
}

func onlyPack(t *testing.T, m *manifest.Manifest) manifest.PackID {
	t.Helper()
	if len(m.Packs) != 1 {
		t.Fatalf("fixture: save %s names %d packs", m.ID, len(m.Packs))
	}
	for p := range m.Packs {
		return p
	}
	panic("unreachable")
}

// restoresAll fails unless every save of h reads back as it did.
func (h *history) restoresAll(t *testing.T, st store.Store) {
	t.Helper()
	for i, m := range h.saves {
		g, _, err := catalog.Graph(context.Background(), st, m, 4, nil)
		if err != nil || !bytes.Equal(g, h.graphs[i]) {
			t.Fatalf("save %d (%s) after gc: %v (graph equal %v)", i, m.ID, err, bytes.Equal(g, h.graphs[i]))
		}
	}
}

// verifies runs pitr verify's checks, by Stat and by reading every
// chunk: no problem, or, with want set, a missing chunk saying it.
func (h *history) verifies(t *testing.T, want string) {
	t.Helper()
	for _, read := range []bool{false, true} {
		rep, err := verify.Run(context.Background(), h.st, "s", verify.Options{ReadData: read})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case want == "" && !rep.OK():
			t.Fatalf("verify (read data %v): %+v", read, rep.Problems)
		case want != "" && (rep.OK() || rep.Problems[0].Kind != verify.Missing || !strings.Contains(rep.Problems[0].What, want)):
			t.Fatalf("verify (read data %v): %+v, want a missing chunk saying %q", read, rep.Problems, want)
		}
	}
}

func packBytes(t *testing.T, st store.Store) (n int64, forwards int) {
	t.Helper()
	err := st.List(context.Background(), store.ListOptions{Prefix: "chunks/"}, func(o store.ObjectInfo) error {
		if _, ok := manifest.ParsePackKey(o.Key); ok {
			n += o.Size
		}
		if _, ok := manifest.ParseForwardKey(o.Key); ok {
			forwards++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, forwards
}

// gc repacks an old save's pack that is mostly copies: what only the old
// save uses moves to a new pack, the copies are forwarded to the newest
// save's pack, and the old pack is deleted. Every save still restores; a
// second run finds nothing to do; once the old save is pruned, its forward
// record and the new pack go too.
func TestRepackFreesCompactionCopies(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t)
	p1 := onlyPack(t, h.saves[0])
	before, _ := packBytes(t, h.st)
	var log strings.Builder
	rep, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	after, forwards := packBytes(t, h.st)
	if rep.Repacked == 0 || exists(t, h.st, manifest.PackKey(p1)) || !exists(t, h.st, manifest.ForwardKey(p1)) || forwards != rep.Repacked {
		t.Fatalf("P1 not repacked: %+v\n%s", rep, log.String())
	}
	if after >= before || before-after != rep.RepackFreed-rep.RepackCopied {
		t.Errorf("packs %d bytes before, %d after; report %+v", before, after, rep)
	}
	for p := range h.saves[len(h.saves)-1].Packs {
		if !exists(t, h.st, manifest.PackKey(p)) {
			t.Errorf("the newest save's pack %s was repacked", p)
		}
	}
	h.restoresAll(t, h.st)
	h.verifies(t, "")
	if exists(t, h.st, gc.LeaseKey) {
		t.Error("the gc lease was not released")
	}

	again, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace})
	if err != nil || again.Repacked != 0 || again.Missing != 0 || again.Deleted != 0 || again.Forwarded != rep.Repacked {
		t.Fatalf("second run: %v %+v", err, again)
	}
	h.restoresAll(t, h.st)

	// Prune every save but the newest: the forwards and the copies go.
	for _, m := range h.saves[:len(h.saves)-1] {
		if err := catalog.Delete(ctx, h.st, "s", m.ID); err != nil {
			t.Fatal(err)
		}
	}
	ageChunks(t, h.st, time.Now().Add(-2*time.Hour))
	last, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace})
	if err != nil || last.Missing != 0 {
		t.Fatalf("after the prune: %v %+v", err, last)
	}
	if _, forwards := packBytes(t, h.st); forwards != 0 {
		t.Errorf("%d forward records left after their saves were pruned", forwards)
	}
	h.saves, h.graphs = h.saves[len(h.saves)-1:], h.graphs[len(h.graphs)-1:]
	h.restoresAll(t, h.st)
}

// A dry run reports what it would repack and changes nothing; MaxUnused 1
// repacks nothing; a young pack is never repacked.
func TestRepackDryRunAndLimits(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t)
	p1 := onlyPack(t, h.saves[0])
	dry, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace, DryRun: true})
	if err != nil || dry.Repacked == 0 || dry.RepackCopied == 0 || !exists(t, h.st, manifest.PackKey(p1)) {
		t.Fatalf("dry run: %v %+v", err, dry)
	}
	if _, forwards := packBytes(t, h.st); forwards != 0 {
		t.Fatal("a dry run wrote forward records")
	}
	off, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace, MaxUnused: 1})
	if err != nil || off.Repacked != 0 || !exists(t, h.st, manifest.PackKey(p1)) {
		t.Fatalf("MaxUnused 1: %v %+v", err, off)
	}
	young, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace, Clock: clock.NewFake(time.Now().Add(-90 * time.Minute))})
	if err != nil || young.Repacked != 0 || !exists(t, h.st, manifest.PackKey(p1)) {
		t.Fatalf("packs younger than the grace: %v %+v", err, young)
	}
}

// A reader that loaded an old save's tree before gc repacked its pack
// reads the chunks through the forward record.
func TestRepackDuringRestore(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t)
	entries, err := catalog.Entries(ctx, h.st, h.saves[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace}); err != nil || rep.Repacked == 0 {
		t.Fatalf("gc: %v %+v", err, rep)
	}
	refs := make([]catalog.Ref, len(entries))
	for i, e := range entries {
		refs[i] = catalog.Ref{ID: e.ID, Loc: e.Loc}
	}
	var got bytes.Buffer
	raws := make([][]byte, len(refs))
	err = catalog.ReadChunks(ctx, h.st, refs, 4, func(i int, raw []byte) error { raws[i] = bytes.Clone(raw); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i := range refs {
		got.Write(raws[i])
	}
	if !bytes.Equal(got.Bytes(), h.graphs[0]) {
		t.Fatal("chunks read through forward records differ")
	}
	// Without its forward record, the repacked pack's chunks are missing,
	// and verify says why.
	if err := h.st.Delete(ctx, manifest.ForwardKey(onlyPack(t, h.saves[0]))); err != nil {
		t.Fatal(err)
	}
	h.verifies(t, "forward record")
}

// failDelete fails every Delete of a pack, as a gc that stops between a
// forward record and the delete.
type failDelete struct{ store.Store }

func (f failDelete) Delete(ctx context.Context, key string) error {
	if _, ok := manifest.ParsePackKey(key); ok {
		return errors.New("injected: delete refused")
	}
	return f.Store.Delete(ctx, key)
}

// A run that wrote a forward record but did not delete the pack is
// completed by the next: the record is checked and used. While a run holds
// the lease, another refuses to start; an expired lease is taken over.
func TestRepackCompletesAStoppedRunAndHoldsTheLease(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t)
	p1 := onlyPack(t, h.saves[0])
	if _, err := gc.Run(ctx, failDelete{h.st}, gc.Options{Grace: gcsafety.DefaultGrace}); err == nil {
		t.Fatal("gc with deletes refused succeeded")
	}
	if !exists(t, h.st, manifest.PackKey(p1)) || !exists(t, h.st, manifest.ForwardKey(p1)) {
		t.Fatal("fixture: the stopped run should leave the pack and its record")
	}
	h.restoresAll(t, h.st)
	// The stopped run could not release its lease through failDelete? It
	// deletes the lease, not a pack, so it did; hold one now.
	lease := `{"holder":"other host","id":"x","expires":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`
	if err := h.st.Put(ctx, gc.LeaseKey, []byte(lease)); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace}); !errors.Is(err, gc.ErrLeaseHeld) || !strings.Contains(err.Error(), "other host") {
		t.Fatalf("gc while another holds the lease: %v", err)
	}
	later := clock.NewFake(time.Now().Add(2 * time.Hour))
	rep, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace, Clock: later})
	if err != nil || rep.Repacked == 0 || rep.RepackCopied != 0 || exists(t, h.st, manifest.PackKey(p1)) {
		t.Fatalf("gc after the lease expired: %v %+v", err, rep)
	}
	h.restoresAll(t, h.st)
}

// A save in flight while gc repacks: its base is the newest save, whose
// packs gc never repacks, so the save commits whole; the older saves read
// through their forward records, and a later gc keeps all of it.
func TestRepackDuringSave(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t)
	p1 := onlyPack(t, h.saves[0])
	putNodes(t, h.sess, 30, 3, 3000, 777)
	m, rep := saveAcrossGC(t, h.st, h.ps, h.sv, "s")
	if rep.Repacked == 0 || exists(t, h.st, manifest.PackKey(p1)) {
		t.Fatalf("gc during the save did not repack: %+v", rep)
	}
	assertWhole(t, h.st, m, rep)
	h.restoresAll(t, h.st)
	ageChunks(t, h.st, time.Now().Add(-2*time.Hour))
	rep, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace})
	if err != nil || rep.Missing != 0 {
		t.Fatalf("gc after: %v %+v", err, rep)
	}
	assertWhole(t, h.st, m, rep)
	h.restoresAll(t, h.st)
}

// A rollback commits a save that names a pack gc repacked (restore of an
// old save, then serve): the newest save anchors the gone pack, so every
// chunk its record forwards is kept where it went, and the save restores.
func TestRepackKeepsWhatARollbackNames(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t)
	p1 := onlyPack(t, h.saves[0])
	if rep, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace}); err != nil || rep.Repacked == 0 {
		t.Fatalf("gc: %v %+v", err, rep)
	}
	back := *h.saves[0]
	back.ID = manifest.NewID(time.Now().Add(time.Second))
	at, err := manifest.IDTime(back.ID)
	if err != nil {
		t.Fatal(err)
	}
	back.Time = at
	if err := catalog.Put(ctx, h.st, &back); err != nil {
		t.Fatal(err)
	}
	for _, m := range h.saves { // only the rollback is kept
		if err := catalog.Delete(ctx, h.st, "s", m.ID); err != nil {
			t.Fatal(err)
		}
	}
	ageChunks(t, h.st, time.Now().Add(-2*time.Hour))
	rep, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace})
	if err != nil || rep.Missing != 0 || !exists(t, h.st, manifest.ForwardKey(p1)) {
		t.Fatalf("gc with the rollback newest: %v %+v", err, rep)
	}
	h.saves, h.graphs = []*manifest.Manifest{&back}, h.graphs[:1]
	h.restoresAll(t, h.st)
}

// bundles returns the forward bundles in st.
func bundles(t *testing.T, st store.Store) []store.ObjectInfo {
	t.Helper()
	var out []store.ObjectInfo
	err := st.List(context.Background(), store.ListOptions{Prefix: manifest.BundlesPrefix}, func(o store.ObjectInfo) error {
		out = append(out, o)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A run that repacks writes one forward bundle with a copy of every record
// in force, as stored; a run that changes no record leaves it; once the
// records are swept, so is the bundle.
func TestGCBundlesTheRecordsInForce(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t)
	rep, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace})
	if err != nil || rep.Repacked == 0 {
		t.Fatalf("%v %+v", err, rep)
	}
	bs := bundles(t, h.st)
	if len(bs) != 1 || rep.Bundled != rep.Repacked {
		t.Fatalf("%d bundles, %d records bundled, %d packs repacked", len(bs), rep.Bundled, rep.Repacked)
	}
	b, err := h.st.Get(ctx, bs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := manifest.DecodeBundleIndex(b, int64(len(b)))
	if err != nil || len(idx.Entries) != rep.Bundled {
		t.Fatalf("bundle index: %v", err)
	}
	for _, e := range idx.Entries {
		copyOf, err := manifest.DecodeForward(b[e.Offset:e.Offset+e.Length], e.Pack)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := h.st.Get(ctx, manifest.ForwardKey(e.Pack))
		if err != nil {
			t.Fatal(err)
		}
		again, err := copyOf.Encode()
		if err != nil || !bytes.Equal(again, stored) {
			t.Fatalf("the bundle's copy of pack %s's record differs from the record", e.Pack)
		}
	}
	h.restoresAll(t, h.st)

	again, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace})
	if err != nil || again.Bundled != 0 {
		t.Fatalf("a run that changed nothing: %v %+v", err, again)
	}
	if now := bundles(t, h.st); len(now) != 1 || now[0].Key != bs[0].Key {
		t.Fatalf("a run that changed nothing replaced the bundle: %v", now)
	}

	for _, m := range h.saves[:len(h.saves)-1] {
		if err := catalog.Delete(ctx, h.st, "s", m.ID); err != nil {
			t.Fatal(err)
		}
	}
	ageChunks(t, h.st, time.Now().Add(-2*time.Hour))
	if _, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace}); err != nil {
		t.Fatal(err)
	}
	if left := bundles(t, h.st); len(left) != 0 {
		t.Fatalf("bundles left with no record: %v", left)
	}
}

// A bundle that does not hold the records as stored (a run that stopped
// between rewriting a record and bundling, a clock that made a record look
// older than it) is replaced by the next run, whatever the times say; a
// store with several bundles is left with one.
func TestGCReplacesABundleThatDiffersFromTheRecords(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t)
	if _, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace}); err != nil {
		t.Fatal(err)
	}
	bs := bundles(t, h.st)
	if len(bs) != 1 {
		t.Fatalf("%d bundles", len(bs))
	}
	// A newer bundle, written last, whose copy of one record differs: it
	// forwards nothing.
	b, err := h.st.Get(ctx, bs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := manifest.DecodeBundleIndex(b, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	recs := map[manifest.PackID][]byte{}
	for _, e := range idx.Entries {
		recs[e.Pack] = b[e.Offset : e.Offset+e.Length]
	}
	p := idx.Entries[0].Pack
	if recs[p], err = (&manifest.Forward{Pack: p}).Encode(); err != nil {
		t.Fatal(err)
	}
	wrong, err := manifest.EncodeBundle(recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.st.Put(ctx, manifest.BundleKey(), wrong); err != nil {
		t.Fatal(err)
	}
	rep, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace})
	if err != nil || rep.Bundled != len(idx.Entries) {
		t.Fatalf("%v %+v: want the records bundled again", err, rep)
	}
	left := bundles(t, h.st)
	if len(left) != 1 || left[0].Key == bs[0].Key {
		t.Fatalf("bundles left: %v", left)
	}
	got, err := h.st.Get(ctx, left[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[manifest.PackID][]byte{}
	for _, e := range idx.Entries {
		if stored[e.Pack], err = h.st.Get(ctx, manifest.ForwardKey(e.Pack)); err != nil {
			t.Fatal(err)
		}
	}
	if idx, err := manifest.DecodeBundleIndex(got, int64(len(got))); err != nil || idx.Holds(recs) || !idx.Holds(stored) {
		t.Fatalf("the new bundle: %v; it holds the records as stored: %v", err, err == nil && idx.Holds(stored))
	}
	h.restoresAll(t, h.st)
}

// verify, after gc repacked, checks a repacked pack's chunks through its
// record without asking for the pack (the listing says it is gone): no
// request fails. A pack a stopped run left behind, whose record leads to
// a copy since lost, still verifies: the chunks are in the pack the save
// names.
func TestVerifyAfterRepackAsksForNoGonePack(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t)
	if _, err := gc.Run(ctx, h.st, gc.Options{Grace: gcsafety.DefaultGrace}); err != nil {
		t.Fatal(err)
	}
	st := counting.New(h.st)
	rep, err := verify.Run(ctx, st, "s", verify.Options{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Problems)
	}
	if c := st.Snapshot(); c.Errors != 0 {
		t.Errorf("verify after gc: %+v: want no failed request", c)
	}

	h = newHistory(t)
	p1 := onlyPack(t, h.saves[0])
	if _, err := gc.Run(ctx, failDelete{h.st}, gc.Options{Grace: gcsafety.DefaultGrace}); err == nil {
		t.Fatal("gc with deletes refused succeeded")
	}
	b, err := h.st.Get(ctx, manifest.ForwardKey(p1))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := manifest.DecodeForward(b, p1)
	if err != nil {
		t.Fatal(err)
	}
	for p := range rec.Sizes {
		if _, named := h.saves[len(h.saves)-1].Packs[p]; !named { // gc's copy
			if err := h.st.Delete(ctx, manifest.PackKey(p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.verifies(t, "")
}
