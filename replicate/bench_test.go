package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/pitr-dev/pitr/internal/graphgen"
	"github.com/pitr-dev/pitr/journal"
	"github.com/pitr-dev/pitr/session"
)

// BenchmarkSaveOneNode measures a save after one node changed, on graphs
// of 2,000 and 20,000 nodes, with a journal as pitr serve has (a file
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
			b.ResetTimer()
			for i := range b.N {
				nd := nodes[i%len(nodes)]
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
