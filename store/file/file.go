// Package file implements store.Store on a local directory: each key is one
// file under the root, at the key's slash-separated path.
//
// Writes are atomic and durable: Put writes a temporary file in the target
// directory, fsyncs it, renames it over the key and fsyncs the directory (and
// every directory it had to create), so a crash leaves the old object, the
// new one, or a stray temporary file, never a torn object. Temporary files
// are named ".pitr-tmp-*"; listings ignore them, and keys whose last segment
// starts with that prefix are rejected.
//
// ETag is "<size>-<mtime>-<inode>" in hex (mtime in nanoseconds; no inode
// where the platform has none): stable while the object is unchanged, and
// different after every rewrite: each write renames a new file (a new
// inode) into place, its mtime set to now but always after the replaced
// file's, so even a reused inode does not bring back an old ETag. It is not
// a content hash, unlike S3's: equal content written twice gets two ETags,
// and ETags of different stores do not compare.
//
// Conditional writes (PutIf) are serialized by an exclusive flock(2) on the
// root directory, held while the condition is checked and the new file put
// in place; so they are atomic with respect to each other, in this process
// and in every other process sharing the directory on a local file system.
// IfNoneMatch creates with link(2), which fails if the key exists, so it is
// atomic even against a concurrent Put. An IfMatch write is not atomic
// against a concurrent unconditional Put or Delete of the same key (those
// take no lock, so a large save never delays a lease renewal); pitr never
// mixes the two on one key. On platforms without flock the lock is only
// held within the process.
//
// A file system cannot hold both "a" and "a/b"; Put of one while the other
// exists fails with an error naming both. The object stores do not have
// this limit.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/store"
)

// TempPrefix starts the name of every temporary file Put creates.
const TempPrefix = ".pitr-tmp-"

// Store is a store.Store on a local directory. It is safe for concurrent use,
// also by several processes sharing the directory.
type Store struct {
	root  string      // absolute, cleaned
	clock clock.Clock // stamps the objects' mtimes: the file system's, so the wall clock
}

var _ store.Store = (*Store)(nil)

// New returns a Store rooted at root, creating the directory if needed.
func New(root string) (*Store, error) { return open(root, true) }

// Open returns a Store rooted at an existing directory and creates nothing:
// a missing root is an error wrapping store.ErrNoStore that names it.
func Open(root string) (*Store, error) { return open(root, false) }

func open(root string, create bool) (*Store, error) {
	if root == "" {
		return nil, errors.New("file store: empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("file store %s: %w", root, err)
	}
	s := &Store{root: abs, clock: clock.Real()}
	if create {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("file store %s: create root: %w", abs, err)
		}
	}
	fi, err := os.Stat(abs)
	switch {
	case notFound(err):
		return nil, fmt.Errorf("%w: %s (no such directory)", store.ErrNoStore, s)
	case err != nil:
		return nil, fmt.Errorf("file store %s: %w", abs, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("file store %s: not a directory", abs)
	}
	return s, nil
}

// Root returns the absolute root directory.
func (s *Store) Root() string { return s.root }

// String names the store as a file URL.
func (s *Store) String() string { return "file://" + filepath.ToSlash(s.root) }

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

func (s *Store) errorf(op, key string, err error) error {
	return fmt.Errorf("%s %q in %s: %w", op, key, s, err)
}

func checkKey(key string) error {
	if err := store.ValidateKey(key); err != nil {
		return err
	}
	if strings.HasPrefix(key[strings.LastIndexByte(key, '/')+1:], TempPrefix) {
		return fmt.Errorf("%w %q: the file store reserves names starting with %q", store.ErrInvalidKey, key, TempPrefix)
	}
	return nil
}

// notFound reports whether err from opening or stat-ing a key's path means
// the key does not exist: the path is missing, or one of its parents is a
// file (ENOTDIR).
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Put writes data to key atomically and durably.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey(key); err != nil {
		return s.errorf("put", key, err)
	}
	if err := ctx.Err(); err != nil {
		return s.errorf("put", key, err)
	}
	// A concurrent Delete may remove the (then empty) directory between our
	// mkdir and create; try again a few times.
	var err error
	for range 5 {
		err = s.put(key, data)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return s.errorf("put", key, err)
	}
	return nil
}

func (s *Store) put(key string, data []byte) error {
	dst := s.path(key)
	tmp, _, err := s.writeTemp(dst, data)
	if err != nil {
		return err
	}
	return s.commit(key, tmp, dst, os.Rename)
}

