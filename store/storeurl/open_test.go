package storeurl_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/internal/miniotest"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/storeurl"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// roundTrip writes, reads and lists one object through s.
func roundTrip(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	if err := s.Put(ctx, "chunks/ab", []byte("data")); err != nil {
		t.Fatalf("Put through %s: %v", s, err)
	}
	if b, err := s.Get(ctx, "chunks/ab"); err != nil || string(b) != "data" {
		t.Fatalf("Get through %s = %q, %v", s, b, err)
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, raw := range []string{"file://" + filepath.ToSlash(dir) + "/abs", "file://rel/store"} {
		s, err := storeurl.Open(t.Context(), raw, storeurl.Options{CreateBucket: true})
		if err != nil {
			t.Fatalf("Open(%q): %v", raw, err)
		}
		roundTrip(t, s)
	}
	s, err := storeurl.Open(t.Context(), "file://rel/store", storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.Get(t.Context(), "chunks/ab"); err != nil || string(b) != "data" {
		t.Errorf("relative store not at %s/rel/store: %q, %v", dir, b, err)
	}
}

// TestOpenFileMissing checks that without CreateBucket a file store's
// missing directory is an error naming it, and nothing is created.
func TestOpenFileMissing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, raw := range []string{"file://" + filepath.ToSlash(dir) + "/abs/store", "file://rel/store", "file://pitr-data/store"} {
		_, err := storeurl.Open(t.Context(), raw, storeurl.Options{})
		if !errors.Is(err, store.ErrNoStore) || !strings.Contains(err.Error(), strings.TrimPrefix(raw, "file://")) {
			t.Errorf("Open(%q) of a missing directory: %v, want store.ErrNoStore naming it", raw, err)
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("Open without CreateBucket created %v (%v)", ents, err)
	}
}

func minioEnv(t *testing.T, srv *miniotest.Server) {
	t.Helper()
	t.Setenv("MINIO_ROOT_USER", srv.AccessKey)
	t.Setenv("MINIO_ROOT_PASSWORD", srv.SecretKey)
}

func TestOpenMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	minioEnv(t, srv)
	bucket := miniotest.Bucket(t)
	raw := "minio://" + srv.Addr + "/" + bucket + "/team/pitr?tls=false"
	s, err := storeurl.Open(t.Context(), raw, storeurl.Options{CreateBucket: true})
	if err != nil {
		t.Fatalf("Open(%q): %v", raw, err)
	}
	roundTrip(t, s)
	if s.String() != raw {
		t.Errorf("String() = %q, want %q", s.String(), raw)
	}

	// Credentials from the AWS variables when the MinIO ones are unset.
	t.Setenv("MINIO_ROOT_USER", "")
	t.Setenv("MINIO_ROOT_PASSWORD", "")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	if _, err := storeurl.Open(t.Context(), raw, storeurl.Options{}); err != nil {
		t.Errorf("Open with AWS_* credentials: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	if _, err := storeurl.Open(t.Context(), raw, storeurl.Options{}); !errors.Is(err, store.ErrBadCredentials) ||
		!strings.Contains(err.Error(), "MINIO_ROOT_USER") {
		t.Errorf("Open without credentials: %v, want ErrBadCredentials naming the variables", err)
	}
}

func TestOpenMinIOMissingBucket(t *testing.T) {
	srv := miniotest.Shared(t)
	minioEnv(t, srv)
	bucket := miniotest.Bucket(t)
	raw := "minio://" + srv.Addr + "/" + bucket + "?tls=false"
	for range 2 { // the first Open must not have created it
		_, err := storeurl.Open(t.Context(), raw, storeurl.Options{CreateBucket: false})
		if !errors.Is(err, store.ErrBucketNotFound) || !errors.Is(err, store.ErrNoStore) || !strings.Contains(err.Error(), bucket) {
			t.Errorf("Open of a missing bucket: %v, want ErrBucketNotFound and ErrNoStore naming %s", err, bucket)
		}
	}
	t.Setenv("MINIO_ROOT_PASSWORD", "wrong-password-42")
	_, err := storeurl.Open(t.Context(), raw, storeurl.Options{CreateBucket: true})
	if !errors.Is(err, store.ErrBadCredentials) || strings.Contains(err.Error(), "wrong-password-42") {
		t.Errorf("Open with a wrong password: %v, want ErrBadCredentials without the password", err)
	}
}

func TestOpenS3(t *testing.T) {
	srv := miniotest.Shared(t)
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_ENDPOINT_URL": "",
		"AWS_ENDPOINT_URL_S3": "", "AWS_SESSION_TOKEN": "",
		"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey,
	} {
		t.Setenv(k, v)
	}
	bucket := miniotest.Bucket(t)
	_, err := storeurl.Open(t.Context(), "s3://"+bucket+"/p", storeurl.Options{S3Endpoint: srv.Endpoint})
	if !errors.Is(err, store.ErrNoStore) || !strings.Contains(err.Error(), bucket) {
		t.Errorf("Open s3 of a missing bucket without CreateBucket: %v, want ErrNoStore naming %s", err, bucket)
	}
	s, err := storeurl.Open(t.Context(), "s3://"+bucket+"/p", storeurl.Options{S3Endpoint: srv.Endpoint, CreateBucket: true})
	if err != nil {
		t.Fatalf("Open s3 with an endpoint option: %v", err)
	}
	roundTrip(t, s)

	t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
	s, err = storeurl.Open(t.Context(), "s3://"+bucket+"/p", storeurl.Options{})
	if err != nil {
		t.Fatalf("Open s3 with AWS_ENDPOINT_URL_S3: %v", err)
	}
	if b, err := s.Get(t.Context(), "chunks/ab"); err != nil || string(b) != "data" {
		t.Errorf("Get through AWS_ENDPOINT_URL_S3 = %q, %v", b, err)
	}
}

func TestOpenBadURL(t *testing.T) {
	_, err := storeurl.Open(t.Context(), "minio://admin:topsecret@host:9000/b", storeurl.Options{})
	if !errors.Is(err, storeurl.ErrBadURL) || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("Open with credentials in the URL: %v", err)
	}
}

// A minio:// URL that speaks TLS to a plain-HTTP endpoint says to add
// ?tls=false.
func TestOpenTLSToPlainHTTPSuggestsTLSFalse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer srv.Close()
	t.Setenv("MINIO_ROOT_USER", "u")
	t.Setenv("MINIO_ROOT_PASSWORD", "password1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := storeurl.Open(ctx, "minio://"+strings.TrimPrefix(srv.URL, "http://")+"/bucket", storeurl.Options{})
	if err == nil || !strings.Contains(err.Error(), "?tls=false") {
		t.Fatalf("Open over TLS against plain HTTP: %v, want a hint to add ?tls=false", err)
	}
}
