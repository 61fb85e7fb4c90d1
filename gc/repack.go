package gc

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/gcsafety"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// DefaultMaxUnused is Options.MaxUnused's default: a pack is repacked once
// more than a fifth of it is dead or a copy.
const DefaultMaxUnused = 0.2

// repackPackSize caps the packs a repack writes, as the saver's
// (replicate.DefaultPackSize).
const repackPackSize = 16 << 20

// repacker moves what kept saves still need out of packs that are mostly
// dead or copies, writes their forward records and deletes them.
type repacker struct {
	st    store.Store
	opts  Options
	mk    marks
	ls    listing
	fw    *catalog.Forwards
	lease *lease
	rep   *Report

	// need holds, for each pack in the store, the chunks and tree nodes
	// the kept saves need from it, by place.
	need map[manifest.PackID]map[place]chunker.ID
	// copies are the places in the store of each chunk they use.
	copies map[chunker.ID][]manifest.Loc
	// copied are the chunks this run copied into new packs.
	copied map[chunker.ID]manifest.Loc
}

type place struct{ off, length int64 }

// retire is the plan for one pack: forward to alt what has a copy
// elsewhere, copy the rest (rem) into a new pack.
type retire struct {
	pack  manifest.PackID
	size  int64
	alt   map[chunker.ID]manifest.Loc
	rem   []catalog.Ref
	bytes int64 // of rem
}

