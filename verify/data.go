package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
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
	err := forEach(ctx, len(all), c.parallel, func(ctx context.Context, i int) error {
		if read[i] {
			_, err := c.download(ctx, all[i])
			return err
		}
		_, err := c.st.Stat(ctx, chunker.ObjectKey(all[i].ID))
		v, stop := storeVerdict(ctx, err)
		if stop != nil {
			return stop
		}
		c.mu.Lock()
		c.setVerdictLocked(all[i].ID, v)
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: check data chunks: %w", err)
	}
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
		got := make([][]byte, len(need))
		err := forEach(ctx, len(need), c.parallel, func(ctx context.Context, i int) error {
			var err error
			got[i], err = c.download(ctx, need[i])
			return err
		})
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
	sum := sha256.Sum256(graph)
	if got := hex.EncodeToString(sum[:]); got != s.m.GraphSHA256 {
		bad("graph hash %s, the manifest says %s", got, s.m.GraphSHA256)
		return
	}
	if _, err := session.Decode(graph); err != nil {
		bad("%v", err)
		return
	}
	c.rep.Decoded++
}
