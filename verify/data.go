package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

// subsetStream is the second PCG seed word of the subset choice, fixed so
// that a seed means the same choice in every pitr version that keeps it.
const subsetStream = 0x70697472 // "pitr"

// checkSubset downloads and checks percent of the distinct data chunks
// (chosen with seed) and Stats the others.
func (c *checker) checkSubset(ctx context.Context, saves []*save, percent float64, seed int64) error {
	all := distinct(saves)
	c.rep.DataChunks = len(all)
	read := make([]bool, len(all))
	// percent*n/100 rather than percent/100*n: 10% of 30 is 3, not 3.0000000000000004.
	n := min(len(all), int(math.Ceil(percent*float64(len(all))/100-1e-9)))
	if n > 0 {
		r := rand.New(rand.NewPCG(uint64(seed), subsetStream))
		for _, i := range r.Perm(len(all))[:n] {
			read[i] = true
		}
	}
	var toRead []manifest.Entry
	var toStat []int
	for i, e := range all {
		if read[i] {
			toRead = append(toRead, e)
		} else {
			toStat = append(toStat, i)
		}
	}
	if _, err := c.downloadAll(ctx, toRead); err != nil {
		return fmt.Errorf("verify: check data chunks: %w", err)
	}
	// A pack holds many chunks: each object is Stat-ed once. A pack the
	// listing of chunks/f/ (Run's) says gc repacked is not: its chunks are checked
	// through its record first, and the pack Stat-ed only if they are not
	// where it leads (a gc run that stopped before deleting it).
	keys := map[string]verdict{}
	repacked := map[string]bool{}
	var order []string
	for _, i := range toStat {
		l := all[i].Loc
		k := l.Key(all[i].ID)
		if l.InPack() && c.fw.Listed(l.Pack) {
			repacked[k] = true
			continue
		}
		if _, ok := keys[k]; !ok {
			keys[k] = verdict{}
			order = append(order, k)
		}
	}
	got := make([]verdict, len(order))
	err := forEach(ctx, len(order), c.parallel, func(ctx context.Context, i int) error {
		_, err := c.st.Stat(ctx, order[i])
		v, stop := storeVerdict(ctx, err)
		got[i] = v
		return stop
	})
	if err != nil {
		return fmt.Errorf("verify: check data chunks: %w", err)
	}
	for i, k := range order {
		keys[k] = got[i]
	}
	vs := make([]verdict, len(toStat))
	for j, i := range toStat {
		e := all[i]
		key := e.Loc.Key(e.ID)
		v := keys[key]
		switch {
		case repacked[key]:
			if v, err = c.repackedVerdict(ctx, e, key, keys); err != nil {
				return fmt.Errorf("verify: check data chunks: %w", err)
			}
		case v.kind == Missing && e.Loc.InPack():
			// A pack gc repacked: the chunk is where its record says.
			if v, err = c.forwarded(ctx, c.fw, e, keys); err != nil {
				return fmt.Errorf("verify: check data chunks: %w", err)
			}
		case v.kind != "" && e.Loc.InPack():
			v.what += " (in " + e.Loc.String() + ")"
		}
		vs[j] = v
	}
	c.mu.Lock()
	for j, i := range toStat {
		c.setVerdictLocked(all[i].ID, vs[j])
	}
	c.mu.Unlock()
	c.report(saves)
	return nil
}

