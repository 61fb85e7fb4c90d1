package chunker

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"

	rchunker "github.com/restic/chunker"
)

// Chunk is one cut piece of a stream: its id and its uncompressed bytes.
// Data may alias the slices given to the cutter.
type Chunk struct {
	ID   ID
	Data []byte
}

// Polynomial is the irreducible polynomial (degree 53) of the Rabin
// fingerprint both cutters use. It is fixed forever: changing it moves every
// cut and so ends deduplication against existing saves. It was derived with
// rchunker.DerivePolynomial from the SHA-256 stream of
// "pitr chunker polynomial <n>", n = 0, 1, ….
const Polynomial = rchunker.Pol(0x28073d9e8e3bc7)

// cdcParams are the bounds of one Rabin CDC setting: a cut comes after at
// least min bytes, where the fingerprint's low bits are zero, or at max.
// The mean chunk is about min + 2^bits (when max is far above that).
type cdcParams struct {
	min, max uint
	bits     int
}

// recordParams tune SplitRecords; see defaultRecordParams.
type recordParams struct {
	// groupEvery: a small record ends its group when the first 8 bytes of
	// its SHA-256, as a big-endian integer, are 0 modulo groupEvery.
	groupEvery uint64
	// groupMax ends a group once it holds at least this many bytes.
	groupMax int
	// alone: records of at least this many bytes are never grouped.
	alone int
	// splitAbove: records of more than this many bytes are cut by cdc.
	splitAbove int
	cdc        cdcParams
}

// The chosen parameters. CUTTING.md records how they were measured.
var (
	// streamParams: generic CDC over the whole stream, with the same
	// bounds as SplitRecords uses inside large records, so that comparing
	// the two is about where cuts fall.
	streamParams = cdcParams{min: 2 << 10, max: 64 << 10, bits: 13}

	defaultRecordParams = recordParams{
		groupEvery: 4,
		groupMax:   8 << 10,
		alone:      2 << 10,
		splitAbove: 16 << 10,
		cdc:        cdcParams{min: 2 << 10, max: 64 << 10, bits: 13},
	}
)

// SplitStream cuts stream by generic Rabin content-defined chunking, ignoring
// its structure. Chunks are 2 KiB to 64 KiB, about 10 KiB on average. pitr
// saves with SplitRecords, which uploads about a third as much per change
// (CUTTING.md); SplitStream stays as the baseline of that measurement.
// Their Data alias stream; empty input gives no chunks.
func SplitStream(stream []byte) []Chunk {
	var s cdcSplitter
	return s.split(nil, stream, streamParams)
}

// SplitRecords cuts a stream made of records (for a save: the header record,
// one record per node in id order, the trailer record) at record boundaries,
// so that a changed record changes only the chunks that hold it:
//
//   - records under 2 KiB are grouped: a group ends after a record whose
//     own SHA-256 is 0 modulo 4 (so about 4 records per group), once it
//     holds 8 KiB, or before a record of 2 KiB or more; so a changed,
//     inserted or deleted small record changes its own group and, when it
//     moves a boundary, the next one;
//   - records of 2 KiB to 16 KiB are one chunk each;
//   - records over 16 KiB are cut inside by Rabin CDC, 2 KiB to 64 KiB,
//     about 10 KiB on average, starting afresh at each record, so an edit
//     inside a large record changes one or two chunks of it.
//
// The chunks' concatenation is the concatenation of records. Data of a
// chunk made of one record or a piece of one aliases it; a group of several
// records is copied. Empty input gives no chunks.
func SplitRecords(records [][]byte) []Chunk {
	return splitRecords(records, defaultRecordParams)
}

func splitRecords(records [][]byte, p recordParams) []Chunk {
	s := recordSplitter{records: records, p: p}
	cutRecords(len(records), p, &s)
	return s.out
}

// recordSplitter is splitRecords' side of cutRecords: it cuts records held
// in memory into chunks with their data.
type recordSplitter struct {
	records [][]byte
	p       recordParams
	out     []Chunk
	cdc     cdcSplitter
}

