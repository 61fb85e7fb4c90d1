package store

import (
	"fmt"
	"slices"
	"strings"
)

// WriteOptions are the object settings production buckets ask for, applied
// by the S3 and MinIO stores to the objects they write.
type WriteOptions struct {
	// SSE is the server-side encryption of every object: "" (the bucket's
	// default), "AES256" (SSE-S3) or "aws:kms" (SSE-KMS).
	SSE string
	// SSEKMSKeyID is the KMS key of "aws:kms" ("" for the account's
	// default key).
	SSEKMSKeyID string
	// StorageClass is the storage class of chunk objects (keys under
	// ChunkPrefix); manifests and claims, small and read often, stay in
	// the default class. "" is the bucket's default.
	StorageClass string
}

// ChunkPrefix is where chunk objects live; StorageClass applies to them.
const ChunkPrefix = "chunks/"

// StorageClasses are the S3 storage classes WriteOptions accepts.
var StorageClasses = []string{"STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "REDUCED_REDUNDANCY"}

// Validate checks the options, naming the flag of a bad one.
func (o WriteOptions) Validate() error {
	switch o.SSE {
	case "", "AES256", "aws:kms":
	default:
		return fmt.Errorf("--s3-sse %q: want AES256 or aws:kms", o.SSE)
	}
	if o.SSEKMSKeyID != "" && o.SSE != "aws:kms" {
		return fmt.Errorf("--s3-sse-kms-key-id needs --s3-sse aws:kms")
	}
	if o.StorageClass != "" && !slices.Contains(StorageClasses, o.StorageClass) {
		return fmt.Errorf("--s3-storage-class %q: want one of %s (archive classes that need a restore before a GET cannot serve pitr)",
			o.StorageClass, strings.Join(StorageClasses, ", "))
	}
	return nil
}

// ClassFor returns the storage class for key ("" for the default).
func (o WriteOptions) ClassFor(key string) string {
	if strings.HasPrefix(key, ChunkPrefix) {
		return o.StorageClass
	}
	return ""
}
