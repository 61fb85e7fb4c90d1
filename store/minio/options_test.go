package minio_test

import (
	"context"
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