// download fetches and checks data chunk e, records its verdict and
// returns its raw bytes if it is good.
func (c *checker) download(ctx context.Context, e manifest.Entry) ([]byte, error) {
	raw, v, n, err := fetch(ctx, c.st, e.ID)
	if err != nil {
		return nil, err
	}
	if v.kind == "" && int64(len(raw)) != e.Size {
		v = verdict{Size, fmt.Sprintf("%s: %d bytes, the chunk list says %d", Size, len(raw), e.Size)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, again := c.verdicts[e.ID]; !again {
		c.rep.Read++
	}
	c.rep.Downloads++
	c.rep.BytesRead += n
	c.setVerdictLocked(e.ID, v)
	if v.kind != "" {
		return nil, nil
	}
	return raw, nil
}

// downloadAll downloads and checks the chunks es, recording their
// verdicts, and returns the raw bytes of the good ones (nil for the bad):
// format 1 chunks one object each, packed chunks by ranged reads of their
// packs (package catalog).
func (c *checker) downloadAll(ctx context.Context, es []manifest.Entry) ([][]byte, error) {
	got := make([][]byte, len(es))
	var own []int
	var refs []catalog.Ref
	var packed []int
	for i, e := range es {
		if e.Loc.InPack() {
			refs = append(refs, catalog.Ref{ID: e.ID, Loc: e.Loc})
			packed = append(packed, i)
		} else {
			own = append(own, i)
		}
	}
	err := forEach(ctx, len(own), c.parallel, func(ctx context.Context, j int) error {
		var err error
		got[own[j]], err = c.download(ctx, es[own[j]])
		return err
	})
	if err != nil {
		return nil, err
	}
	err = catalog.ReadEachWith(ctx, c.st, refs, c.parallel, c.fw, func(j int, raw []byte, err error) error {
		e := es[packed[j]]
		var v verdict
		var ce *catalog.ChunkError
		switch {
		case errors.As(err, &ce):
			v = verdictOf(ce)
		case err != nil:
			return err
		case int64(len(raw)) != e.Size:
			v = verdict{Size, fmt.Sprintf("%s: %d bytes, the chunk tree says %d (in %s)", Size, len(raw), e.Size, e.Loc)}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, again := c.verdicts[e.ID]; !again {
			c.rep.Read++
		}
		c.rep.Downloads++
		c.rep.BytesRead += e.Loc.Length
		c.setVerdictLocked(e.ID, v)
		if v.kind == "" {
			got[packed[j]] = bytes.Clone(raw)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return got, nil
}

// readAll downloads and checks every data chunk and decodes every save,
// oldest first, keeping the previous save's chunks in memory.
func (c *checker) readAll(ctx context.Context, saves []*save) error {
	c.rep.DataChunks = len(distinct(saves))
	var prev map[chunker.ID][]byte
	for _, s := range saves {
		if s.entries == nil {
			continue // its manifest or chunk list is bad, already reported
		}
		cur := make(map[chunker.ID][]byte, len(s.entries))
		var need []manifest.Entry
		queued := map[chunker.ID]bool{}
		for _, e := range s.entries {
			if _, ok := cur[e.ID]; ok || queued[e.ID] {
				continue
			}
			if d, ok := prev[e.ID]; ok {
				cur[e.ID] = d
				continue
			}
			if v, ok := c.verdicts[e.ID]; ok && v.kind != "" {
				continue // known bad: no need to download it again
			}
			queued[e.ID] = true
			need = append(need, e)
		}
		got, err := c.downloadAll(ctx, need)
		if err != nil {
			return fmt.Errorf("verify: read data of save %s: %w", s.id, err)
		}
		for i, e := range need {
			if got[i] != nil {
				cur[e.ID] = got[i]
			}
		}
		c.decode(s, cur)
		prev = cur
	}
	c.report(saves)
	return nil
}

// decode assembles save s from data (when every chunk of it is good),
// checks the graph hash and decodes the graph.
func (c *checker) decode(s *save, data map[chunker.ID][]byte) {
	var total int64
	for _, e := range s.entries {
		if data[e.ID] == nil {
			return // a bad chunk: reported as such
		}
		total += e.Size
	}
	bad := func(format string, args ...any) {
		s.probs = append(s.probs, Problem{SaveID: s.id, Kind: Graph, What: string(Graph) + ": " + fmt.Sprintf(format, args...)})
	}
	if total != s.m.BytesTotal {
		bad("its chunks add up to %d bytes, the manifest says %d", total, s.m.BytesTotal)
		return
	}
	graph := make([]byte, 0, total)
	for _, e := range s.entries {
		graph = append(graph, data[e.ID]...)
	}
	if s.m.Tree != nil {
		if got := manifest.ContentSHA256(s.entries); got != s.m.ContentSHA256 {
			bad("its chunk list hashes to %s, the manifest says %s", got, s.m.ContentSHA256)
			return
		}
	} else if got := chunker.Sum(graph).String(); got != s.m.GraphSHA256 {
		bad("graph hash %s, the manifest says %s", got, s.m.GraphSHA256)
		return
	}
	if _, err := session.Decode(graph); err != nil {
		bad("%v", err)
		return
	}
	c.rep.Decoded++
}

// repackedVerdict checks data chunk e, in a pack the listing says gc
// repacked (its key), through the pack's record; only if the chunk is
// not where the record leads, in the pack itself (a gc run that stopped
// before deleting it). keys caches the Stat verdicts of pack keys.
func (c *checker) repackedVerdict(ctx context.Context, e manifest.Entry, key string, keys map[string]verdict) (verdict, error) {
	v, err := c.forwarded(ctx, c.fw, e, keys)
	if err != nil || v.kind != Missing {
		return v, err
	}
	own, ok := keys[key]
	if !ok {
		_, serr := c.st.Stat(ctx, key)
		var stop error
		if own, stop = storeVerdict(ctx, serr); stop != nil {
			return verdict{}, stop
		}
		keys[key] = own
	}
	if own.kind != Missing {
		return own, nil // the pack the save names is still there (or cannot be read)
	}
	return v, nil
}

// forwarded checks data chunk e, whose pack is gone, through the pack's
// forward record (and the next, if it moved again): the pack it names
// must exist. keys caches the Stat verdicts of pack keys.
func (c *checker) forwarded(ctx context.Context, fw *catalog.Forwards, e manifest.Entry, keys map[string]verdict) (verdict, error) {
	where := " (in " + e.Loc.String() + ")"
	loc := e.Loc
	for range catalog.MaxForwards {
		f, err := fw.Load(ctx, c.st, loc.Pack)
		if err != nil {
			if ctx.Err() != nil {
				return verdict{}, ctx.Err()
			}
			if errors.Is(err, store.ErrNotFound) {
				return verdict{Missing, string(Missing) + where + ", and no forward record for " + loc.Pack.String()}, nil
			}
			return verdict{Unreadable, string(Unreadable) + where + ": " + err.Error()}, nil
		}
		to, ok := f.Lookup(e.ID)
		if !ok {
			return verdict{Missing, string(Missing) + where + ": pack " + loc.Pack.String() + " was repacked and its forward record does not list the chunk"}, nil
		}
		key := manifest.PackKey(to.Pack)
		v, ok := keys[key]
		if !ok {
			_, err := c.st.Stat(ctx, key)
			var stop error
			if v, stop = storeVerdict(ctx, err); stop != nil {
				return verdict{}, stop
			}
			keys[key] = v
		}
		if v.kind != Missing {
			if v.kind != "" {
				v.what += " (in " + to.String() + ", forwarded from " + e.Loc.Pack.String() + ")"
			}
			return v, nil
		}
		loc = to
	}
	return verdict{Missing, string(Missing) + where + ": too many forward records"}, nil
}
