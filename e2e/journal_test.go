package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
)

// TestKillLosesNoAcknowledgedEdit kills the server (SIGKILL) at a random
// point of a stream of edits and saves, 20 times, restarting it on the same
// data dir each time: every edit answered 200 is there after the restart
// (a node may also hold the one edit in flight at the kill), and the
// store's history verifies.
func TestKillLosesNoAcknowledgedEdit(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startServer(t, st, serveOpts{})
	s.initSession(t)
	dataDir := s.dataDir
	const nodes = 8
	acked := map[string]string{}    // node → last value answered 200
	inflight := map[string]string{} // node → value sent when the server died
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		target := 5 + rng.IntN(60)
		var mu sync.Mutex
		count := 0
		done := make(chan struct{})
		adm := s.admin(t)
		go func() {
			defer close(done)
			for k := 0; ; k++ {
				id := fmt.Sprint("n", k%nodes)
				val := fmt.Sprintf("r%d-k%d", round, k)
				mu.Lock()
				inflight[id] = val
				mu.Unlock()
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				_, err := adm.PutNode(ctx, id, client.NodeInput{Type: "object", Data: []byte(val)})
				cancel()
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[id] = val
				delete(inflight, id)
				count++
				mu.Unlock()
				if k%7 == 6 {
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					_, err := adm.Save(ctx)
					cancel()
					var ae *client.APIError
					if err != nil && !errors.As(err, &ae) {
						return // the server is gone
					}
				}
			}
		}()
		waitFor(t, time.Minute, "acknowledged edits before the kill", func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			return count >= target, fmt.Sprint(count)
		})
		s.kill(t)
		<-done
		s = startServer(t, st, serveOpts{dataDir: dataDir, args: []string{"--takeover"}})
		for i := range nodes {
			id := fmt.Sprint("n", i)
			want, ok := acked[id]
			if !ok {
				continue
			}
			got := string(s.getNode(t, id).Data)
			if got != want && got != inflight[id] {
				t.Fatalf("round %d: node %s holds %q after kill -9 and restart, want the acknowledged %q (or the in-flight %q)",
					round, id, got, want, inflight[id])
			}
			acked[id] = got // the in-flight edit, if it survived, is the state now
		}
		for id := range inflight {
			delete(inflight, id)
		}
	}
	s.saveNow(t)
	s.stop(t)
	st.mustPitr(t, "verify", "--read-data")
}
