package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/session"
)

// limitServer serves an active session over a real listener with the given
// limits.
func limitServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	sess := session.New()
	if err := sess.Init(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(sess, newFakeSaver(), cfg))
	t.Cleanup(srv.Close)
	return srv
}

// While request bodies hold the in-flight budget, another request with a
// body is refused with 503 and Retry-After; requests without a body pass,
// and the budget is back once the holder ends.
func TestInflightBytesLimit(t *testing.T) {
	srv := limitServer(t, Config{MaxNodeBytes: 1 << 20, MaxInflightBytes: 4096, BodyReadTimeout: time.Minute})
	pr, pw := io.Pipe()
	held := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("PUT", srv.URL+"/v1/nodes/big", pr)
		req.ContentLength = 4000
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		held <- resp
	}()
	_, _ = pw.Write([]byte(`{"type":"t","data":"`)) // the handler is now reading the body
	put := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest("PUT", srv.URL+"/v1/nodes/small", strings.NewReader(`{"type":"t","data":"`+strings.Repeat("A", 200)+`"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	deadline := time.Now().Add(10 * time.Second)
	var resp *http.Response
	for resp = put(); resp.StatusCode != http.StatusServiceUnavailable; resp = put() {
		if time.Now().After(deadline) { // the first request may not have reserved yet
			t.Fatalf("PUT while the budget is spent: %d, want 503", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 for a spent budget without Retry-After")
	}
	if r, err := http.Get(srv.URL + "/v1/nodes"); err != nil || r.StatusCode != 200 {
		t.Fatalf("GET while the budget is spent: %v %v", r, err)
	}
	go func() { // not blocking the test if the server already answered
		_, _ = pw.Write([]byte(strings.Repeat("A", 100) + `"}`))
		pw.Close()
	}()
	<-held
	// The holder's budget is released once its handler returns, which may
	// be just after its answer reached the client.
	for resp = put(); resp.StatusCode != 200; resp = put() {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("PUT after the holder ended: %d, want 200", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A body that stops arriving ends its request with 408 after the body read
// timeout, instead of holding the connection forever.
func TestStalledBodyTimesOut(t *testing.T) {
	srv := limitServer(t, Config{BodyReadTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"type":"t","data":"AAAA`
	fmt.Fprintf(conn, "PUT /v1/nodes/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n%s", body)
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body within 20 s: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body: %d, want 408", resp.StatusCode)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stalled body answered after %v", d)
	}
}
