package gc

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

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
	// copied are the chunks this run copied into new packs, written is
	// the size of each of those packs.
	copied  map[chunker.ID]manifest.Loc
	written map[manifest.PackID]int64
}

func newRepacker(st store.Store, opts Options, mk marks, ls listing, fw *catalog.Forwards, l *lease, rep *Report) *repacker {
	return &repacker{st: st, opts: opts, mk: mk, ls: ls, fw: fw, lease: l, rep: rep,
		need: map[manifest.PackID]map[place]chunker.ID{}, copies: map[chunker.ID][]manifest.Loc{},
		copied: map[chunker.ID]manifest.Loc{}, written: map[manifest.PackID]int64{}}
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
	if r.opts.DryRun {
		for _, t := range plans {
			r.count(t)
		}
		return nil
	}
	failed, err := r.copyAll(ctx, plans)
	if err != nil {
		return err
	}
	for i, t := range plans {
		if !failed[i] {
			if err := r.forwardAndDelete(ctx, t); err != nil {
				return err
			}
		}
	}
	if err := r.compress(ctx); err != nil {
		return err
	}
	if r.rep.Repacked > 0 {
		logf(r.opts.Log, "gc: repacked %d packs of %d bytes, copying %d bytes into %d new packs\n",
			r.rep.Repacked, r.rep.RepackFreed, r.rep.RepackCopied, r.rep.RepackPacks)
	}
	return nil
}

