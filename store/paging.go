package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Page is one page of a paged object listing (S3 ListObjectsV2), for
// ListPages.
type Page struct {
	// Entries are the page's objects and common prefixes (IsPrefix), with
	// keys relative to the store root, in any order.
	Entries []ObjectInfo
	// Truncated says more pages follow, from NextToken.
	Truncated bool
	NextToken string
}

// PageFunc fetches one page of at most pageSize entries: with a token, the
// page it names; without, the first page of keys after startAfter (relative
// to the store root, "" for the start). Errors name the store.
type PageFunc func(ctx context.Context, startAfter, token string, pageSize int) (Page, error)

// DefaultPageSize is S3's largest page, used when ListOptions.Limit is 0.
const DefaultPageSize = 1000

// ListPages implements Store.List on a paged listing: it sorts each page,
// drops entries at or before StartAfter or the last entry reported (so
// servers that return a common prefix again, or disagree on StartAfter,
// still give one ascending sequence), and calls fn. A last page that is
// full is not trusted: ListPages asks again from after its last entry
// (MinIO has been seen to end a StartAfter listing at a full page with
// IsTruncated false although keys followed).
//
// It returns nil when fn returns ErrStop, fn's other errors as they are,
// and fetch's errors.
func ListPages(ctx context.Context, opts ListOptions, fetch PageFunc, fn func(ObjectInfo) error) error {
	pageSize := opts.Limit
	if pageSize <= 0 || pageSize > DefaultPageSize {
		pageSize = DefaultPageSize
	}
	last := opts.StartAfter // last key reported (or skipped up to)
	token := ""
	for {
		after := ""
		if token == "" {
			after = last
		}
		page, err := fetch(ctx, after, token, pageSize)
		if err != nil {
			return err
		}
		slices.SortFunc(page.Entries, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
		progressed := false
		for _, o := range page.Entries {
			if o.Key <= last {
				continue
			}
			if err := fn(o); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
			last, progressed = o.Key, true
		}
		switch {
		case page.Truncated:
			if page.NextToken == "" || page.NextToken == token {
				return fmt.Errorf("list %q: server sent a truncated page without a new continuation token", opts.Prefix)
			}
			token = page.NextToken
		case progressed && len(page.Entries) >= pageSize:
			token = "" // a full last page: make sure with a listing after it
		default:
			return nil
		}
	}
}
