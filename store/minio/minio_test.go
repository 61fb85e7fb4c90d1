package minio_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/internal/miniotest"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/minio"
	"github.com/pitr-dev/pitr/store/storetest"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

func config(t *testing.T, srv *miniotest.Server) minio.Config {
	return minio.Config{
		Endpoint:     srv.Addr,
		Bucket:       miniotest.Bucket(t),
		AccessKey:    srv.AccessKey,
		SecretKey:    srv.SecretKey,
		CreateBucket: true,
	}
}

func newStore(t *testing.T, cfg minio.Config) *minio.Store {
	t.Helper()
	s, err := minio.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("minio.New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := miniotest.Shared(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, config(t, srv)) }, srv.SecretKey)
}

func TestConformanceWithPrefix(t *testing.T) {
	srv := miniotest.Shared(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		cfg := config(t, srv)
		cfg.Prefix = "/some/prefix/"
		s := newStore(t, cfg)
		// Keys beside the prefix must stay invisible.
		cfg.Prefix = "some/prefi"
		cfg.CreateBucket = false
		other := newStore(t, cfg)
		for _, k := range []string{"x", "x/y", "xa"} {
			if err := other.Put(t.Context(), k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}, srv.SecretKey)
}

// Ranged reads of objects written with a storage class (the one write
// option a plain MinIO supports: encryption needs a KMS).
func TestGetRangeWithStorageClass(t *testing.T) {
	srv := miniotest.Shared(t)
	cfg := config(t, srv)
	cfg.Prefix = "pre"
	cfg.Write = store.WriteOptions{StorageClass: "REDUCED_REDUNDANCY"}
	storetest.RangedReads(t, newStore(t, cfg))
}

func TestPrefixIsStripped(t *testing.T) {
	srv := miniotest.Shared(t)
	cfg := config(t, srv)
	cfg.Prefix = "p1/p2"
	s := newStore(t, cfg)
	ctx := t.Context()
	if err := s.Put(ctx, "k/1", []byte("v")); err != nil {
		t.Fatal(err)
	}
	cfg.Prefix = ""
	root := newStore(t, cfg)
	if _, err := root.Stat(ctx, "p1/p2/k/1"); err != nil {
		t.Errorf("object not stored under the prefix: %v", err)
	}
	info, err := s.Stat(ctx, "k/1")
	if err != nil || info.Key != "k/1" {
		t.Errorf("Stat = %+v, %v; want key k/1", info, err)
	}
	if want := "minio://" + srv.Addr + "/" + cfg.Bucket + "/p1/p2?tls=false"; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
}

func TestMissingBucketNotCreated(t *testing.T) {
	srv := miniotest.Shared(t)
	cfg := config(t, srv)
	cfg.CreateBucket = false
	_, err := minio.New(t.Context(), cfg)
	if !errors.Is(err, store.ErrBucketNotFound) {
		t.Fatalf("New with a missing bucket: %v, want ErrBucketNotFound", err)
	}
	if !strings.Contains(err.Error(), cfg.Bucket) || !strings.Contains(err.Error(), srv.Addr) {
		t.Errorf("error %q does not name the bucket and the store", err)
	}
}

func TestCreateBucketRace(t *testing.T) {
	srv := miniotest.Shared(t)
	cfg := config(t, srv)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := minio.New(t.Context(), cfg)
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent New creating one bucket: %v", err)
		}
	}
}

func TestBadCredentials(t *testing.T) {
	srv := miniotest.Shared(t)
	cfg := config(t, srv)
	newStore(t, cfg) // the bucket exists
	const wrong = "wrong-secret-key-0123456789"
	for _, c := range []struct {
		name, access, bucket string
	}{
		{"wrong secret", srv.AccessKey, cfg.Bucket},
		{"unknown access key", "nosuchuser", cfg.Bucket},
		{"wrong secret, missing bucket", srv.AccessKey, miniotest.Bucket(t)},
	} {
		bad := cfg
		bad.AccessKey, bad.SecretKey, bad.Bucket = c.access, wrong, c.bucket
		_, err := minio.New(t.Context(), bad)
		if !errors.Is(err, store.ErrBadCredentials) || !store.IsPermanent(err) {
			t.Errorf("%s: New error = %v, want ErrBadCredentials", c.name, err)
		}
		if err != nil && (strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), srv.SecretKey)) {
			t.Errorf("%s: error %q contains a secret key", c.name, err)
		}
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, cfg := range []minio.Config{
		{Bucket: "b"},
		{Endpoint: "http://x:1", Bucket: "b"},
		{Endpoint: "127.0.0.1:1"},
		{Endpoint: "127.0.0.1:1", Bucket: "b", Prefix: "a/../b"},
	} {
		if _, err := minio.New(context.Background(), cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestServerRestart(t *testing.T) {
	srv := miniotest.Start(t) // its own server: this test stops it
	s := newStore(t, config(t, srv))
	ctx := t.Context()
	if err := s.Put(ctx, "before", []byte("1")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	err := s.Put(ctx, "during", []byte("2"))
	if err == nil || store.IsPermanent(err) {
		t.Errorf("Put with the server down: %v, want a transient error", err)
	}
	t.Logf("Put failed after %v: %v", time.Since(start), err)
	srv.Restart()
	if err := s.Put(ctx, "after", []byte("3")); err != nil {
		t.Errorf("Put after restart: %v", err)
	}
	if b, err := s.Get(ctx, "before"); err != nil || string(b) != "1" {
		t.Errorf("Get after restart = %q, %v", b, err)
	}
}
