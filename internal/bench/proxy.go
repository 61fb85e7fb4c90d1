package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// countingProxy is a reverse proxy in front of MinIO that counts every S3
// request passing through it, by kind. A pitr command pointed at it
// (--store minio://<proxy>/<bucket>) is measured black-box: its requests are
// counted on the wire, HTTP request by HTTP request (every listing page,
// every HEAD), without instrumenting the binary. The proxy keeps the
// client's Host header, so SigV4 signatures (which cover it) still verify at
// MinIO.
//
// It can also add a latency to every request (SetLatency): it sleeps that
// long before forwarding each one, as a distant store (AWS S3: ~20 ms per
// request) would make the client wait. Requests in flight at once wait side
// by side, so a client that overlaps its requests pays the latency once per
// round of them, as it would on the real network.
type countingProxy struct {
	Addr string // "127.0.0.1:port"

	srv *http.Server
	rp  *httputil.ReverseProxy

	latency  atomic.Int64 // nanoseconds slept before forwarding each request
	inflight atomic.Int64 // requests being served (counted when they end)

	mu sync.Mutex
	c  reqCounts
}

// reqCounts counts S3 requests by kind.
type reqCounts struct {
	List      int64 // ListObjectsV2 pages (GET on the bucket with a listing query)
	Get       int64 // GetObject of a whole object (no Range header)
	RangedGet int64 // GetObject with a Range header: part of an object (e.g. one chunk of a pack)
	Head      int64 // HeadObject (store Stat)
	Put       int64 // PutObject
	Delete    int64 // DeleteObject (and multi-object delete POSTs, if any)
	Setup     int64 // bucket-level requests: HEAD bucket (exists?), GET ?location
	Other     int64 // anything else (none expected)
	Errors    int64 // answers with status ≥ 400 (a HEAD of a missing chunk is one)
	// Claim counts the requests on a session's writer claim
	// (sessions/<s>/claim.json): they are counted by kind as well, this
	// only tells them apart (a serving server renews its claim every 10 s).
	Claim int64
	// BytesIn is the response bytes MinIO sent (object data, listings,
	// error bodies).
	BytesIn int64
	// BytesPut is the object bytes PUT (the payload: without the chunk
	// signatures of a streaming-signed upload).
	BytesPut int64
	// BytesGot is the object bytes of successful GETs, whole and ranged.
	BytesGot int64
}

// Total is every request.
func (c reqCounts) Total() int64 {
	return c.List + c.Get + c.RangedGet + c.Head + c.Put + c.Delete + c.Setup + c.Other
}

func (c reqCounts) sub(d reqCounts) reqCounts {
	return reqCounts{List: c.List - d.List, Get: c.Get - d.Get, RangedGet: c.RangedGet - d.RangedGet, Head: c.Head - d.Head,
		Put: c.Put - d.Put, Delete: c.Delete - d.Delete, Setup: c.Setup - d.Setup, Other: c.Other - d.Other,
		Errors: c.Errors - d.Errors, Claim: c.Claim - d.Claim, BytesIn: c.BytesIn - d.BytesIn,
		BytesPut: c.BytesPut - d.BytesPut, BytesGot: c.BytesGot - d.BytesGot}
}

// startProxy starts a counting proxy to the MinIO at endpoint
// ("http://host:port").
func startProxy(endpoint string) (*countingProxy, error) {
	target, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 128 // pitr runs up to 32 requests at once
	tr.DisableCompression = true // pass bodies through untouched
	p := &countingProxy{}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // signed by the client
		},
		Transport: tr,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("counting proxy: %w", err)
	}
	p.Addr = ln.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: time.Minute}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("pitr-bench: counting proxy:", err)
		}
	}()
	return p, nil
}

// Close stops the proxy.
func (p *countingProxy) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}

// Counts returns the counters so far.
func (p *countingProxy) Counts() reqCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c
}

// SetLatency sets the time slept before forwarding each request from now on
// (0: none).
func (p *countingProxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Settle waits (up to 2 s) until no request is being served, so that Counts
// includes every request a client has had its answer to: a request is
// counted after its answer is written.
func (p *countingProxy) Settle() {
	for deadline := clk.Now().Add(2 * time.Second); p.inflight.Load() > 0 && clk.Now().Before(deadline); {
		clk.Sleep(time.Millisecond)
	}
}

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	if d := time.Duration(p.latency.Load()); d > 0 {
		t := clk.NewTimer(d)
		select {
		case <-t.Chan():
		case <-r.Context().Done():
			t.Stop()
			return // the client gave up; nothing reached MinIO
		}
	}
	kind := classify(r)
	var body *countingReader
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingReader{r: r.Body}
		r.Body = body
	}
	cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
	p.rp.ServeHTTP(cw, r)
	key := objectKey(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	*kind(&p.c)++
	if cw.status >= 400 {
		p.c.Errors++
	}
	p.c.BytesIn += cw.n
	if strings.HasSuffix(key, "/claim.json") {
		p.c.Claim++
	}
	if key != "" && cw.status < 300 {
		switch r.Method {
		case http.MethodGet:
			p.c.BytesGot += cw.n
		case http.MethodPut:
			p.c.BytesPut += putPayload(r, body)
		}
	}
}

// objectKey is the key of an object request ("" for a bucket request).
func objectKey(r *http.Request) string {
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return key
}

// putPayload is the object bytes of a PUT: X-Amz-Decoded-Content-Length
// for a streaming-signed (aws-chunked) body, else the body bytes read.
func putPayload(r *http.Request, body *countingReader) int64 {
	if n, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64); err == nil {
		return n
	}
	if body == nil {
		return 0
	}
	return body.n.Load()
}

// countingReader counts the bytes read from a request body.
type countingReader struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// classify names the counter of an S3 request (path-style addressing:
// /bucket or /bucket/key).
func classify(r *http.Request) func(*reqCounts) *int64 {
	key := objectKey(r)
	q := r.URL.Query()
	if key == "" { // the bucket itself
		switch {
		case r.Method == http.MethodGet && (q.Has("list-type") || q.Has("prefix") || q.Has("delimiter") || len(q) == 0):
			return func(c *reqCounts) *int64 { return &c.List }
		case r.Method == http.MethodPost && q.Has("delete"):
			return func(c *reqCounts) *int64 { return &c.Delete }
		case r.Method == http.MethodHead || (r.Method == http.MethodGet && q.Has("location")):
			return func(c *reqCounts) *int64 { return &c.Setup }
		}
		return func(c *reqCounts) *int64 { return &c.Other }
	}
	switch r.Method {
	case http.MethodGet:
		if r.Header.Get("Range") != "" {
			return func(c *reqCounts) *int64 { return &c.RangedGet }
		}
		return func(c *reqCounts) *int64 { return &c.Get }
	case http.MethodHead:
		return func(c *reqCounts) *int64 { return &c.Head }
	case http.MethodPut:
		return func(c *reqCounts) *int64 { return &c.Put }
	case http.MethodDelete:
		return func(c *reqCounts) *int64 { return &c.Delete }
	}
	return func(c *reqCounts) *int64 { return &c.Other }
}

// countingWriter records the status and counts the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (flushes).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