// writeTemp writes data to a new, synced temporary file beside dst (making
// dst's directory if needed) and returns its path and its ETag, which the
// file keeps once renamed or linked to dst. Its mtime is set to now, or
// just after dst's current mtime if that is not earlier, so with the inode
// the ETag differs from that of every earlier version of the key (a
// kernel's coarse timestamps alone could repeat one when an inode is
// reused).
func (s *Store) writeTemp(dst string, data []byte) (tmp, tag string, err error) {
	dir := filepath.Dir(dst)
	if err := s.mkdirAll(dir); err != nil {
		return "", "", err
	}
	f, err := os.CreateTemp(dir, TempPrefix+"*")
	if err != nil {
		return "", "", err
	}
	tmp = f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return "", "", err
	}
	if err := f.Chmod(0o644); err != nil {
		return "", "", err
	}
	mtime := s.clock.Now()
	if cur, err := os.Stat(dst); err == nil && !mtime.After(cur.ModTime()) {
		mtime = cur.ModTime().Add(time.Nanosecond)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		return "", "", err
	}
	if err := f.Sync(); err != nil {
		return "", "", err
	}
	fi, err := f.Stat()
	if err != nil {
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	ok = true
	return tmp, etag(fi), nil
}

// commit moves the temporary file tmp to dst with place (os.Rename, or
// os.Link for a create that must not replace), removes tmp if it is still
// there, and syncs the directory.
func (s *Store) commit(key, tmp, dst string, place func(oldpath, newpath string) error) error {
	err := place(tmp, dst)
	if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		if fi, serr := os.Lstat(dst); serr == nil && fi.IsDir() {
			return fmt.Errorf("a directory of keys below %q is in the way", key)
		}
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// mkdirAll creates dir and its missing parents below the root, fsyncing the
// parent of every directory it creates so the new entries are durable.
func (s *Store) mkdirAll(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is a file, not a directory of keys", s.keyOf(dir))
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		if errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("a parent of %s is a file, not a directory of keys", s.keyOf(dir))
		}
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir && dir != s.root {
		if err := s.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func (s *Store) keyOf(path string) string {
	rel, err := filepath.Rel(s.root, path)
	if err != nil {
		return path
	}
	return strconv.Quote(filepath.ToSlash(rel))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Get reads the whole object at key.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, s.errorf("get", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, s.errorf("get", key, err)
	}
	data, err := os.ReadFile(s.path(key))
	if err != nil {
		if notFound(err) || errors.Is(err, syscall.EISDIR) {
			return nil, s.errorf("get", key, store.ErrNotFound)
		}
		return nil, s.errorf("get", key, err)
	}
	return data, nil
}

// GetRange reads length bytes of the object at key from byte offset, with
// one pread of an open file: the version opened, even while the key is
// replaced.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, s.errorf("get range", key, err)
	}
	if err := store.ValidateRange(offset, length); err != nil {
		return nil, s.errorf("get range", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, s.errorf("get range", key, err)
	}
	data, err := readRange(s.path(key), offset, length)
	if err != nil {
		if notFound(err) || errors.Is(err, syscall.EISDIR) {
			return nil, s.errorf("get range", key, store.ErrNotFound)
		}
		return nil, s.errorf("get range", key, err)
	}
	return data, nil
}

func readRange(path string, offset, length int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, syscall.EISDIR
	}
	if size := fi.Size(); size-offset < length {
		return nil, store.ShortObject(offset, length, size)
	}
	buf := make([]byte, length)
	n, err := f.ReadAt(buf, offset)
	if errors.Is(err, io.EOF) {
		// The file shrank after the Stat (Put replaces objects by rename,
		// never in place, so only something else truncating it can):
		// short all the same.
		return nil, store.ShortObject(offset, length, offset+int64(n))
	}
	if err != nil {
		return nil, err
	}
	return buf, nil
}

// Stat returns the metadata of the object at key.
func (s *Store) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return store.ObjectInfo{}, s.errorf("stat", key, err)
	}
	if err := ctx.Err(); err != nil {
		return store.ObjectInfo{}, s.errorf("stat", key, err)
	}
	fi, err := os.Stat(s.path(key))
	if err != nil {
		if notFound(err) {
			return store.ObjectInfo{}, s.errorf("stat", key, store.ErrNotFound)
		}
		return store.ObjectInfo{}, s.errorf("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return store.ObjectInfo{}, s.errorf("stat", key, store.ErrNotFound)
	}
	return info(key, fi), nil
}

func info(key string, fi fs.FileInfo) store.ObjectInfo {
	return store.ObjectInfo{
		Key:     key,
		Size:    fi.Size(),
		ModTime: fi.ModTime(),
		ETag:    etag(fi),
	}
}

