package chunker

import (
	"fmt"
	"slices"
)

// RecordSource is the sequence of records a save cuts: for a save, the
// header record, one record per node in id order, the trailer record.
type RecordSource interface {
	// Len returns the number of records.
	Len() int
	// Key identifies record i's bytes: records with equal keys (==) have
	// equal bytes, within one Plan and across Plan calls; for a node's
	// record, the *session.Node itself will do, as nodes are immutable.
	// Keys must be comparable (Plan panics on a slice, map or func key). A
	// nil key means the record has no key: Plan reads it every time.
	Key(i int) any
	// Bytes returns record i's bytes. It may encode them afresh on each
	// call; neither Plan nor Data keeps them after it returns.
	Bytes(i int) []byte
}

// PlannedChunk is one chunk of a plan: its id and size, and where its bytes
// are in the records. Records First..Last hold them: whole, for a group of
// small records (empty records in between add nothing), or bytes
// [Offset, Offset+Size) of record First == Last.
type PlannedChunk struct {
	ID   ID
	Size int
	// First and Last are the indices of the first and last non-empty
	// record with bytes in the chunk.
	First, Last int
	// Offset is where the chunk starts in record First: non-zero only for
	// the CDC pieces of a large record after its first.
	Offset int
}

// StartsRecord reports whether c begins at a record boundary.
func (c PlannedChunk) StartsRecord() bool { return c.Offset == 0 }

// Planner cuts a sequence of records as SplitRecords does, into the same
// chunks, but remembers between calls what it computed for each record key
// and each group of records, so that a save after a small change reads and
// hashes only the changed records and the groups they are in.
//
// Its memory is proportional to the number of records of the last plan,
// not to their bytes: per record its SHA-256, length and whether it ends a
// group; per large record its CDC pieces (offsets, sizes, ids); per group
// of several records its id, keyed by its members' hashes.
//
// The zero value is ready to use. A Planner is not safe for concurrent use.
type Planner struct {
	params  recordParams             // zero: defaultRecordParams
	records map[any]*plannedRecord   // by key
	groups  map[string]*plannedGroup // by the members' hashes, concatenated
	gen     uint64                   // plans started (groups record the last that had them)
	chunks  int                      // the last plan's number of chunks
	// keys and recs are the last plan's records in order: a record whose
	// key is where it was (or where the previous record's shift puts it)
	// is found without a map lookup.
	keys []any
	recs []*plannedRecord
	// reused marks which of keys the plan being made found.
	reused []bool
	// spareKeys and spareRecs are the plan's before those, reused.
	spareKeys []any
	spareRecs []*plannedRecord
}

// plannedRecord is what a Planner remembers of one record.
type plannedRecord struct {
	size int
	// hash is the record's SHA-256 (its chunk id when it is a chunk of its
	// own), for records of at most splitAbove bytes; ends is
	// hashEndsGroup(hash).
	hash ID
	ends bool
	// pieces are the CDC pieces of a record over splitAbove bytes.
	pieces []piece
	// index is its index in the last plan that had it: written only when
	// it changes, so that a plan that finds records where they were
	// writes nothing to them.
	index int
}

// piece is one CDC piece of a large record.
type piece struct {
	offset, size int
	id           ID
}

// plannedGroup is what a Planner remembers of a group of several records:
// its chunk id.
type plannedGroup struct {
	id  ID
	gen uint64 // the last plan that had it
}

// Plan returns the chunks SplitRecords would cut from src's records, in
// the same order and with the same ids and sizes, without their data (see
// Data).
//
// It calls src.Bytes only for records whose key the previous Plan did not
// see, once each, and for the members of a group of several records that
// the previous Plan did not have. As with SplitRecords, a changed,
// inserted or deleted small record changes its own group and, when it
// moves a group's end, the next (and more in a run of groups cut at their
// maximum size). It panics when a record's bytes do not have the length
// Plan remembers for its key.
//
// Afterwards p remembers the records and groups of src only.
func (p *Planner) Plan(src RecordSource) []PlannedChunk {
	return p.PlanInto(nil, src)
}

