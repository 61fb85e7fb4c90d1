package minio_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/minio"
	"github.com/pitr-dev/pitr/store/storetest"
)

// The encryption reaches every PUT, the storage class only chunk objects.
func TestWriteOptionsReachTheRequests(t *testing.T) {
	rec := storetest.NewHeaderRecorder(t)
	ctx := context.Background()
	st, err := minio.New(ctx, minio.Config{Endpoint: strings.TrimPrefix(rec.URL, "http://"), Bucket: "bkt", AccessKey: "key", SecretKey: "secret-key",
		Region: "us-east-1", Write: store.WriteOptions{SSE: "AES256", StorageClass: "REDUCED_REDUNDANCY"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "chunks/ab", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "sessions/s/saves/m.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for path, class := range map[string]string{"/bkt/chunks/ab": "REDUCED_REDUNDANCY", "/bkt/sessions/s/saves/m.json": ""} {
		h := rec.Put(path)
		if h == nil {
			t.Fatalf("no PUT of %s", path)
		}
		if h.Get("X-Amz-Server-Side-Encryption") != "AES256" || h.Get("X-Amz-Storage-Class") != class {
			t.Errorf("PUT %s: encryption %q class %q, want AES256 %q", path, h.Get("X-Amz-Server-Side-Encryption"), h.Get("X-Amz-Storage-Class"), class)
		}
	}
}

// A ranged read of an object written with encryption and a storage class
// sends exactly the Range asked for and none of the write headers (S3
// rejects encryption headers on a GET of an SSE-S3 or SSE-KMS object), and
// returns the bytes asked for.
func TestGetRangeWithWriteOptions(t *testing.T) {
	rec := storetest.NewHeaderRecorder(t)
	ctx := context.Background()
	st, err := minio.New(ctx, minio.Config{Endpoint: strings.TrimPrefix(rec.URL, "http://"), Bucket: "bkt", AccessKey: "key", SecretKey: "secret-key",
		Region: "us-east-1", Write: store.WriteOptions{SSE: "AES256", StorageClass: "REDUCED_REDUNDANCY"}})
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 256)
	for i := range body {
		body[i] = byte(i)
	}
	if err := st.Put(ctx, "chunks/ab", body); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetRange(ctx, "chunks/ab", 10, 20)
	if err != nil || !bytes.Equal(got, body[10:30]) {
		t.Fatalf("GetRange = %v, %v; want bytes 10-29", got, err)
	}
	h := rec.Get("/bkt/chunks/ab")
	if h.Get("Range") != "bytes=10-29" {
		t.Errorf("GET Range %q, want bytes=10-29", h.Get("Range"))
	}
	for _, name := range []string{"X-Amz-Server-Side-Encryption", "X-Amz-Storage-Class"} {
		if v := h.Get(name); v != "" {
			t.Errorf("GET sent %s: %s", name, v)
		}
	}
	if got, err := st.GetRange(ctx, "chunks/ab", 246, 10); err != nil || !bytes.Equal(got, body[246:]) {
		t.Errorf("GetRange to the end = %v, %v", got, err)
	}
	// The fake answers in net/http's words, not S3's XML: a short 206 and
	// a bare 416 are ErrInvalidRange all the same.
	for _, r := range [][2]int64{{250, 10}, {256, 1}, {1000, 1}} {
		if got, err := st.GetRange(ctx, "chunks/ab", r[0], r[1]); !errors.Is(err, store.ErrInvalidRange) {
			t.Errorf("GetRange(%d, %d) = %d bytes, %v; want ErrInvalidRange", r[0], r[1], len(got), err)
		}
	}
}
