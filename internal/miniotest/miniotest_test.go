package miniotest_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pitr-dev/pitr/internal/miniotest"
)

func live(srv *miniotest.Server) bool {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(srv.Endpoint + "/minio/health/live")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestStartStopRestart(t *testing.T) {
	srv := miniotest.Start(t)
	if !strings.HasPrefix(srv.Addr, "127.0.0.1:") || srv.Endpoint != "http://"+srv.Addr {
		t.Fatalf("Addr %q, Endpoint %q", srv.Addr, srv.Endpoint)
	}
	if !live(srv) || !srv.Running() {
		t.Fatal("server not live after Start")
	}
	client, err := minio.New(srv.Addr, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bucket := miniotest.Bucket(t)
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObject(ctx, bucket, "k", bytes.NewReader([]byte("v")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	if live(srv) || srv.Running() {
		t.Fatal("server still live after Stop")
	}
	srv.Stop() // idempotent

	srv.Restart()
	if !live(srv) {
		t.Fatal("server not live after Restart")
	}
	if _, err := client.StatObject(ctx, bucket, "k", minio.StatObjectOptions{}); err != nil {
		t.Errorf("object lost across Restart: %v", err)
	}

	srv.Kill()
	if live(srv) {
		t.Fatal("server live after Kill")
	}
	srv.Restart()
	if _, err := client.StatObject(ctx, bucket, "k", minio.StatObjectOptions{}); err != nil {
		t.Errorf("object lost across Kill and Restart: %v", err)
	}
}

func TestBucket(t *testing.T) {
	a, b := miniotest.Bucket(t), miniotest.Bucket(t)
	if a == b || strings.ToLower(a) != a || len(a) < 3 || len(a) > 63 {
		t.Errorf("Bucket() = %q, %q: want distinct lowercase names", a, b)
	}
}

func TestFindBinary(t *testing.T) {
	t.Setenv("PITR_MINIO_BIN", filepath.Join(t.TempDir(), "nope"))
	if _, err := miniotest.FindBinary(); err == nil || !strings.Contains(err.Error(), "PITR_MINIO_BIN") {
		t.Errorf("FindBinary with a missing PITR_MINIO_BIN: %v", err)
	}

	t.Setenv("PITR_MINIO_BIN", "")
	t.Setenv("PATH", t.TempDir())
	t.Setenv("GOBIN", "")
	t.Setenv("GOPATH", t.TempDir())
	_, err := miniotest.FindBinary()
	if err == nil || !strings.Contains(err.Error(), miniotest.InstallHint) {
		t.Errorf("FindBinary without a binary: %v, want the install hint", err)
	}

	gopath := t.TempDir()
	bin := filepath.Join(gopath, "bin", "minio")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOPATH", gopath)
	if got, err := miniotest.FindBinary(); err != nil || got != bin {
		t.Errorf("FindBinary = %q, %v; want %q", got, err, bin)
	}
}
