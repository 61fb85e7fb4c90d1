package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
)

// TestNotifyAndPing: a server with --notify-url and --ping-url pings after
// a save and posts a fenced event when another server takes over.
func TestNotifyAndPing(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		events []string
		pings  []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			var e struct{ Event, Session string }
			_ = json.NewDecoder(r.Body).Decode(&e)
			events = append(events, e.Event+"@"+e.Session)
			return
		}
		pings = append(pings, r.URL.Path)
	}))
	defer hook.Close()
	seen := func(list *[]string, want string) func() (bool, string) {
		return func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			return strings.Contains(strings.Join(*list, " "), want), strings.Join(*list, " ")
		}
	}
	st := newStore(t)
	a := startServer(t, st, serveOpts{args: []string{"--notify-url", hook.URL + "/events", "--ping-url", hook.URL + "/ping/abc", "--ping-interval", "0s"}})
	a.initSession(t)
	a.put(t, "x", client.NodeInput{Type: "object"})
	a.saveNow(t)
	waitFor(t, 30*time.Second, "a ping after the save", seen(&pings, "/ping/abc"))
	b := startServer(t, st, serveOpts{args: []string{"--takeover"}})
	_, err := a.admin(t).Save(t.Context())
	answer(t, err) // fails: fenced (only a transport error fails the test)
	waitFor(t, 30*time.Second, "a fenced event", seen(&events, "fenced@default"))
	waitFor(t, 30*time.Second, "a failure ping", seen(&pings, "/ping/abc/fail"))
	b.stop(t)
}
