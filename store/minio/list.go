package minio

import (
	"context"
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/pitr-dev/pitr/store"
)

// List pages through ListObjectsV2 with store.ListPages. It uses minio-go's
// Core API, which exposes the pages (the high-level iterator sends each
// page's common prefixes after its objects, out of order). Core takes no
// context, so each page request runs in a goroutine that List abandons when
// ctx ends; the request itself ends with the transport's timeouts.
func (s *Store) List(ctx context.Context, opts store.ListOptions, fn func(store.ObjectInfo) error) error {
	if err := store.ValidateListOptions(opts); err != nil {
		return fmt.Errorf("list %q in %s: %w", opts.Prefix, s.name, err)
	}
	fetch := func(ctx context.Context, startAfter, token string, pageSize int) (store.Page, error) {
		if startAfter != "" {
			startAfter = s.prefix + startAfter
		}
		page, err := s.listPage(ctx, s.prefix+opts.Prefix, startAfter, token, opts.Delimiter, pageSize)
		if err != nil {
			return store.Page{}, fmt.Errorf("list %q in %s: %w", opts.Prefix, s.name, err)
		}
		return s.convert(page), nil
	}
	return store.ListPages(ctx, opts, fetch, fn)
}

func (s *Store) listPage(ctx context.Context, prefix, startAfter, token, delim string, max int) (minio.ListBucketV2Result, error) {
	if err := ctx.Err(); err != nil {
		return minio.ListBucketV2Result{}, err
	}
	type result struct {
		page minio.ListBucketV2Result
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		page, err := s.core.ListObjectsV2(s.bucket, prefix, startAfter, token, delim, max)
		ch <- result{page, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return r.page, s.translate(r.err)
		}
		return r.page, nil
	case <-ctx.Done():
		return minio.ListBucketV2Result{}, ctx.Err()
	}
}

// convert returns a page's objects and common prefixes without the store's
// prefix.
func (s *Store) convert(page minio.ListBucketV2Result) store.Page {
	out := store.Page{
		Entries:   make([]store.ObjectInfo, 0, len(page.Contents)+len(page.CommonPrefixes)),
		Truncated: page.IsTruncated,
		NextToken: page.NextContinuationToken,
	}
	for _, o := range page.Contents {
		out.Entries = append(out.Entries, store.ObjectInfo{
			Key:     strings.TrimPrefix(o.Key, s.prefix),
			Size:    o.Size,
			ModTime: o.LastModified,
			ETag:    trimETag(o.ETag),
		})
	}
	for _, p := range page.CommonPrefixes {
		out.Entries = append(out.Entries, store.ObjectInfo{Key: strings.TrimPrefix(p.Prefix, s.prefix), IsPrefix: true})
	}
	return out
}