// PlanInto is Plan, appending the chunks to dst[:0] (a buffer the caller no
// longer needs, such as the plan before the last).
func (p *Planner) PlanInto(dst []PlannedChunk, src RecordSource) []PlannedChunk {
	n := src.Len()
	if p.records == nil {
		p.records, p.groups = make(map[any]*plannedRecord, n), map[string]*plannedGroup{}
	}
	p.gen++
	r := planRun{
		pl:     p,
		src:    src,
		p:      p.cutParams(),
		recs:   slices.Grow(p.spareRecs[:0], n)[:n],
		keys:   slices.Grow(p.spareKeys[:0], n)[:n],
		reused: slices.Grow(p.reused[:0], len(p.keys))[:len(p.keys)],
		out:    slices.Grow(dst[:0], p.chunks+p.chunks/8+16),
	}
	clear(r.reused)
	p.reused = r.reused
	cutRecords(n, r.p, &r)
	// Forget the records of the previous plan that this one did not have
	// (a key it had twice, found once, is forgotten too: a later plan then
	// only reads its bytes again).
	for j, used := range r.reused {
		if k := p.keys[j]; !used && k != nil && p.records[k] == p.recs[j] {
			delete(p.records, k)
		}
	}
	if len(p.groups) > r.liveGroups {
		for k, g := range p.groups {
			if g.gen != p.gen {
				delete(p.groups, k)
			}
		}
	}
	p.chunks = len(r.out)
	// The previous plan's slices become the spares, emptied: kept, they
	// would hold deleted and replaced nodes alive.
	oldKeys, oldRecs := p.keys, p.recs
	p.keys, p.recs = r.keys, r.recs
	clear(oldKeys[:cap(oldKeys)])
	clear(oldRecs[:cap(oldRecs)])
	p.spareKeys, p.spareRecs = oldKeys[:0], oldRecs[:0]
	return r.out
}

// cutParams returns the parameters p cuts with.
func (p *Planner) cutParams() recordParams {
	if p.params == (recordParams{}) {
		return defaultRecordParams
	}
	return p.params
}

// planRun is one Plan call: Plan's side of cutRecords. It marks what it
// finds in the Planner's maps with the Planner's gen, and adds what it
// does not find.
type planRun struct {
	pl   *Planner
	src  RecordSource
	p    recordParams
	recs []*plannedRecord // record i of src
	keys []any            // record i's key
	// shift is where the last record found was in the previous plan,
	// relative to its index now: where the next one is looked for first.
	shift int
	// reused marks the previous plan's records this plan found.
	reused []bool
	// liveGroups counts the groups marked.
	liveGroups int
	// held are the bytes of records of the open group that size read, so
	// that a group needing its data does not read them again.
	held map[int][]byte
	out  []PlannedChunk
	cdc  cdcSplitter
	// Scratch, dropped with the run as it holds record bytes.
	chunks []Chunk // cdc's pieces of a record
	buf    []byte  // a group's key, then its data
}

func (r *planRun) size(i int) int {
	key := r.src.Key(i)
	r.keys[i] = key
	var rec *plannedRecord
	if key != nil {
		rec = r.previous(i, key)
	}
	if rec == nil {
		b := r.src.Bytes(i)
		rec = r.describe(b)
		if rec.size > 0 && rec.pieces == nil {
			if r.held == nil {
				r.held = map[int][]byte{}
			}
			r.held[i] = b // until group or alone takes it
		}
		if key != nil {
			r.pl.records[key] = rec
		}
	}
	if rec.index != i {
		rec.index = i
	}
	r.recs[i] = rec
	return rec.size
}

// previous returns what the previous plans computed for the record with
// key, or nil: from the previous plan's record at the same shift when it
// has that key (no map lookup), else from the map.
func (r *planRun) previous(i int, key any) *plannedRecord {
	if j := i + r.shift; j >= 0 && j < len(r.pl.keys) && r.pl.keys[j] == key {
		r.reused[j] = true
		return r.pl.recs[j]
	}
	rec := r.pl.records[key]
	if rec == nil {
		return nil
	}
	if j := rec.index; j < len(r.pl.keys) && r.pl.keys[j] == key {
		r.shift = j - i
		r.reused[j] = true
	}
	return rec
}

