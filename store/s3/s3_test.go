package s3_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/internal/miniotest"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/s3"
	"github.com/pitr-dev/pitr/store/storetest"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// setEnv points the standard AWS credential chain at srv, and only at it:
// no shared config files, no instance metadata. AWS_CA_BUNDLE stays set
// (the SDK must cope with it next to our HTTP client settings).
func setEnv(t *testing.T, srv *miniotest.Server) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	if os.Getenv("AWS_CA_BUNDLE") == "" {
		const bundle = "/etc/ssl/certs/ca-certificates.crt"
		if _, err := os.Stat(bundle); err == nil {
			t.Setenv("AWS_CA_BUNDLE", bundle)
		}
	}
}

func newStore(t *testing.T, cfg s3.Config) *s3.Store {
	t.Helper()
	s, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := miniotest.Shared(t)
	setEnv(t, srv)
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, s3.Config{Bucket: miniotest.Bucket(t), Endpoint: srv.Endpoint, CreateBucket: true})
	}, srv.SecretKey)
}

func TestConformanceWithPrefix(t *testing.T) {
	srv := miniotest.Shared(t)
	setEnv(t, srv)
	storetest.Run(t, func(t *testing.T) store.Store {
		cfg := s3.Config{Bucket: miniotest.Bucket(t), Endpoint: srv.Endpoint, CreateBucket: true, Prefix: "pre/fix"}
		s := newStore(t, cfg)
		cfg.Prefix = "pre/fi"
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
	setEnv(t, srv)
	storetest.RangedReads(t, newStore(t, s3.Config{Bucket: miniotest.Bucket(t), Endpoint: srv.Endpoint, CreateBucket: true,
		Prefix: "pre", Write: store.WriteOptions{StorageClass: "REDUCED_REDUNDANCY"}}))
}

func TestEndpointFromEnvironment(t *testing.T) {
	srv := miniotest.Shared(t)
	setEnv(t, srv)
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
	t.Setenv("AWS_REGION", "") // defaults to us-east-1 with a custom endpoint
	s := newStore(t, s3.Config{Bucket: miniotest.Bucket(t), CreateBucket: true, Prefix: "p"})
	ctx := t.Context()
	if err := s.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Get(ctx, "k"); err != nil || string(b) != "v" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	if !strings.Contains(s.String(), srv.Endpoint) || !strings.HasPrefix(s.String(), "s3://pitr-test-") {
		t.Errorf("String() = %q, want the bucket and %s", s.String(), srv.Endpoint)
	}
}

func TestNoRegion(t *testing.T) {
	srv := miniotest.Shared(t)
	setEnv(t, srv)
	t.Setenv("AWS_REGION", "")
	_, err := s3.New(t.Context(), s3.Config{Bucket: "pitr-no-region"})
	if err == nil || !strings.Contains(err.Error(), "region") || !strings.Contains(err.Error(), "pitr-no-region") {
		t.Errorf("New without region or endpoint: %v, want an error about the region naming the bucket", err)
	}
}

func TestMissingBucketNotCreated(t *testing.T) {
	srv := miniotest.Shared(t)
	setEnv(t, srv)
	bucket := miniotest.Bucket(t)
	_, err := s3.New(t.Context(), s3.Config{Bucket: bucket, Endpoint: srv.Endpoint})
	if !errors.Is(err, store.ErrBucketNotFound) {
		t.Fatalf("New with a missing bucket: %v, want ErrBucketNotFound", err)
	}
	if !strings.Contains(err.Error(), bucket) || !strings.Contains(err.Error(), srv.Endpoint) {
		t.Errorf("error %q does not name the bucket and the store", err)
	}
}

func TestCreateBucketRace(t *testing.T) {
	srv := miniotest.Shared(t)
	setEnv(t, srv)
	cfg := s3.Config{Bucket: miniotest.Bucket(t), Endpoint: srv.Endpoint, CreateBucket: true}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := s3.New(t.Context(), cfg)
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
	setEnv(t, srv)
	bucket := miniotest.Bucket(t)
	newStore(t, s3.Config{Bucket: bucket, Endpoint: srv.Endpoint, CreateBucket: true})
	const wrong = "wrong-secret-key-0123456789"
	for _, c := range []struct{ name, access string }{
		{"wrong secret", srv.AccessKey},
		{"unknown access key", "nosuchuser"},
	} {
		t.Setenv("AWS_ACCESS_KEY_ID", c.access)
		t.Setenv("AWS_SECRET_ACCESS_KEY", wrong)
		for _, b := range []string{bucket, miniotest.Bucket(t)} { // existing and missing
			_, err := s3.New(t.Context(), s3.Config{Bucket: b, Endpoint: srv.Endpoint, CreateBucket: true})
			if !errors.Is(err, store.ErrBadCredentials) {
				t.Errorf("%s: New error = %v, want ErrBadCredentials", c.name, err)
			}
			if err != nil && (strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), srv.SecretKey)) {
				t.Errorf("%s: error %q contains a secret key", c.name, err)
			}
		}
	}
}

func TestNoCredentials(t *testing.T) {
	srv := miniotest.Shared(t)
	setEnv(t, srv)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err := s3.New(t.Context(), s3.Config{Bucket: miniotest.Bucket(t), Endpoint: srv.Endpoint})
	if !errors.Is(err, store.ErrBadCredentials) {
		t.Errorf("New without credentials: %v, want ErrBadCredentials", err)
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, cfg := range []s3.Config{
		{},
		{Bucket: "b", Endpoint: "127.0.0.1:9000"},
		{Bucket: "b", Endpoint: "ftp://x"},
		{Bucket: "b", Prefix: "a//b/../c"},
	} {
		if _, err := s3.New(context.Background(), cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestServerRestart(t *testing.T) {
	srv := miniotest.Start(t) // its own server: this test stops it
	setEnv(t, srv)
	s := newStore(t, s3.Config{Bucket: miniotest.Bucket(t), Endpoint: srv.Endpoint, CreateBucket: true})
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
