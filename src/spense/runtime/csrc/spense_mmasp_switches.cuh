// The environment switches of the mma.sp launchers (spense_mmasp.cu), each read once per process; what each one
// chooses and what it measured on the H200 is said beside it and in docs/runtime.md's switch table.
#pragma once
#include <cstdlib>

// an environment switch: set to a value starting with "1"
static bool env_on(const char* name) {
  const char* e = getenv(name);
  return e != nullptr && e[0] == '1';
}

// SPENSE_MMASP_PDL (read once; default 1, =0: off): launch the register kernel with programmatic stream
// serialization on sm_90+ (spense_mmasp_common.cuh: pdl_wait), so that it loads its first round of
// weights while the kernel that produces x finishes (e2e v15: the 8B step 3.0-3.3 % faster in BF16).
// =2 (written after v15; e2e v16: the 8B BF16 step 1.1-1.4 % slower, so not the default): its CTAs also free the
// next kernel's launch right after their wait instead of once their weights are read (the kernel passes the mode:
// spense_mmasp_reg.cuh)
static int pdl_mode() {
  static int mode = -1;
  if (mode < 0) {
    int dev = 0, major = 0;
    C10_CUDA_CHECK(cudaGetDevice(&dev));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    const char* e = getenv("SPENSE_MMASP_PDL");
    const int want = e == nullptr ? 1 : e[0] == '0' ? 0 : e[0] == '2' ? 2 : 1;
    // graph capture of programmatic launches needs CUDA 12.3+
    mode = (major >= 9 && CUDART_VERSION >= 12030) ? want : 0;
  }
  return mode;
}

// SPENSE_MMASP_PF=1 (read once): the software-pipelined register kernel at RT = 1 and at most 8 warps
// (other configs keep the plain kernel)
static bool pf_enabled() {
  static const bool on = env_on("SPENSE_MMASP_PF");
  return on;
}

// SPENSE_MMASP_PERSIST (read once): where the in-order sum runs (DET) on e4m3 weights, the persistent form
// (spense_mmasp_persist.cuh) "1": always; "2": where the grid fits in one wave of it (each CTA takes one block);
// unset or "0": never.  Measured on the H200 (benchmarks/results/wgsd_2026-12-01, al, am): walking several
// blocks a CTA lost everywhere per layer (8B.gate_up 23.8 -> 25.1 us, 32B.down 32.0 -> 44.7 at M = 1: 4 CTAs
// of 4 warps a SM instead of 6); on the one-wave grids it ran faster per layer (8B.down 15.7 -> 14.3 us, 8B.o
// 6.4 -> 6.0 at M = 1; 16.6 -> 14.9 and 6.5 -> 6.2 at M = 8), but the 8B FP8 step with "2" took 2.927 ms at
// B = 1 against 2.903 without it (am, same lease): off by default.  "3": only where the grid does not fit in one
// wave (on 8B, gate_up), capped to one wave that walks the blocks.  Written for gate_up's fill and last partial wave,
// thought lost in the step (docs/e2e.md v55: 40.6 us of the step's wall time against 28.8 alone at M = 8 on the H100);
// those 40.6 us were qkv and gate_up together, and the step's kernels take what the layers take alone (v59).
// Timed in e2e v56 (H100, 8B FP8, one machine) when "3" still meant more than the persistent kernel's own wave (it took
// 8B.qkv too): the step 3.058 -> 3.425 ms at B = 1, 3.522 -> 3.872 at B = 8; now it means more than one wave of the
// one-block kernel (spense_mmasp.cu: launch_reg), on 8B gate_up alone: timed in e2e v57 (H200, one machine), the step
// 2.550 -> 2.883 ms at B = 1, 2.898 -> 3.264 at B = 8 (13 % slower)
static int persist_mode() {
  static const int mode = [] {
    const char* e = getenv("SPENSE_MMASP_PERSIST");
    return e == nullptr ? 0 : e[0] == '1' ? 1 : e[0] == '2' ? 2 : e[0] == '3' ? 3 : 0;
  }();
  return mode;
}

