// The register kernel with K split over CTAs (harness only: benchmarks/mmasp_bulk_check.cu, "reg_ks2", "reg_ks3",
// and at RT = 2 / 4 "ks2_rt", "ks3_rt"; run on the H200 on 2026-12-02, results wgsd_2026-12-02 folder ay: slower than
// the extension's kernel on all but two cells, e4m3 at M = 16 on 32B.o and 32B.down, docs/runtime.md §13, twelfth
// stop; moved here from the extension's sources, which never included it).
//
// Why: on the down shapes at M = 1 a row block is one CTA of 8 warps walking K = 12288 (8B) or 25600 (32B), 256 /
// 320 CTAs, 15.5 / 19.4 warps an SM against the 24 that fit; a warp walks 7 (8B) or 13 (32B) rounds one after the
// other (results wgsd_2026-12-02/at: 13 us of a CTA's 14 on 8B.down).  Split the row block's steps over KS CTAs of
// fewer warps and each warp walks 1/KS as many rounds, with more warps in flight an SM (8B.down at KS = 3 and 4
// warps: 768 CTAs, 23.3 warps an SM, one wave at 6 CTAs of 4 warps).
//
// The row block's KS x W warps take its steps in turn (warp g = ks W + w takes steps g, g + KS W, ...), each round
// asks for the warp's next one into L2 before its MMAs (as EARLY & 2 in spense_mmasp_reg.cuh), and every CTA sums
// its warps in warp order into its slice of `part` ([row blocks][KS][RT*16 rows][NT*8 tokens], fp32).  The last CTA
// of a row block to finish (a counter per row block, `count`, which it sets back to 0 for the next launch) adds
// the KS slices in ks order and stores the outputs: the same bits on every run (not those of KS = 1: the warps
// take other steps).
#pragma once
#include "spense_mmasp_reg.cuh"

// U: K steps per warp and round (REG_U; RT = 4 takes 2, so that it builds without spills).  RT > 1 is bound to 2 CTAs
// of 8 warps a SM: 126-128 registers, no spills, at RT = 2 (U = 4) and RT = 4 (U = 2), NT = 1 and 2 (unbounded: 136-144)
template <int RT, int NT, int FP8, int XM, int U = REG_U>
__global__ void __launch_bounds__(DET_W256 * 32, (FP8 && RT == 1 && NT == 1) ? 3 : RT > 1 ? 2 : 1)
spense_mmasp_ks_kernel(
    const uint4* __restrict__ sv, const uint32_t* __restrict__ sm, const uint4* __restrict__ dv,
    const __nv_bfloat16* __restrict__ x, const uint4* __restrict__ xf, int ldx, int M, int kx,
    const int* __restrict__ sblk, const int* __restrict__ dblk,
    const int* __restrict__ out_row, const float* __restrict__ wscale,
    __nv_bfloat16* __restrict__ y, int ldy, int Bs, int Bd, int Ss, int SdA, int SdB, int pdl,
    float* __restrict__ part, unsigned* __restrict__ count) {
  constexpr int ROWS = RT * 16;
  constexpr int SLICE = ROWS * NT * 8;
  using St = RegSteps<NT, FP8, U, XM, 2>;
  constexpr int VS = St::VS, VD = St::VD, NVS = St::NVS, NVD = St::NVD, XE = St::XE, DS = St::DS, DD = St::DD;
  __shared__ float red[DET_W256 * SLICE];
  __shared__ int is_last;
  const int W = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (W > DET_W256) __trap();
  const int bi = blockIdx.x, ks = blockIdx.y, KS = gridDim.y;
  const int b = bi < Bd ? Bs + bi : bi - Bd;
  const int G = KS * W, g = ks * W + warp;  // the row block's warps, and this one among them

  float acc[RT][NT][4];
  zero_acc<RT, NT>(acc);
  int nsp, nde;
  const uint4* dbase;
  row_block_steps<RT, VD>(b, Bs, Ss, SdA, SdB, dv, nsp, nde, dbase);
  const uint4* vbase = sv + (size_t)b * RT * Ss * VS;
  const uint32_t* mbase = sm + (size_t)b * RT * Ss * 32;
  uint4 va[U][RT][NVS];
  uint32_t me[U][RT];
  int xb[U] = {};
  // weights do not depend on the kernel before: the first round goes out before the wait for x and the row reads
  if (g < nsp) load_sparse_round<RT, U, NVS, VS>(va, me, xb, vbase, mbase, Ss, nsp, g, G, sblk, lane);
  else if (nde) prefetch_dense_round<RT, U, NVD, VD>(dbase, nde, g, G, lane);
  const RowOut pre = first_row_out<RT, NT, FP8>(b, out_row, wscale, M);
  if (pdl) pdl_wait();

  for (int s0 = g; s0 < nsp; s0 += G * U) {
    if (s0 != g) load_sparse_round<RT, U, NVS, VS>(va, me, xb, vbase, mbase, Ss, nsp, s0, G, sblk, lane);
    if (s0 + G * U < nsp) prefetch_sparse_round<RT, U, NVS, VS>(vbase, mbase, Ss, nsp, s0 + G * U, G, lane);
    else if (nde) prefetch_dense_round<RT, U, NVD, VD>(dbase, nde, g, G, lane);
    sparse_round_math<RT, NT, FP8, U, NVS, XE, DS, XM>(acc, va, me, xb, s0, G, nsp, xf, x, ldx, M, kx, lane);
  }
  for (int s0 = g; s0 < nde; s0 += G * U)
    dense_round<RT, NT, FP8, U, NVD, VD, XE, DD, XM, true>(acc, dbase, nde, s0, G, dblk, xf, x, ldx, M, kx, lane);
  if (pdl) pdl_trigger();

  // this CTA's warps in warp order into its slice of part
  float* mine = red + warp * SLICE;
  each_partial<RT, NT>(acc, lane, [&](int i, float v) { mine[i] = v; });
  __syncthreads();
  float* slice = part + ((size_t)bi * KS + ks) * SLICE;
  for (int i = threadIdx.x; i < SLICE; i += blockDim.x) {
    float v = 0.f;
    for (int w = 0; w < W; ++w) v += red[w * SLICE + i];
    slice[i] = v;
  }
  __threadfence();  // the slice is visible GPU-wide before this CTA is counted
  __syncthreads();
  if (threadIdx.x == 0) is_last = atomicAdd(count + bi, 1u) == (unsigned)(KS - 1);
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  // the last CTA of the row block: the KS slices in ks order (read through L2: other CTAs wrote them)
  const float* all = part + (size_t)bi * KS * SLICE;
  store_rows_of<RT, NT, FP8>([&](int i) {
    float v = 0.f;
    for (int k = 0; k < KS; ++k) v += __ldcg(all + (size_t)k * SLICE + i);
    return v;
  }, b, out_row, wscale, y, ldy, M, pre);
  if (threadIdx.x == 0) count[bi] = 0u;  // ready for the next launch (and a CUDA graph's next replay)
}