// uses walks the trees of every kept save and records where each chunk
// and tree node they use is now (through forward records): need by pack,
// copies by chunk. A save that names a pack that is gone and anchored (a
// rollback's) may use any chunk its record forwards, so all of them are
// needed.
func (r *repacker) uses(ctx context.Context) error {
	walked := 0
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
	err := catalog.Walk(ctx, r.st, r.mk.saves, r.fw, func(m *manifest.Manifest, ref catalog.Ref) error {
		return use(ref.ID, ref.Loc)
	}, func(m *manifest.Manifest, n catalog.TreeNodeAt) error {
		if walked++; walked%1024 == 0 { // a long walk keeps the lease
			if err := r.lease.check(ctx); err != nil {
				return err
			}
		}
		for _, e := range n.Entries {
			if err := use(e.ID, e.Loc); err != nil {
				return err
			}
		}
		return nil
	})
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
// record (a run stopped before deleting it) is taken as repacked when its
// record leads to the chunk, so that this run completes it; otherwise the
// pack itself holds the chunk. A chain longer than catalog.MaxForwards is
// an error: gc compresses chains (compress), so it means something is
// wrong, and nothing is repacked.
func (r *repacker) resolve(ctx context.Context, id chunker.ID, loc manifest.Loc) (manifest.Loc, bool, error) {
	return r.resolveFrom(ctx, id, loc, 0)
}

func (r *repacker) resolveFrom(ctx context.Context, id chunker.ID, loc manifest.Loc, depth int) (manifest.Loc, bool, error) {
	if !loc.InPack() {
		return loc, false, nil
	}
	_, present := r.ls.packs[loc.Pack]
	_, forwarded := r.ls.forwards[loc.Pack]
	if _, mine := r.written[loc.Pack]; mine || (present && !forwarded) {
		return loc, true, nil // a pack this run wrote is not in its listing
	}
	if depth >= catalog.MaxForwards {
		return loc, false, fmt.Errorf("chunk %s: more than %d forward records from pack %s", id, catalog.MaxForwards, loc.Pack)
	}
	f, err := r.fw.Load(ctx, r.st, loc.Pack)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !present {
		return loc, false, err
	}
	if err == nil {
		if to, ok := f.Lookup(id); ok {
			end, ok, err := r.resolveFrom(ctx, id, to, depth+1)
			if err != nil || ok {
				return end, ok, err
			}
		}
	}
	return loc, present, nil
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

// plan forwards each chunk needed from p to a copy in a pack this run
// keeps: an anchored one (laid out in graph order by the newest saves)
// first, then one of gc's copies, then any other; it copies the others.
// worth counts the same copies, so that a pack it finds worth repacking
// copies no more than it expected, and a copy is not repacked again on
// the next run for a chunk another pack holds.
func (r *repacker) plan(p manifest.PackID, retiring map[manifest.PackID]bool) *retire {
	t := &retire{pack: p, size: r.ls.packs[p].Size, alt: map[chunker.ID]manifest.Loc{}}
	for _, ref := range r.needed(p) {
		var alt manifest.Loc
		for _, l := range r.copies[ref.ID] {
			if l.Pack == p || retiring[l.Pack] {
				continue
			}
			if rank(r, l.Pack) > rank(r, alt.Pack) {
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

// rank orders the packs a chunk may be forwarded to: an anchored pack,
// then one of gc's copies (a pack no save names), then any other; 0 is no
// pack.
func rank(r *repacker, p manifest.PackID) int {
	_, anchored := r.mk.anchors[p]
	_, named := r.mk.named[p]
	switch {
	case p.IsZero():
		return 0
	case anchored:
		return 3
	case !named:
		return 2
	}
	return 1
}

// count reports t repacked; a dry run counts the bytes it would copy,
// a real one those it wrote (copyPack).
func (r *repacker) count(t *retire) {
	r.rep.Repacked++
	r.rep.RepackFreed += t.size
	if r.opts.DryRun {
		r.rep.RepackCopied += t.bytes
	}
}

// forwardAndDelete writes t's forward record (its copied chunks where
// copyAll put them), then deletes its pack. A record already there (a run
// that stopped between the two) is used if it forwards every chunk needed
// to a pack in the store.
func (r *repacker) forwardAndDelete(ctx context.Context, t *retire) error {
	f := &manifest.Forward{Pack: t.pack, Sizes: map[manifest.PackID]int64{}}
	add := func(id chunker.ID, l manifest.Loc) {
		f.Entries = append(f.Entries, manifest.ForwardEntry{ID: id, To: l})
		f.Sizes[l.Pack], _ = r.sizeOf(l.Pack)
	}
	for id, l := range t.alt {
		add(id, l)
	}
	for _, ref := range t.rem {
		add(ref.ID, r.copied[ref.ID])
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
	// The pack is gone and has a record: so the sweep and compress see it.
	r.ls.forwards[t.pack] = store.ObjectInfo{Key: key}
	delete(r.ls.packs, t.pack)
	if err == nil { // the record written is the one in force
		r.fw.Set(f)
	}
	return nil
}

// sizeOf returns the size of pack p if it is in the store: one this run
// wrote, or one it listed.
func (r *repacker) sizeOf(p manifest.PackID) (int64, bool) {
	if size, ok := r.written[p]; ok {
		return size, true
	}
	o, ok := r.ls.packs[p]
	return o.Size, ok
}

// compress rewrites the records of gone packs that forward chunks to a
// pack that is gone too (repacked by this run or an earlier one), so that
// they point where the chunks are now: chains stay one record long, and a
// chunk moved by every run does not drift past catalog.MaxForwards. The
// record of the pack in between was written first, so a reader holding
// the old record still finds the chunks.
func (r *repacker) compress(ctx context.Context) error {
	loaded := r.fw.Loaded()
	packs := make([]manifest.PackID, 0, len(loaded))
	for p := range loaded {
		if _, present := r.ls.packs[p]; !present {
			packs = append(packs, p)
		}
	}
	slices.SortFunc(packs, func(a, b manifest.PackID) int { return bytes.Compare(a[:], b[:]) })
	for _, p := range packs {
		f := loaded[p]
		nf := &manifest.Forward{Pack: p, Sizes: map[manifest.PackID]int64{}}
		changed := false
		for _, e := range f.Entries {
			to := e.To
			_, present := r.ls.packs[to.Pack]
			if _, mine := r.written[to.Pack]; !present && !mine {
				if end, ok, err := r.resolve(ctx, e.ID, to); err != nil {
					return err
				} else if ok {
					to, changed = end, true
				}
			}
			nf.Entries = append(nf.Entries, manifest.ForwardEntry{ID: e.ID, To: to})
			size, ok := r.sizeOf(to.Pack)
			if !ok {
				size = f.Sizes[to.Pack] // a pack gone, as the record says
			}
			nf.Sizes[to.Pack] = size
		}
		if !changed {
			continue
		}
		b, err := nf.Encode()
		if err != nil {
			return err
		}
		if err := r.lease.check(ctx); err != nil {
			return err
		}
		if err := r.st.Put(ctx, manifest.ForwardKey(p), b); err != nil {
			return fmt.Errorf("rewrite forward record %s: %w", manifest.ForwardKey(p), err)
		}
		r.fw.Set(nf)
		r.rep.ForwardsRewritten++
	}
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