// SPENSE_MMASP_EARLY (read once): the in-order-sum register kernel at RT = 1 and NT = 1 with its prologue reordered
// (spense_mmasp_reg.cuh: EARLY = 3, the first round's loads before the rows' scales are read and each warp's next
// round asked into L2 before a round's MMAs).  Unset: e4m3 weights where the grid runs in one wave.  Measured on the
// H200 (benchmarks/results/wgsd_2026-12-02): the harness (au; dependent launch, 8 warps, M = 1 / 8) e4m3 1.02-1.11x
// on 8B.qkv, 8B.o, 8B.down, 32B.o, 32B.down and 0.95-0.99x on the many-wave 32B.qkv and 32B.gate_up, bf16 x_perm
// 1.02-1.20x on all eight; linear_bench (av, the engine's x forms and launch configs) e4m3 at M = 1: 8B.down 16.4 ->
// 13.6 us, 32B.down 32.8 -> 28.5, 8B.o 6.6 -> 6.1, but bf16 through fragments -4..+8 % either way, so bf16 keeps
// it off; the 8B FP8 decode step 2.872 -> 2.840 ms at B = 1 (aw).  EARLY = 19 (this prologue with EARLY = 16's
// clamped rounds) was launched in its place under a switch at 80606ce: the harness (bo) 0.97-1.01x EARLY = 3's
// speed, linear_bench e4m3 on x's f16 operand at M = 1, 8 -3..+3 % on the five one-wave shapes; not kept.  "0":
// never; "3": everywhere it is built (bf16 too); "auto": as unset.
static int early_mode() {
  static const int mode = [] {
    const char* e = getenv("SPENSE_MMASP_EARLY");
    return e == nullptr || e[0] == 0 || e[0] == 'a' ? -1 : e[0] == '3' ? 3 : 0;
  }();
  return mode;
}

// SPENSE_MMASP_CLAMP (read once): the in-order-sum register kernel with every step of a sparse round loaded, a step
// past the row block's last loading the last one again (spense_mmasp_reg.cuh: EARLY & 16, load_sparse_round's CLAMP),
// so that no weight load sits behind a sparse round's branch.  Unset: e4m3 weights (x in bf16 or f16) at NT = 2
// (M = 9-16), at RT = 2, and at RT = NT = 1 where EARLY = 3 is not taken (also under SPENSE_MMASP_EARLY=0); bf16 at
// RT = 1 and NT = 2.  bf16 at RT = NT = 1 keeps the plain kernel (its loads are predicated already:
// tests/test_mmasp.py), and so does bf16 at RT = 2 (not timed with it; its dense rounds keep their branches either
// way).  Measured on the H200 (benchmarks/results/wgsd_2026-12-02, folder bl;
// harness, eight Qwen3 shapes, 25 % dense): e4m3 at M = 16 and RT = 2 1.02-1.25x faster (32B.down 48.1 -> 38.5 us),
// bf16 at M = 16 1.04-1.37x, e4m3 at RT = NT = 1 0.98-1.06x, bf16 at M = 1 and 8 0.97-1.03x; linear_bench (bm, the
// fastest launch config of each cell) e4m3 32B.down at M = 16 47.1 -> 37.9 us, 32B.gate_up at M = 1 54.8 -> 51.1;
// e4m3 with x in bf16 (columns mmasp, mmasp_xf) 0.95-1.14x, below 1 only within that call's noise.  "0": never.
static int clamp_mode() {
  static const int mode = [] {
    const char* e = getenv("SPENSE_MMASP_CLAMP");
    return e != nullptr && e[0] == '0' ? 0 : 1;
  }();
  return mode;
}