func (r *repacker) run(ctx context.Context) error {
	maxUnused := r.opts.MaxUnused
	if maxUnused == 0 {
		maxUnused = DefaultMaxUnused
	}
	if maxUnused >= 1 {
		return nil
	}
	var cands []manifest.PackID
	for p, o := range r.ls.packs {
		_, marked := r.mk.packs[p]
		_, anchored := r.mk.anchors[p]
		if marked && !anchored && gcsafety.Expired(o.ModTime, r.rep.Cutoff) {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	slices.SortFunc(cands, func(a, b manifest.PackID) int { return bytes.Compare(a[:], b[:]) })
	if err := r.uses(ctx); err != nil {
		if ctx.Err() != nil {
			return err
		}
		// A tree gc cannot read blocks repacking, not the sweep, which
		// needs only the manifests' pack lists.
		logf(r.opts.Log, "gc: warning: not repacking: %v\n", err)
		r.rep.RepackSkipped = err.Error()
		return nil
	}
	retiring := map[manifest.PackID]bool{}
	for _, p := range cands {
		retiring[p] = r.worth(p, maxUnused)
	}
	var plans []*retire
	for _, p := range cands {
		if retiring[p] {
			plans = append(plans, r.plan(p, retiring))
		}
	}
	for i := 0; i < len(plans); {
		j, n := i, int64(0)
		for j < len(plans) && (j == i || n+plans[j].bytes <= repackPackSize) {
			n += plans[j].bytes
			j++
		}
		if err := r.batch(ctx, plans[i:j]); err != nil {
			return err
		}
		i = j
	}
	if r.rep.Repacked > 0 {
		logf(r.opts.Log, "gc: repacked %d packs of %d bytes, copying %d bytes into %d new packs\n",
			r.rep.Repacked, r.rep.RepackFreed, r.rep.RepackCopied, r.rep.RepackPacks)
	}
	return nil
}

// uses walks the trees of every kept save and records where each chunk
// and tree node they use is now (through forward records), and which of
// those places are in anchored packs. A save that names a pack that is
// gone and anchored (a rollback's) may use any chunk its record
// forwards, so all of them are needed.
func (r *repacker) uses(ctx context.Context) error {
	r.need = map[manifest.PackID]map[place]chunker.ID{}
	r.copies = map[chunker.ID][]manifest.Loc{}
	r.copied = map[chunker.ID]manifest.Loc{}
	saves := make([]*manifest.Manifest, len(r.mk.saves))
	for i, ks := range r.mk.saves {
		saves[i] = ks.m
	}
	var rootErr error
	use := func(id chunker.ID, loc manifest.Loc) error {
		to, ok, err := r.resolve(ctx, id, loc)
		if err != nil || !ok {
			return err
		}
		at := r.need[to.Pack]
		if at == nil {
			at = map[place]chunker.ID{}
			r.need[to.Pack] = at
		}
		pl := place{to.Offset, to.Length}
		if _, seen := at[pl]; !seen {
			at[pl] = id
			r.copies[id] = append(r.copies[id], to)
		}
		return nil
	}
	err := catalog.Walk(ctx, r.st, saves, r.fw, func(m *manifest.Manifest, ref catalog.Ref) {
		if err := use(ref.ID, ref.Loc); err != nil && rootErr == nil {
			rootErr = err
		}
	}, func(m *manifest.Manifest, n catalog.TreeNodeAt) error {
		for _, e := range n.Entries {
			if err := use(e.ID, e.Loc); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = rootErr
	}
	if err != nil {
		return err
	}
	for p := range r.mk.anchors {
		if _, ok := r.ls.packs[p]; ok {
			continue
		}
		f, err := r.fw.Load(ctx, r.st, p)
		if errors.Is(err, store.ErrNotFound) {
			continue // missing: counted by reach
		}
		if err != nil {
			return err
		}
		for _, e := range f.Entries {
			if err := use(e.ID, e.To); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve follows forward records from loc to the pack in the store that
// holds chunk id; ok is false when there is none (the chunk is missing,
// which reach and verify report). A pack still in the store that has a
// record is taken as repacked, so that the run completes the one that
// stopped: what its record forwards is needed where it went, and the
// pack itself is then repacked with nothing to copy.
func (r *repacker) resolve(ctx context.Context, id chunker.ID, loc manifest.Loc) (manifest.Loc, bool, error) {
	for range catalog.MaxForwards + 1 {
		if !loc.InPack() {
			return loc, false, nil
		}
		_, present := r.ls.packs[loc.Pack]
		if _, forwarded := r.ls.forwards[loc.Pack]; present && !forwarded {
			return loc, true, nil
		}
		// A pack with a record (present: a run stopped before deleting
		// it) is where its record says, if it says.
		f, err := r.fw.Load(ctx, r.st, loc.Pack)
		if present && err == nil {
			if to, ok := f.Lookup(id); ok {
				loc = to
				continue
			}
			return loc, true, nil
		}
		if present {
			return loc, true, nil
		}
		if errors.Is(err, store.ErrNotFound) {
			return loc, false, nil
		}
		if err != nil {
			return loc, false, err
		}
		to, ok := f.Lookup(id)
		if !ok {
			return loc, false, nil
		}
		loc = to
	}
	return loc, false, nil
}

// needed returns the distinct chunks the kept saves need from pack p,
// each at its first place.
func (r *repacker) needed(p manifest.PackID) []catalog.Ref {
	places := make([]place, 0, len(r.need[p]))
	for pl := range r.need[p] {
		places = append(places, pl)
	}
	slices.SortFunc(places, func(a, b place) int { return cmp.Compare(a.off, b.off) })
	seen := map[chunker.ID]bool{}
	var refs []catalog.Ref
	for _, pl := range places {
		id := r.need[p][pl]
		if !seen[id] {
			seen[id] = true
			refs = append(refs, catalog.Ref{ID: id, Loc: manifest.Loc{Pack: p, Offset: pl.off, Length: pl.length}})
		}
	}
	return refs
}

// worth reports whether pack p is worth repacking: more than maxUnused of
// its bytes are not needed, or needed but held by another pack too.
func (r *repacker) worth(p manifest.PackID, maxUnused float64) bool {
	size := r.ls.packs[p].Size
	var only int64
	for _, ref := range r.needed(p) {
		if !slices.ContainsFunc(r.copies[ref.ID], func(l manifest.Loc) bool { return l.Pack != p }) {
			only += ref.Loc.Length
		}
	}
	return float64(size-only) > maxUnused*float64(size)
}

// plan forwards each chunk needed from p to a copy in an anchored pack, or
// else in another pack this run keeps, and copies the others.
func (r *repacker) plan(p manifest.PackID, retiring map[manifest.PackID]bool) *retire {
	t := &retire{pack: p, size: r.ls.packs[p].Size, alt: map[chunker.ID]manifest.Loc{}}
	for _, ref := range r.needed(p) {
		var alt manifest.Loc
		for _, l := range r.copies[ref.ID] {
			if l.Pack == p || retiring[l.Pack] {
				continue
			}
			if _, anchored := r.mk.anchors[l.Pack]; anchored || !alt.InPack() {
				alt = l
			}
		}
		if alt.InPack() {
			t.alt[ref.ID] = alt
			continue
		}
		t.rem = append(t.rem, ref)
		t.bytes += ref.Loc.Length
	}
	return t
}

// batch repacks ts: reads (and checks) the chunks only they hold, writes
// them into one new pack, then for each pack its forward record, then
// deletes it. A pack with a chunk that cannot be read is left as it is.
func (r *repacker) batch(ctx context.Context, ts []*retire) error {
	if r.opts.DryRun {
		for _, t := range ts {
			r.count(t)
		}
		return nil
	}
	frames, failed, err := r.readRemainder(ctx, ts)
	if err != nil {
		return err
	}
	to := manifest.NewPackID()
	var body []byte
	locs := map[chunker.ID]manifest.Loc{}
	for i, t := range ts {
		if failed[i] {
			continue
		}
		for _, ref := range t.rem {
			if _, ok := locs[ref.ID]; !ok {
				f := frames[ref.ID]
				locs[ref.ID] = manifest.Loc{Pack: to, Offset: int64(len(body)), Length: int64(len(f))}
				body = append(body, f...)
				r.copied[ref.ID] = locs[ref.ID]
			}
		}
	}
	if len(body) > 0 {
		if err := r.lease.check(ctx); err != nil {
			return err
		}
		if err := r.st.Put(ctx, manifest.PackKey(to), body); err != nil {
			return fmt.Errorf("upload pack %s (%d bytes): %w", manifest.PackKey(to), len(body), err)
		}
		r.rep.RepackPacks++
		r.rep.RepackCopied += int64(len(body))
	}
	for i, t := range ts {
		if failed[i] {
			continue
		}
		if err := r.forwardAndDelete(ctx, t, locs); err != nil {
			return err
		}
	}
	return nil
}

// readRemainder reads the chunks ts must copy (each once, checked against
// its id) and compresses them again; failed[i] is set when one of ts[i]'s
// cannot be read, and a chunk an earlier batch copied is forwarded there.
func (r *repacker) readRemainder(ctx context.Context, ts []*retire) (map[chunker.ID][]byte, []bool, error) {
	var refs []catalog.Ref
	holders := map[chunker.ID][]int{}
	for i, t := range ts {
		t.rem = slices.DeleteFunc(t.rem, func(ref catalog.Ref) bool { // copied by an earlier batch
			l, ok := r.copied[ref.ID]
			if ok {
				t.alt[ref.ID] = l
			}
			return ok
		})
		for _, ref := range t.rem {
			if holders[ref.ID] == nil {
				refs = append(refs, ref)
			}
			holders[ref.ID] = append(holders[ref.ID], i)
		}
	}
	var mu sync.Mutex
	frames := map[chunker.ID][]byte{}
	failed := make([]bool, len(ts))
	err := catalog.ReadEach(ctx, r.st, refs, r.opts.Parallel, func(k int, raw []byte, err error) error {
		if err == nil {
			var frame []byte
			if frame, err = chunker.Compress(raw); err == nil {
				mu.Lock()
				frames[refs[k].ID] = frame
				mu.Unlock()
				return nil
			}
		}
		var ce *catalog.ChunkError
		if !errors.As(err, &ce) {
			return err
		}
		logf(r.opts.Log, "gc: warning: not repacking pack %s: %v\n", refs[k].Loc.Pack, err)
		mu.Lock()
		for _, i := range holders[refs[k].ID] {
			failed[i] = true
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read chunks to repack: %w", err)
	}
	return frames, failed, nil
}

// count reports t repacked; a dry run counts the bytes it would copy,
// a real one those it wrote (batch).
func (r *repacker) count(t *retire) {
	r.rep.Repacked++
	r.rep.RepackFreed += t.size
	if r.opts.DryRun {
		r.rep.RepackCopied += t.bytes
	}
}

// forwardAndDelete writes t's forward record, then deletes its pack. A
// record already there (a run that stopped between the two) is used if
// it forwards every chunk needed to a pack in the store.
func (r *repacker) forwardAndDelete(ctx context.Context, t *retire, locs map[chunker.ID]manifest.Loc) error {
	f := &manifest.Forward{Pack: t.pack}
	for id, l := range t.alt {
		f.Entries = append(f.Entries, manifest.ForwardEntry{ID: id, To: l})
	}
	for _, ref := range t.rem {
		f.Entries = append(f.Entries, manifest.ForwardEntry{ID: ref.ID, To: locs[ref.ID]})
	}
	b, err := f.Encode()
	if err != nil {
		return err
	}
	if err := r.lease.check(ctx); err != nil {
		return err
	}
	key := manifest.ForwardKey(t.pack)
	_, err = r.st.PutIf(ctx, key, b, store.Condition{IfNoneMatch: true})
	if errors.Is(err, store.ErrPreconditionFailed) {
		ok, why, cerr := r.covers(ctx, f)
		if cerr != nil {
			return cerr
		}
		if !ok {
			logf(r.opts.Log, "gc: warning: not repacking pack %s: %s already exists and %s\n", t.pack, key, why)
			return nil
		}
	} else if err != nil {
		return fmt.Errorf("write forward record %s: %w", key, err)
	}
	if err := r.lease.check(ctx); err != nil {
		return err
	}
	if err := r.st.Delete(ctx, manifest.PackKey(t.pack)); err != nil {
		return fmt.Errorf("delete repacked pack %s: %w", manifest.PackKey(t.pack), err)
	}
	r.count(t)
	return nil
}

// covers reports whether the stored forward record of want.Pack forwards
// every chunk want does, each to a pack in the store.
func (r *repacker) covers(ctx context.Context, want *manifest.Forward) (bool, string, error) {
	key := manifest.ForwardKey(want.Pack)
	b, err := r.st.Get(ctx, key)
	if err != nil {
		return false, "", fmt.Errorf("read forward record %s: %w", key, err)
	}
	have, err := manifest.DecodeForward(b, want.Pack)
	if err != nil {
		return false, err.Error(), nil
	}
	checked := map[manifest.PackID]bool{}
	for _, e := range want.Entries {
		l, ok := have.Lookup(e.ID)
		if !ok {
			return false, "does not forward chunk " + e.ID.String(), nil
		}
		if checked[l.Pack] {
			continue
		}
		if _, err := r.st.Stat(ctx, manifest.PackKey(l.Pack)); errors.Is(err, store.ErrNotFound) {
			return false, "forwards to pack " + l.Pack.String() + ", which is gone", nil
		} else if err != nil {
			return false, "", fmt.Errorf("stat pack %s: %w", l.Pack, err)
		}
		checked[l.Pack] = true
	}
	return true, "", nil
}
