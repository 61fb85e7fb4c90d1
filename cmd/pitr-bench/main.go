// Command pitr-bench runs pitr's benchmarks end to end (a real MinIO and the
// built pitr binary) and writes BENCHMARKS.md with --write. Run it from the
// repository root:
//
//	go run ./cmd/pitr-bench --write BENCHMARKS.md
//	go run ./cmd/pitr-bench --history --write BENCHMARKS.md
//	go run ./cmd/pitr-bench --requests --write BENCHMARKS.md
//	go run ./cmd/pitr-bench --scale --write BENCHMARKS.md
//
// The benchmarks, their modes and flags are described in package
// internal/bench; this is only its main.
package main

import (
	"os"

	"github.com/pitr-dev/pitr/internal/bench"
)

func main() {
	os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr))
}