// SPENSE_MMASP_RT2_256 (read once; default 2 since the fifty-first stop; "0" off): the bf16 register kernel
// at RT = 2 with x's fragments and at most 8 warps (its in-order sum, M <= 16) bound to 256 threads (MINB = 1 in
// spense_mmasp_reg.cuh), so that ptxas gives it 174-185 registers and no spills instead of 128 registers and
// 236 / 388 bytes of spill stores a thread at NT = 1 / 2 (-Xptxas -v, sm_90a; the launch-config tables take RT = 2
// for bf16 on 8B.gate, 8B.qkv, 32B.qkv, 32B.o and 32B.down cells at M = 4-16 on the H100).  It halves the warps a
// SM can hold (two CTAs of 4 warps instead of four).  "1": that kernel; "2": the same with every step of a sparse
// round loaded (EARLY = 16, as SPENSE_MMASP_CLAMP does elsewhere; 178-186 registers); the same sums in the same order
// either way.  Measured on the H100 (benchmarks/results/wgsd_2026-12-06, co and cq; 8B and 32B shapes at M = 4,
// 8, 16, configs 2x4 and 2x8): "2" ran 1.03-1.71x as fast as "0" in 33 of 36 timings, 0.96x on 32B.down at 2x8
// (M = 4, 8) and 0.995x on 32B.o at 2x8 (M = 4); RT = 1 configs unchanged (0.98-1.01x).
static int rt2_b256_mode() {
  static const int mode = [] {
    const char* e = getenv("SPENSE_MMASP_RT2_256");
    return e == nullptr || e[0] == '\0' ? 2 : e[0] == '0' ? 0 : e[0] == '1' ? 1 : 2;
  }();
  return mode;
}

// SPENSE_MMASP_DET=0 (read once): the register kernel's warps add their sums with shared-memory atomics
// (the kernel of e2e v13) instead of in order; the in-order sum (DET) is the default where it is built
// (M <= 16, at most 8 warps): run to run identical, and at 0.84-1.01x the atomics' time on the H200 harness
// (benchmarks/results/mmasp_bulk_2026-12-01/det_0c0db23)
static bool det_enabled() {
  static const bool on = [] { const char* e = getenv("SPENSE_MMASP_DET"); return e == nullptr || e[0] != '0'; }();
  return on;
}

// an integer switch, read by the caller once: -1 when unset or empty
static int env_int(const char* name) {
  const char* e = getenv(name);
  return e == nullptr || e[0] == 0 ? -1 : atoi(e);
}
// SPENSE_MMASP_XS_MIN_TILES (read once): the fewest row tiles for the shared-x kernel without a K split
// (default 1056)
static int xs_min_tiles() {
  static const int t = [] { const int v = env_int("SPENSE_MMASP_XS_MIN_TILES"); return v < 0 ? 1056 : v; }();
  return t;
}
// Whether the shared-x kernel (spense_mmasp_xs.cuh) replaces the register kernel (RT = 1, <= 8 warps, x
// fragments) for this call. `big`: the layer has >= xs_min_tiles() row tiles; smaller layers take it
// with K split over CTAs (xs_splits), the sums met in a zeroed fp32 buffer.
//   SPENSE_MMASP_XS unset: where it measured faster on the H200 (benchmarks/results/mmasp_bulk_2026-11-30,
//     quick_add61a4): big layers above M = 8 in bf16 (8B gate_up at M = 16: 44.0 vs 48.3 us) and above
//     M = 16 in e4m3 (41.3 vs 39.9 us at M = 16); smaller layers, split, above M = 16 (at M = 16 the
//     split lost on qkv and o, at M = 32 and 64 it won on qkv, o and down);
//   "0": never; "1": above M = 8; "2": at every M (read once).
//   SPENSE_MMASP_XS_SPLIT: "0": never split; "1": split at the same M as big layers; unset: as above
//     when SPENSE_MMASP_XS is unset, never when it is set.
static bool xs_wanted(int M, bool fp8, bool big) {
  static const int mode = env_int("SPENSE_MMASP_XS"), split = env_int("SPENSE_MMASP_XS_SPLIT");
  if (mode == 0 || (!big && split == 0)) return false;
  const int big_m = fp8 ? 17 : 9;  // the default's threshold for big layers
  const int min_m = mode == 2 ? 1 : mode > 0 ? 9 : big || split == 1 ? big_m : 17;
  return M >= min_m && (big || split == 1 || (mode < 0 && split < 0));
}