// describe computes what a Planner remembers of a record with bytes b.
func (r *planRun) describe(b []byte) *plannedRecord {
	rec := &plannedRecord{size: len(b)}
	switch {
	case len(b) == 0:
	case len(b) > r.p.splitAbove:
		r.chunks = r.cdc.split(r.chunks[:0], b, r.p.cdc)
		rec.pieces = make([]piece, len(r.chunks))
		off := 0
		for k, c := range r.chunks {
			rec.pieces[k] = piece{offset: off, size: len(c.Data), id: c.ID}
			off += len(c.Data)
		}
	default:
		rec.hash = Sum(b)
		rec.ends = hashEndsGroup(rec.hash, r.p.groupEvery)
	}
	return rec
}

func (r *planRun) ends(i int) bool { return r.recs[i].ends }

func (r *planRun) group(first, last int) {
	defer r.release(first, last)
	if first == last {
		rec := r.recs[first]
		r.out = append(r.out, PlannedChunk{ID: rec.hash, Size: rec.size, First: first, Last: first})
		return
	}
	// The group's key: its members' hashes, which determine its bytes.
	r.buf = r.buf[:0]
	size := 0
	for i := first; i <= last; i++ {
		if rec := r.recs[i]; rec.size > 0 {
			r.buf = append(r.buf, rec.hash[:]...)
			size += rec.size
		}
	}
	g := r.pl.groups[string(r.buf)]
	if g == nil {
		key := string(r.buf)
		r.buf = r.buf[:0]
		for i := first; i <= last; i++ {
			if r.recs[i].size > 0 {
				r.buf = append(r.buf, r.bytes(i)...)
			}
		}
		g = &plannedGroup{id: Sum(r.buf)}
		r.pl.groups[key] = g
	}
	if g.gen != r.pl.gen {
		g.gen = r.pl.gen
		r.liveGroups++
	}
	r.out = append(r.out, PlannedChunk{ID: g.id, Size: size, First: first, Last: last})
}

func (r *planRun) alone(i int) {
	defer r.release(i, i)
	rec := r.recs[i]
	if rec.size <= r.p.splitAbove {
		r.out = append(r.out, PlannedChunk{ID: rec.hash, Size: rec.size, First: i, Last: i})
		return
	}
	for _, pc := range rec.pieces {
		r.out = append(r.out, PlannedChunk{ID: pc.id, Size: pc.size, First: i, Last: i, Offset: pc.offset})
	}
}

// bytes returns record i's bytes, held or read again.
func (r *planRun) bytes(i int) []byte {
	b, ok := r.held[i]
	if !ok {
		b = r.src.Bytes(i)
	}
	if len(b) != r.recs[i].size {
		panic(fmt.Sprintf("chunker: plan: record %d has %d bytes, not the %d of its key", i, len(b), r.recs[i].size))
	}
	return b
}

// release drops the held bytes of records first..last.
func (r *planRun) release(first, last int) {
	if len(r.held) == 0 {
		return
	}
	for i := first; i <= last; i++ {
		delete(r.held, i)
	}
}

// Data returns the bytes of chunk c of a plan of src, reading the records
// that hold them with src.Bytes. src must have the records it had for that
// plan. Like SplitRecords' chunks, the data of a chunk of one record or a
// piece of one aliases what src.Bytes returned; a group of several records
// is copied. It panics when the records do not have the bytes c says.
func Data(src RecordSource, c PlannedChunk) []byte {
	if c.First == c.Last {
		b := src.Bytes(c.First)
		end := c.Offset + c.Size
		if c.Offset < 0 || end > len(b) {
			panic(fmt.Sprintf("chunker: data: chunk [%d, %d) of record %d of %d bytes", c.Offset, end, c.First, len(b)))
		}
		return b[c.Offset:end:end]
	}
	data := make([]byte, 0, c.Size)
	for i := c.First; i <= c.Last; i++ {
		data = append(data, src.Bytes(i)...)
	}
	if len(data) != c.Size {
		panic(fmt.Sprintf("chunker: data: records %d..%d have %d bytes, chunk %d", c.First, c.Last, len(data), c.Size))
	}
	return data
}
