package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/pitr-dev/pitr/store"
)

// PutIf writes data to key, atomically and durably, only if cond holds. The
// check and the write happen under the store's exclusive lock (see the
// package comment); IfNoneMatch creates the key with link(2), never
// replacing an object.
func (s *Store) PutIf(ctx context.Context, key string, data []byte, cond store.Condition) (string, error) {
	if err := checkKey(key); err != nil {
		return "", s.errorf("put", key, err)
	}
	op := "put (" + cond.String() + ")"
	if err := cond.Validate(); err != nil {
		return "", s.errorf(op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return "", s.errorf(op, key, err)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", s.errorf(op, key, err)
	}
	defer unlock()
	var tag string
	for range 5 { // a concurrent Delete may remove a fresh directory; see Put
		tag, err = s.putIf(key, data, cond)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return "", s.errorf(op, key, err)
	}
	return tag, nil
}

func (s *Store) putIf(key string, data []byte, cond store.Condition) (string, error) {
	dst := s.path(key)
	cur, err := os.Stat(dst)
	switch {
	case err != nil && !notFound(err):
		return "", err
	case err == nil && !cur.Mode().IsRegular():
		if cur.IsDir() {
			return "", fmt.Errorf("a directory of keys below %q is in the way", key)
		}
		return "", fmt.Errorf("%q is not a regular file", key)
	case cond.IfNoneMatch && err == nil:
		return "", fmt.Errorf("%w: the key exists (ETag %s)", store.ErrPreconditionFailed, etag(cur))
	case !cond.IfNoneMatch && err != nil:
		return "", fmt.Errorf("%w: the key does not exist", store.ErrPreconditionFailed)
	case !cond.IfNoneMatch && etag(cur) != cond.IfMatch:
		return "", fmt.Errorf("%w: the key's ETag is %s", store.ErrPreconditionFailed, etag(cur))
	}
	tmp, tag, err := s.writeTemp(dst, data)
	if err != nil {
		return "", err
	}
	place := os.Rename
	if cond.IfNoneMatch {
		place = os.Link
	}
	if err := s.commit(key, tmp, dst, place); err != nil {
		if cond.IfNoneMatch && errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%w: the key was created concurrently", store.ErrPreconditionFailed)
		}
		return "", err
	}
	return tag, nil
}

// GetWithInfo reads the object at key and its metadata from one open file,
// so both describe the same version even while the key is replaced.
func (s *Store) GetWithInfo(ctx context.Context, key string) ([]byte, store.ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return nil, store.ObjectInfo{}, s.errorf("get", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, store.ObjectInfo{}, s.errorf("get", key, err)
	}
	data, fi, err := readWithInfo(s.path(key))
	if err != nil {
		if notFound(err) || errors.Is(err, syscall.EISDIR) {
			return nil, store.ObjectInfo{}, s.errorf("get", key, store.ErrNotFound)
		}
		return nil, store.ObjectInfo{}, s.errorf("get", key, err)
	}
	return data, info(key, fi), nil
}

func readWithInfo(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, syscall.EISDIR
	}
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), fi, nil
}
