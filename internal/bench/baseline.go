package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sync/errgroup"
)

// The baselines talk to MinIO with minio-go directly: a fresh client per
// run (new connections, like a new process), its transport tuned as pitr's
// store/minio tunes it, and nothing but the requests themselves.

func (e *benchEnv) newMinioClient() (*minio.Client, func(), error) {
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		return nil, nil, err
	}
	tr.MaxIdleConnsPerHost = 64 // as store/minio
	client, err := minio.New(e.minio.Addr, &minio.Options{
		Creds:     credentials.NewStaticV4(e.minio.AccessKey, e.minio.SecretKey, ""),
		Transport: tr,
	})
	if err != nil {
		return nil, nil, err
	}
	return client, tr.CloseIdleConnections, nil
}

// plainGet downloads keys with parallel workers, reading each body whole
// and doing nothing else. It checks that it read want bytes in all.
func (e *benchEnv) plainGet(ctx context.Context, keys []string, parallel int, want int64) (time.Duration, error) {
	client, closeConns, err := e.newMinioClient()
	if err != nil {
		return 0, err
	}
	defer closeConns()
	var got atomic.Int64
	start := clk.Now()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, k := range keys {
		g.Go(func() error {
			obj, err := client.GetObject(ctx, e.bucket, k, minio.GetObjectOptions{})
			if err != nil {
				return fmt.Errorf("get %s: %w", k, err)
			}
			defer obj.Close()
			b, err := io.ReadAll(obj)
			if err != nil {
				return fmt.Errorf("get %s: %w", k, err)
			}
			got.Add(int64(len(b)))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	d := clk.Since(start)
	if got.Load() != want {
		return 0, fmt.Errorf("plain GET read %d bytes, the bucket listing says %d", got.Load(), want)
	}
	return d, nil
}

// putBaseline is the plain-PUT baseline of the full save.
type putBaseline struct {
	objects  int
	bytes    int64
	parallel int
	put      []time.Duration // PUT only
	headPut  []time.Duration // HEAD (404), then PUT, as the saver does for unknown chunks
}

func (pb putBaseline) rate(d time.Duration) float64 { return float64(pb.bytes) / 1e6 / d.Seconds() }

// readObjects downloads keys, one after another.
func (e *benchEnv) readObjects(ctx context.Context, keys []string) ([][]byte, int64, error) {
	client, closeConns, err := e.newMinioClient()
	if err != nil {
		return nil, 0, err
	}
	defer closeConns()
	bodies := make([][]byte, len(keys))
	var total int64
	for i, k := range keys {
		obj, err := client.GetObject(ctx, e.bucket, k, minio.GetObjectOptions{})
		if err != nil {
			return nil, 0, fmt.Errorf("get %s: %w", k, err)
		}
		bodies[i], err = io.ReadAll(obj)
		obj.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("get %s: %w", k, err)
		}
		total += int64(len(bodies[i]))
	}
	return bodies, total, nil
}

// plainPut creates bucket and PUTs bodies under keys with parallel workers,
// each preceded by a HEAD if head, with the options pitr's store uses.
func (e *benchEnv) plainPut(ctx context.Context, bucket string, keys []string, bodies [][]byte, parallel int, head bool) (time.Duration, error) {
	client, closeConns, err := e.newMinioClient()
	if err != nil {
		return 0, err
	}
	defer closeConns()
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return 0, fmt.Errorf("make bucket %s: %w", bucket, err)
	}
	start := clk.Now()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, k := range keys {
		g.Go(func() error {
			if head {
				_, err := client.StatObject(ctx, bucket, k, minio.StatObjectOptions{})
				switch {
				case err == nil:
					return fmt.Errorf("head %s: the object exists, want NoSuchKey", k)
				case minio.ToErrorResponse(err).Code != "NoSuchKey":
					return fmt.Errorf("head %s: want NoSuchKey, got %w", k, err)
				}
			}
			_, err := client.PutObject(ctx, bucket, k, bytes.NewReader(bodies[i]), int64(len(bodies[i])),
				minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
			if err != nil {
				return fmt.Errorf("put %s: %w", k, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return clk.Since(start), nil
}
