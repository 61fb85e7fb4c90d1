package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// countingProxy is a reverse proxy in front of MinIO that counts every S3
// request passing through it, by kind. A pitr command pointed at it
// (--store minio://<proxy>/<bucket>) is measured black-box: its requests are
// counted on the wire, HTTP request by HTTP request (every listing page,
// every HEAD), without instrumenting the binary. The proxy keeps the
// client's Host header, so SigV4 signatures (which cover it) still verify at
// MinIO.
type countingProxy struct {
	Addr string // "127.0.0.1:port"

	srv *http.Server
	rp  *httputil.ReverseProxy

	mu sync.Mutex
	c  reqCounts
}

// reqCounts counts S3 requests by kind.
type reqCounts struct {
	List   int64 // ListObjectsV2 pages (GET on the bucket with a listing query)
	Get    int64 // GetObject
	Head   int64 // HeadObject (store Stat)
	Put    int64 // PutObject
	Delete int64 // DeleteObject (and multi-object delete POSTs, if any)
	Setup  int64 // bucket-level requests: HEAD bucket (exists?), GET ?location
	Other  int64 // anything else (none expected)
	Errors int64 // answers with status ≥ 400 (a HEAD of a missing chunk is one)
	// BytesIn is the response bytes MinIO sent (object data, listings,
	// error bodies).
	BytesIn int64
}

// Total is every request.
func (c reqCounts) Total() int64 {
	return c.List + c.Get + c.Head + c.Put + c.Delete + c.Setup + c.Other
}

func (c reqCounts) sub(d reqCounts) reqCounts {
	return reqCounts{List: c.List - d.List, Get: c.Get - d.Get, Head: c.Head - d.Head, Put: c.Put - d.Put,
		Delete: c.Delete - d.Delete, Setup: c.Setup - d.Setup, Other: c.Other - d.Other,
		Errors: c.Errors - d.Errors, BytesIn: c.BytesIn - d.BytesIn}
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

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := classify(r)
	cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
	p.rp.ServeHTTP(cw, r)
	p.mu.Lock()
	defer p.mu.Unlock()
	*kind(&p.c)++
	if cw.status >= 400 {
		p.c.Errors++
	}
	p.c.BytesIn += cw.n
}

// classify names the counter of an S3 request (path-style addressing:
// /bucket or /bucket/key).
func classify(r *http.Request) func(*reqCounts) *int64 {
	path := strings.TrimPrefix(r.URL.Path, "/")
	_, key, _ := strings.Cut(path, "/")
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
