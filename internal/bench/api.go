package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/internal/graphgen"
)

// apiClient talks to pitr serve's HTTP API as the admin, through the Go
// client of package client (reads are retried by it, writes never).
type apiClient struct {
	cl *client.Client
}

func newAPIClient(base string) *apiClient {
	cl, err := client.New(base, client.Options{Password: adminPassword, User: "bench", HTTP: newHTTPClient(), Retries: -1})
	if err != nil {
		panic("pitr-bench: " + err.Error()) // base is built by pitr-bench itself
	}
	return &apiClient{cl: cl}
}

func (c *apiClient) healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.cl.Healthy(ctx)
}

func (c *apiClient) initSession(ctx context.Context) error {
	_, err := c.cl.InitSession(ctx)
	return err
}

func (c *apiClient) nodeCount(ctx context.Context) (int, error) {
	in, err := c.cl.Session(ctx)
	if err != nil {
		return 0, err
	}
	return in.NodeCount, nil
}

// put creates or replaces one node.
func (c *apiClient) put(ctx context.Context, nd graphgen.Node) error {
	_, err := c.cl.PutNode(ctx, nd.ID, client.NodeInput{Type: nd.Type, Owner: nd.Owner, Deps: nd.Deps, Data: nd.Data})
	return err
}

// save asks for a save now.
func (c *apiClient) save(ctx context.Context) (saveAnswer, error) {
	r, err := c.cl.Save(ctx)
	if err != nil {
		return saveAnswer{}, err
	}
	return *r, nil
}

// putNodes creates or replaces nodes with workers PUTs at once.
func (c *apiClient) putNodes(ctx context.Context, nodes []graphgen.Node, workers int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, nd := range nodes {
		g.Go(func() error { return c.put(ctx, nd) })
	}
	return g.Wait()
}

// saveAnswer is the answer of POST /v1/saves.
type saveAnswer = client.SaveResult

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
	start := clk.Now()
	var err2 error
	if m.answer, err2 = api.save(ctx); err2 != nil {
		return m, err2
	}
	m.wall = clk.Since(start)
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
