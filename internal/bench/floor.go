package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/pitr-dev/pitr/chunker"
)

// compressFloor is how small the bytes a save changed get compressed on
// their own: a floor under what any save of them can upload, whatever its
// chunking and metadata. lz4 is pitr's codec (chunker.Compress); zstd -19
// and xz -9e, run when installed, are the strongest common compressors.
type compressFloor struct {
	raw   int64
	sizes []floorSize
}

type floorSize struct {
	codec string
	size  int64 // -1: not measured
	note  string
}

// measureFloor compresses changed (each changed node's span from its first
// to its last differing byte, concatenated) with each codec.
func measureFloor(ctx context.Context, changed []byte) compressFloor {
	f := compressFloor{raw: int64(len(changed))}
	if frame, err := chunker.Compress(changed); err == nil {
		f.sizes = append(f.sizes, floorSize{codec: "lz4 (pitr's)", size: int64(len(frame))})
	} else {
		f.sizes = append(f.sizes, floorSize{codec: "lz4 (pitr's)", size: -1, note: err.Error()})
	}
	for _, c := range []struct {
		name string
		args []string
	}{{"zstd", []string{"-19", "-c"}}, {"xz", []string{"-9e", "-c"}}} {
		fs := floorSize{codec: c.name + " " + c.args[0], size: -1}
		if _, err := exec.LookPath(c.name); err != nil {
			fs.note = "not installed"
			f.sizes = append(f.sizes, fs)
			continue
		}
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, c.name, c.args...)
		cmd.Stdin, cmd.Stdout = bytes.NewReader(changed), &out
		if err := cmd.Run(); err != nil {
			fs.note = err.Error()
		} else {
			fs.size = int64(out.Len())
		}
		f.sizes = append(f.sizes, fs)
	}
	return f
}

// cell renders the floor as ratios of changedBytes.
func (f compressFloor) cell(changedBytes int64) string {
	if f.raw == 0 {
		return "not measured"
	}
	var parts []string
	for _, s := range f.sizes {
		if s.size < 0 {
			parts = append(parts, s.codec+": "+s.note)
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s B (%.2f×)", s.codec, num(s.size), float64(s.size)/float64(max(changedBytes, 1))))
	}
	return strings.Join(parts, ", ")
}

// best is the smallest size measured (raw when none was).
func (f compressFloor) best() int64 {
	b := f.raw
	for _, s := range f.sizes {
		if s.size >= 0 && s.size < b {
			b = s.size
		}
	}
	return b
}

// changedSpan returns the bytes of b from its first to its last byte that
// differs from a (equal lengths: graphgen.Mutate keeps sizes).
func changedSpan(a, b []byte) []byte {
	lo, hi := 0, min(len(a), len(b))
	for lo < hi && a[lo] == b[lo] {
		lo++
	}
	for hi > lo && a[hi-1] == b[hi-1] {
		hi--
	}
	return b[lo:hi]
}