func (s *recordSplitter) size(i int) int { return len(s.records[i]) }

func (s *recordSplitter) ends(i int) bool { return endsGroup(s.records[i], s.p.groupEvery) }

func (s *recordSplitter) group(first, last int) {
	if first == last {
		rec := s.records[first]
		s.out = append(s.out, Chunk{ID: Sum(rec), Data: rec})
		return
	}
	data := bytes.Join(s.records[first:last+1], nil)
	s.out = append(s.out, Chunk{ID: Sum(data), Data: data})
}

func (s *recordSplitter) alone(i int) {
	rec := s.records[i]
	if len(rec) > s.p.splitAbove {
		s.out = s.cdc.split(s.out, rec, s.p.cdc)
	} else {
		s.out = append(s.out, Chunk{ID: Sum(rec), Data: rec})
	}
}

// recordCutter is what cutRecords asks about records and tells of chunks.
type recordCutter interface {
	// size returns record i's length. cutRecords visits records in order
	// and asks size(i) before anything else about record i.
	size(i int) int
	// ends reports whether small record i ends its group by its hash
	// (endsGroup). It is asked right after size(i), and only when the
	// group's byte count does not end it anyway.
	ends(i int) bool
	// group is told of a chunk made of the small records first..last,
	// skipping empty ones; first and last are not empty, and first == last
	// when the group is one record.
	group(first, last int)
	// alone is told of record i of p.alone bytes or more, which is one
	// chunk, or is cut by CDC when over p.splitAbove bytes.
	alone(i int)
}

// cutRecords applies SplitRecords' grouping rule to records 0..n-1, telling
// c of each chunk, or large record, in stream order. It is the one grouping
// loop of SplitRecords and Planner, so both cut at the same records.
func cutRecords(n int, p recordParams, c recordCutter) {
	first, last, size := -1, -1, 0 // the open group: records, bytes
	closeGroup := func() {
		if first >= 0 {
			c.group(first, last)
			first, size = -1, 0
		}
	}
	for i := range n {
		switch rn := c.size(i); {
		case rn == 0:
			// adds nothing to the stream, so no chunk either
		case rn >= p.alone:
			closeGroup()
			c.alone(i)
		default:
			if first < 0 {
				first = i
			}
			last = i
			size += rn
			if size >= p.groupMax || c.ends(i) {
				closeGroup()
			}
		}
	}
	closeGroup()
}

// endsGroup reports whether rec is a group boundary.
func endsGroup(rec []byte, every uint64) bool {
	if every <= 1 {
		return true
	}
	return hashEndsGroup(sha256.Sum256(rec), every)
}

// hashEndsGroup is endsGroup of a record whose SHA-256 is h.
func hashEndsGroup(h [sha256.Size]byte, every uint64) bool {
	return every <= 1 || binary.BigEndian.Uint64(h[:8])%every == 0
}

// cdcSplitter runs restic's Rabin chunker over byte slices, reusing its
// buffers between calls.
type cdcSplitter struct {
	c   *rchunker.Chunker
	buf []byte
}

// split appends to out the CDC chunks of data, aliasing data.
func (s *cdcSplitter) split(out []Chunk, data []byte, p cdcParams) []Chunk {
	if len(data) == 0 {
		return out
	}
	rd := bytes.NewReader(data)
	if s.c == nil {
		s.c = rchunker.NewWithBoundaries(rd, Polynomial, p.min, p.max)
	} else {
		s.c.ResetWithBoundaries(rd, Polynomial, p.min, p.max)
	}
	s.c.SetAverageBits(p.bits)
	if uint(cap(s.buf)) < p.max {
		s.buf = make([]byte, 0, p.max)
	}
	for {
		c, err := s.c.Next(s.buf[:0])
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			// Reading a bytes.Reader cannot fail, and Polynomial is valid.
			panic("chunker: rabin cdc: " + err.Error())
		}
		piece := data[c.Start : c.Start+c.Length : c.Start+c.Length]
		out = append(out, Chunk{ID: Sum(piece), Data: piece})
	}
}
