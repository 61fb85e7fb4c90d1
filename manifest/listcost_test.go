package manifest_test

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/internal/graphgen"
	"github.com/pitr-dev/pitr/manifest"
)

// TestListCostReport measures what the chunk list adds to a save's upload
// for the cutting benchmark's 1 % change (chunker/CUTTING.md):
//
//	PITR_BENCH=1 go test ./manifest -run TestListCostReport -v
func TestListCostReport(t *testing.T) {
	if os.Getenv("PITR_BENCH") == "" {
		t.Skip("set PITR_BENCH=1 to measure the chunk list's cost")
	}
	base := graphgen.Generate(1, 2000)
	lists := func(nodes []graphgen.Node) []chunker.Chunk {
		chunks := chunker.SplitRecords(records(nodes))
		entries := make([]manifest.Entry, len(chunks))
		for i, c := range chunks {
			entries[i] = manifest.Entry{ID: c.ID, Size: int64(len(c.Data))}
		}
		return manifest.EncodeList(entries)
	}
	have := map[chunker.ID]bool{}
	before := lists(base)
	for _, c := range before {
		have[c.ID] = true
	}
	const runs = 20
	var newChunks, newRaw, newLZ4, changed int
	for seed := uint64(1); seed <= runs; seed++ {
		ch, n := graphgen.Mutate(base, seed, 0.01)
		changed += n
		for _, c := range lists(graphgen.Apply(base, ch)) {
			if have[c.ID] {
				continue
			}
			z, err := chunker.Compress(c.Data)
			if err != nil {
				t.Fatal(err)
			}
			newChunks++
			newRaw += len(c.Data)
			newLZ4 += len(z)
		}
	}
	t.Logf("list chunks: %d for the base graph; per 1 %% change: %.1f new list chunks, %.1f KiB raw, %.1f KiB lz4, %.2f lz4 bytes per changed byte",
		len(before), float64(newChunks)/runs, float64(newRaw)/runs/1024, float64(newLZ4)/runs/1024, float64(newLZ4)/float64(changed))
}

// records frames nodes like chunker's cutting benchmark (a stand-in for the
// session encoding).
func records(nodes []graphgen.Node) [][]byte {
	recs := [][]byte{binary.BigEndian.AppendUint32([]byte("PITR-STANDIN-1"), uint32(len(nodes)))}
	for _, nd := range nodes {
		r := binary.BigEndian.AppendUint32(nil, uint32(1+len(nd.ID)+len(nd.Data)))
		r = append(r, byte(len(nd.ID)))
		r = append(append(r, nd.ID...), nd.Data...)
		recs = append(recs, r)
	}
	return append(recs, binary.BigEndian.AppendUint32([]byte("END"), uint32(len(nodes))))
}
