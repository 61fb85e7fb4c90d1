package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pitr-dev/pitr/internal/graphgen"
)

// apiClient talks to pitr serve's HTTP API as the admin.
type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, http: newHTTPClient()}
}

// do sends a request and decodes a 200 answer's JSON into out (if not nil).
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminPassword)
	req.Header.Set("X-Pitr-User", "bench")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

func (c *apiClient) healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil) == nil
}

func (c *apiClient) initSession(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/session/init", nil, nil)
}

func (c *apiClient) nodeCount(ctx context.Context) (int, error) {
	var info struct {
		NodeCount int `json:"node_count"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/session", nil, &info)
	return info.NodeCount, err
}

// putNodes creates or replaces nodes with workers PUTs at once.
func (c *apiClient) putNodes(ctx context.Context, nodes []graphgen.Node, workers int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, nd := range nodes {
		g.Go(func() error {
			deps := nd.Deps
			if deps == nil {
				deps = []string{}
			}
			body, err := json.Marshal(struct {
				Type  string   `json:"type"`
				Owner string   `json:"owner"`
				Deps  []string `json:"deps"`
				Data  []byte   `json:"data"`
			}{nd.Type, nd.Owner, deps, nd.Data})
			if err != nil {
				return err
			}
			return c.do(ctx, http.MethodPut, "/v1/nodes/"+nd.ID, body, nil)
		})
	}
	return g.Wait()
}

// saveAnswer is the answer of POST /v1/saves.
type saveAnswer struct {
	ID             string `json:"id"`
	NodeCount      int    `json:"node_count"`
	BytesTotal     int64  `json:"bytes_total"`
	BytesUploaded  int64  `json:"bytes_uploaded"`
	ChunksTotal    int    `json:"chunks_total"`
	ChunksUploaded int    `json:"chunks_uploaded"`
	DurationMS     int64  `json:"duration_ms"`
	Unchanged      bool   `json:"unchanged"`
}

// saveMeasure is one save as the server reported it and as the bucket
// shows it.
type saveMeasure struct {
	answer saveAnswer
	wall   time.Duration // POST /v1/saves, request to answer
	// What the bucket gained: new (or rewritten) objects and their bytes,
	// all of them and the manifests (under sessions/) alone.
	newObjects     int
	newBytes       int64
	manifestObjs   int
	manifestBytes  int64
	newChunkObjs   int
	newChunkBytes  int64
	newChunkKeys   []string
	objectsAfter   int
	bucketBytesEnd int64
}

func (m saveMeasure) String() string {
	a := m.answer
	return fmt.Sprintf("id %s unchanged=%t bytes_uploaded=%d chunks_uploaded=%d/%d duration_ms=%d wall=%v; bucket +%d objects +%d bytes (manifest %d bytes)",
		a.ID, a.Unchanged, a.BytesUploaded, a.ChunksUploaded, a.ChunksTotal, a.DurationMS,
		m.wall.Round(time.Millisecond), m.newObjects, m.newBytes, m.manifestBytes)
}

// measureSave lists the bucket, asks for a save, and lists it again.
func (e *benchEnv) measureSave(ctx context.Context, api *apiClient) (saveMeasure, error) {
	var m saveMeasure
	before, err := e.snapshotBucket(ctx)
	if err != nil {
		return m, err
	}
	start := time.Now()
	if err := api.do(ctx, http.MethodPost, "/v1/saves", nil, &m.answer); err != nil {
		return m, err
	}
	m.wall = time.Since(start)
	after, err := e.snapshotBucket(ctx)
	if err != nil {
		return m, err
	}
	for _, oi := range after.newSince(before) {
		m.newObjects++
		m.newBytes += oi.Size
		switch {
		case strings.HasPrefix(oi.Key, "sessions/"):
			m.manifestObjs++
			m.manifestBytes += oi.Size
		case strings.HasPrefix(oi.Key, "chunks/"):
			m.newChunkObjs++
			m.newChunkBytes += oi.Size
			m.newChunkKeys = append(m.newChunkKeys, oi.Key)
		}
	}
	slices.Sort(m.newChunkKeys)
	m.objectsAfter = len(after)
	for _, oi := range after {
		m.bucketBytesEnd += oi.Size
	}
	return m, nil
}
