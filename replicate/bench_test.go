package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/internal/graphgen"
	"github.com/pitr-dev/pitr/journal"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
)

// BenchmarkSaveOneNode measures a save after one small node changed, on
// graphs of 2,000 and 20,000 nodes, with a journal as pitr serve has (a file
// store: no network).
func BenchmarkSaveOneNode(b *testing.B) {
	for _, n := range []int{2000, 20000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			st := newStore(b)
			dir := b.TempDir()
			j, err := journal.Open(dir, 1, journal.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			s := session.New()
			s.SetJournal(j, 0)
			nodes := graphgen.Generate(1, n)
			for _, nd := range nodes {
				if _, err := s.Put(admin, nd.ID, session.NodeInput{Type: nd.Type, Deps: nil, Data: nd.Data}); err != nil {
					b.Fatal(err)
				}
			}
			sv := New(s, Config{Store: st, Session: "b", DataDir: dir, Journal: j, Logger: slog.New(slog.DiscardHandler)})
			if _, err := sv.Save(ctx, "api"); err != nil {
				b.Fatal(err)
			}
			// Like the scale benchmark's 1-node saves: small nodes only.
			var small []graphgen.Node
			for _, nd := range nodes {
				if len(nd.Data) <= graphgen.SmallNode {
					small = append(small, nd)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				nd := small[(i*7919)%len(small)]
				if _, err := s.Put(admin, nd.ID, session.NodeInput{Type: nd.Type, Data: append([]byte{byte(i)}, nd.Data...)}); err != nil {
					b.Fatal(err)
				}
				if _, err := sv.Save(ctx, "api"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMetadataCostReport prints what a 1-node save stores besides the
// node's own chunk (the manifest and the new tree nodes) at 2,000 and
// 20,000 nodes. PITR_BENCH=1 go test ./replicate -run MetadataCost -v
func TestMetadataCostReport(t *testing.T) {
	if os.Getenv("PITR_BENCH") == "" {
		t.Skip("a report: set PITR_BENCH=1")
	}
	ctx := context.Background()
	for _, n := range []int{2000, 20000} {
		st := newStore(t)
		s := session.New()
		nodes := graphgen.Generate(1, n)
		for _, nd := range nodes {
			if _, err := s.Put(admin, nd.ID, session.NodeInput{Type: nd.Type, Data: nd.Data}); err != nil {
				t.Fatal(err)
			}
		}
		sv := New(s, Config{Store: st, Session: "b", Logger: slog.New(slog.DiscardHandler)})
		var sizes []int64
		for i := range 6 {
			nd := nodes[(i*7919)%len(nodes)]
			if len(nd.Data) > 16<<10 {
				nd = nodes[(i*7919+1)%len(nodes)]
			}
			if _, err := s.Put(admin, nd.ID, session.NodeInput{Type: nd.Type, Data: append([]byte{byte(i)}, nd.Data...)}); err != nil {
				t.Fatal(err)
			}
			r, err := sv.Save(ctx, "api")
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				continue // the full save
			}
			m, err := catalog.Load(ctx, st, "b", r.ID)
			if err != nil {
				t.Fatal(err)
			}
			key, _ := manifest.Key("b", m.ID)
			info, err := st.Stat(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			var nodeBytes int64
			if _, err := catalog.Entries(ctx, st, m, func(tn catalog.TreeNodeAt) {
				if _, old := sv.reuse.nodes[tn.ID]; tn.Loc.Pack == m.Tree.RootLoc.Pack && old {
					nodeBytes += tn.Loc.Length
				}
			}); err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, info.Size+nodeBytes)
			t.Logf("%d nodes: 1-node save %s: manifest %d B + new tree nodes %d B (%d levels, %d nodes in the tree) = %d B; uploaded %d B in %d packs",
				n, m.ID, info.Size, nodeBytes, m.Tree.Levels, m.Tree.Nodes, info.Size+nodeBytes, m.BytesUploaded, m.PacksUploaded)
		}
		slices.Sort(sizes)
		t.Logf("%d nodes: metadata per 1-node save: median %d B, max %d B", n, sizes[len(sizes)/2], sizes[len(sizes)-1])
	}
}
