package bench

// cuttingSection summarizes chunker/CUTTING.md, the chunk-cutting
// comparison measured by the chunker's report tests (not by this command;
// their reproduce commands are in the report's first section). Keep it in
// step with CUTTING.md when the cutter changes.
const cuttingSection = "## Chunk cutting: generic CDC vs. record-aligned cuts\n" + `
From [chunker/CUTTING.md](chunker/CUTTING.md) (method, the full sweep and the reasoning are there), measured
in-process by ` + "`PITR_BENCH=1 go test ./chunker -run TestCuttingReport -v`" + ` on the same graph
(` + "`graphgen.Generate(1, 2000)`" + `, 18,677,758 data bytes) with stand-in node records, 20 runs (seeds 1–20), each
against the same base. This command does not re-measure them; re-run on the benchmark machine on 2026-11-25,
the chunker test printed exactly these figures. "New" is what a save would upload: chunks of the changed graph
the base lacked; lz4 is the stored size. The chosen cutter is
` + "`SplitRecords`" + `: records < 2 KiB grouped (a group ends after a record whose SHA-256 is 0 mod 4, at 8 KiB, or
before a record ≥ 2 KiB), records of 2–16 KiB one chunk each, larger records cut inside by Rabin CDC (min 2 KiB,
average 2^13, max 64 KiB). ` + "`SplitStream`" + ` runs the same Rabin CDC over the whole stream.

1 % change (20 nodes picked uniformly; 64.1 KiB changed per change on average):

| cutter | chunks | mean chunk | new chunks / change | new raw / change | new lz4 / change | raw ÷ changed | lz4 ÷ changed |
|---|---|---|---|---|---|---|---|
| SplitStream (generic CDC) | 1,823 | 10.0 KiB | 26.9 | 403.1 KiB | 357.5 KiB | 6.29 | 5.58 |
| **SplitRecords (aligned, kept)** | 2,933 | 6.2 KiB | 20.5 | 92.8 KiB | 81.6 KiB | 1.45 | **1.27** |

Edits of large nodes only (10 % of the 90 materials and meshes, one ≤ 8 KiB region each; 27.2 KiB changed):

| cutter | chunks | mean chunk | new chunks / change | new raw / change | new lz4 / change | raw ÷ changed | lz4 ÷ changed |
|---|---|---|---|---|---|---|---|
| SplitStream (generic CDC) | 1,823 | 10.0 KiB | 13.4 | 180.1 KiB | 141.8 KiB | 6.62 | 5.21 |
| **SplitRecords (aligned, kept)** | 2,933 | 6.2 KiB | 13.3 | 156.3 KiB | 124.2 KiB | 5.74 | **4.56** |

* Initial upload (lz4): SplitStream 13,492,204 bytes, SplitRecords 13,623,837 bytes.
* The chunk list (` + "`PITR_BENCH=1 go test ./manifest -run TestListCostReport -v`" + `): 98 list chunks for
  the base graph; a 1 % change makes 15.3 new list chunks, 29.8 KiB lz4, +0.46 bytes per changed byte. Data plus
  list chunks ≈ 1.73 bytes per changed byte, before the manifest — the end-to-end figure above measures the
  real thing, with the real session encoding.
* At equal chunk counts (≈ 3,650) aligned cutting still uploads 2.8× less than generic CDC (1.24 vs. 3.42 lz4 ÷
  changed): generic CDC pays about two chunks per change and its chunks straddle node records.
* Speed (` + "`go test ./chunker -run '^$' -bench Cutting`" + `, including SHA-256 of every chunk, noisy shared
  2-vCPU host): SplitStream ≈ 300–400 MB/s, SplitRecords ≈ 600 MB/s.
`