func etag(fi fs.FileInfo) string {
	tag := strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16)
	if ino, ok := inode(fi); ok {
		tag += "-" + strconv.FormatUint(ino, 16)
	}
	return tag
}

// Delete removes key, then any directories the removal left empty (up to,
// not including, the root). A missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return s.errorf("delete", key, err)
	}
	if err := ctx.Err(); err != nil {
		return s.errorf("delete", key, err)
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	if err != nil {
		if notFound(err) {
			return nil
		}
		return s.errorf("delete", key, err)
	}
	if fi.IsDir() {
		return nil // only a prefix of other keys, not an object
	}
	if err := os.Remove(p); err != nil && !notFound(err) {
		return s.errorf("delete", key, err)
	}
	dir := filepath.Dir(p)
	if err := syncDir(dir); err != nil && !notFound(err) {
		return s.errorf("delete", key, err)
	}
	for dir != s.root && strings.HasPrefix(dir, s.root) {
		if os.Remove(dir) != nil { // not empty (or already gone): stop
			break
		}
		dir = filepath.Dir(dir)
	}
	return nil
}

// List calls fn for the objects matching opts in ascending byte order of
// keys. It walks the directory tree in key order (a directory "d" sorts as
// "d/"), reading one directory at a time, so it can stop early and skips
// directories outside Prefix, before StartAfter or, with a Delimiter, below
// a common prefix. Limit is ignored.
func (s *Store) List(ctx context.Context, opts store.ListOptions, fn func(store.ObjectInfo) error) error {
	if err := store.ValidateListOptions(opts); err != nil {
		return fmt.Errorf("list %q in %s: %w", opts.Prefix, s, err)
	}
	w := walker{s: s, ctx: ctx, opts: opts, fn: fn}
	err := w.walk("")
	switch {
	case err == nil || errors.Is(err, store.ErrStop):
		return nil
	case w.fnErr:
		return err
	default:
		return fmt.Errorf("list %q in %s: %w", opts.Prefix, s, err)
	}
}

// walker lists the keys below one directory in byte order.
type walker struct {
	s     *Store
	ctx   context.Context
	opts  store.ListOptions
	fn    func(store.ObjectInfo) error
	fnErr bool // the error came from fn, return it as is
}

type entry struct {
	name string // key of the file, or key of the directory plus "/"
	dir  bool
	d    fs.DirEntry
}

// walk lists the directory whose keys start with dirKey ("" or ending in "/").
func (w *walker) walk(dirKey string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(w.s.path(dirKey))
	if err != nil {
		if notFound(err) {
			return nil // removed meanwhile, or a prefix naming a file
		}
		return err
	}
	list := make([]entry, 0, len(ents))
	for _, d := range ents {
		switch {
		case d.IsDir():
			list = append(list, entry{name: dirKey + d.Name() + "/", dir: true, d: d})
		case d.Type().IsRegular() && !strings.HasPrefix(d.Name(), TempPrefix):
			list = append(list, entry{name: dirKey + d.Name(), d: d})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	for _, e := range list {
		if e.dir {
			err = w.dir(e.name)
		} else {
			err = w.file(e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) dir(p string) error {
	prefix, after := w.opts.Prefix, w.opts.StartAfter
	under := strings.HasPrefix(p, prefix)
	switch {
	case !under && !strings.HasPrefix(prefix, p):
		return nil // no key below p has the prefix
	case after >= p && !strings.HasPrefix(after, p):
		return nil // every key below p sorts before StartAfter
	case under && len(p) > len(prefix) && w.opts.Delimiter != "":
		// p ends with the first delimiter after the prefix: a common
		// prefix, if it sorts after StartAfter and holds an object.
		if p <= after {
			return nil
		}
		found := errors.New("found")
		sub := walker{s: w.s, ctx: w.ctx, opts: store.ListOptions{Prefix: p, StartAfter: after},
			fn: func(store.ObjectInfo) error { return found }}
		switch err := sub.walk(p); {
		case errors.Is(err, found):
			return w.emit(store.ObjectInfo{Key: p, IsPrefix: true})
		case err != nil:
			return err
		}
		return nil
	}
	return w.walk(p)
}

func (w *walker) file(e entry) error {
	if !strings.HasPrefix(e.name, w.opts.Prefix) || e.name <= w.opts.StartAfter {
		return nil
	}
	fi, err := e.d.Info()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		}
		return err
	}
	return w.emit(info(e.name, fi))
}

func (w *walker) emit(o store.ObjectInfo) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if err := w.fn(o); err != nil {
		w.fnErr = !errors.Is(err, store.ErrStop)
		return err
	}
	return nil
}
