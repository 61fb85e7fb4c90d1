package chunker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
)

// MaxChunkSize is the largest uncompressed chunk pitr writes or accepts. The
// cutters stay far below it; Decode stops decompressing beyond it, so a
// hostile or corrupt object cannot make a reader allocate without bound.
const MaxChunkSize = 16 << 20

// Compress frames raw as one lz4 frame (fast level, content checksum, content
// size in the header), the body of a chunk object. The result is readable by
// `lz4 -dc`.
func Compress(raw []byte) ([]byte, error) {
	if len(raw) > MaxChunkSize {
		return nil, fmt.Errorf("compress chunk %s: %w: %d bytes, max %d", Sum(raw), ErrTooLarge, len(raw), MaxChunkSize)
	}
	var out bytes.Buffer
	out.Grow(len(raw)/2 + 64)
	zw := lz4.NewWriter(&out)
	opts := []lz4.Option{
		lz4.BlockSizeOption(blockSize(len(raw))),
		lz4.ChecksumOption(true),
		lz4.ConcurrencyOption(1),
		lz4.SizeOption(uint64(len(raw))),
	}
	if err := zw.Apply(opts...); err != nil {
		return nil, fmt.Errorf("compress chunk: lz4 options: %w", err)
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("compress chunk: lz4: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress chunk: lz4: %w", err)
	}
	return out.Bytes(), nil
}

// blockSize picks the smallest lz4 block size holding n bytes in one block
// (4 MiB at most), so small chunks do not take 4 MiB buffers.
func blockSize(n int) lz4.BlockSize {
	for _, bs := range []lz4.BlockSize{lz4.Block64Kb, lz4.Block256Kb, lz4.Block1Mb} {
		if n <= int(bs) {
			return bs
		}
	}
	return lz4.Block4Mb
}

// DecodeInto decompresses a chunk body into dst, which must be exactly
// the chunk's size, and checks that it hashes to id: Decode without
// allocating the chunk. Errors wrap ErrCorrupt and name the chunk, as
// Decode's, and for a body that decompresses to another size than
// len(dst). On error dst holds whatever was decompressed.
//
// A frame as Compress writes it is decompressed block by block straight
// into dst (lz4.UncompressBlock), without the lz4 reader's block buffer
// and xxh32 checksums: the SHA-256 against id is the check, so a frame
// whose only damage is a checksum field decodes (Decode, which verify
// uses, still reports it). This cut the CPU of restoring a 20,000-node
// graph by about a sixth. Anything else goes through the lz4 reader.
func DecodeInto(id ID, body, dst []byte) error {
	if decodeBlocks(body, dst) && Sum(dst) == id {
		return nil
	}
	if len(body) == 0 {
		return fmt.Errorf("chunk %s: %w: empty object", id, ErrCorrupt)
	}
	zr := lz4.NewReader(bytes.NewReader(body))
	if err := zr.Apply(lz4.ConcurrencyOption(1)); err != nil {
		return fmt.Errorf("chunk %s: lz4 options: %w", id, err)
	}
	if n, err := io.ReadFull(zr, dst); errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("chunk %s: %w: decompresses to %d bytes, want %d", id, ErrCorrupt, n, len(dst))
	} else if err != nil {
		return fmt.Errorf("chunk %s: %w: lz4: %w", id, ErrCorrupt, err)
	}
	// Read to the frame's end: it must end here, and its checksum is
	// checked there.
	var one [1]byte
	if n, err := io.ReadFull(zr, one[:]); n > 0 {
		return fmt.Errorf("chunk %s: %w: decompresses to more than %d bytes", id, ErrCorrupt, len(dst))
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("chunk %s: %w: lz4: %w", id, ErrCorrupt, err)
	}
	if got := Sum(dst); got != id {
		return fmt.Errorf("chunk %s: %w: hash mismatch (content hashes to %s)", id, ErrCorrupt, got)
	}
	return nil
}

// Decode decompresses a chunk body and checks that it hashes to id. Errors
// wrap ErrCorrupt and name the chunk: a body that is not an lz4 frame, that
// decompresses to more than MaxChunkSize bytes, or whose content does not
// hash to id.
func Decode(id ID, body []byte) ([]byte, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("chunk %s: %w: empty object", id, ErrCorrupt)
	}
	zr := lz4.NewReader(bytes.NewReader(body))
	if err := zr.Apply(lz4.ConcurrencyOption(1)); err != nil {
		return nil, fmt.Errorf("chunk %s: lz4 options: %w", id, err)
	}
	var out bytes.Buffer
	// One byte over the cap tells an oversize chunk from one exactly at it.
	n, err := io.Copy(&out, io.LimitReader(zr, MaxChunkSize+1))
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w: lz4: %w", id, ErrCorrupt, err)
	}
	if n > MaxChunkSize {
		return nil, fmt.Errorf("chunk %s: %w: decompresses to more than %d bytes", id, ErrCorrupt, MaxChunkSize)
	}
	data := out.Bytes()
	if got := Sum(data); got != id {
		return nil, fmt.Errorf("chunk %s: %w: hash mismatch (content hashes to %s)", id, ErrCorrupt, got)
	}
	return data, nil
}

// decodeBlocks decompresses body, one lz4 frame of independent blocks as
// Compress writes it, straight into dst block by block, and reports
// whether it filled dst exactly. It does not check the frame's xxh32
// checksums (the caller checks the content's SHA-256, its id, instead)
// and gives up (false) on anything else: DecodeInto then decodes with the
// lz4 reader, which says what is wrong.
func decodeBlocks(body, dst []byte) bool {
	const (
		magic      = 0x184D2204
		flagIndep  = 1 << 5
		flagBlkSum = 1 << 4
		flagSize   = 1 << 3
		flagSum    = 1 << 2
		flagDict   = 1 << 0
	)
	if len(body) < 7 || binary.LittleEndian.Uint32(body) != magic {
		return false
	}
	flg, bd := body[4], body[5]
	if flg>>6 != 1 || flg&flagIndep == 0 || flg&flagDict != 0 || flg&2 != 0 {
		return false
	}
	if bd&0x8F != 0 || bd>>4 < 4 { // reserved bits, block maximum 64 KiB–4 MiB
		return false
	}
	p := 6 // magic, FLG, BD
	if flg&flagSize != 0 {
		if len(body) < p+8 || binary.LittleEndian.Uint64(body[p:]) != uint64(len(dst)) {
			return false
		}
		p += 8
	}
	p++ // header checksum
	n := 0
	for {
		if len(body) < p+4 {
			return false
		}
		size := binary.LittleEndian.Uint32(body[p:])
		p += 4
		if size == 0 {
			break
		}
		stored := size&(1<<31) != 0
		size &^= 1 << 31
		if uint64(len(body)-p) < uint64(size) {
			return false
		}
		blk := body[p : p+int(size)]
		p += int(size)
		if stored {
			if len(dst)-n < len(blk) {
				return false
			}
			n += copy(dst[n:], blk)
		} else {
			k, err := lz4.UncompressBlock(blk, dst[n:])
			if err != nil {
				return false
			}
			n += k
		}
		if flg&flagBlkSum != 0 {
			p += 4
		}
	}
	if flg&flagSum != 0 {
		p += 4
	}
	return p == len(body) && n == len(dst)
}
