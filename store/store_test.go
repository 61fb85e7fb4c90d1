package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pitr-dev/pitr/store"
)

// TestBucketNotFoundIsNoStore checks the kinds of the "absent" sentinels: a
// missing bucket is a missing store, not the other way round, and neither is
// a missing object.
func TestBucketNotFoundIsNoStore(t *testing.T) {
	bucket := fmt.Errorf("bucket %q does not exist in minio://h/b: %w", "b", store.ErrBucketNotFound)
	if !errors.Is(bucket, store.ErrBucketNotFound) || !errors.Is(bucket, store.ErrNoStore) {
		t.Errorf("%v: want both ErrBucketNotFound and ErrNoStore", bucket)
	}
	if bucket.Error() != `bucket "b" does not exist in minio://h/b: bucket not found` {
		t.Errorf("message %q", bucket)
	}
	if errors.Is(store.ErrNoStore, store.ErrBucketNotFound) || errors.Is(bucket, store.ErrNotFound) {
		t.Error("ErrNoStore is not a missing bucket, nor a missing bucket a missing object")
	}
	for _, err := range []error{store.ErrNoStore, bucket} {
		if !store.IsPermanent(err) {
			t.Errorf("IsPermanent(%v) = false", err)
		}
	}
}
