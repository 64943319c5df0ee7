// The shared-x variant of the Spense decode kernel (see spense_mmasp.cu for the layout), for M > 8.
//
// The register kernel gives each CTA one 16-row tile and lets its warps split the K steps, so every
// CTA reads all of x, and every warp reads x once per MMA through L1/L2: at M = 32 that is NT = 4
// fragments of 512 bytes per 32 K against 576 bytes of weights (values + metadata), and the kernel is
// bound by x traffic, not by the weight stream (1.3-1.7 TB/s at M = 32 on the H200,
// benchmarks/results/mmasp_bulk_2026-11-30/quick_c54974e).
//
// Here the W warps of a CTA each own a whole 16-row tile (W tiles per CTA, RT = 1) and walk the same
// K steps together: the x fragments of U steps (2 x NT x 512 bytes per step, contiguous in xf) are
// copied once per CTA into shared memory (cp.async, two buffers: round r+1's x arrives while round r
// is computed), and every warp reads its B fragments from there.  x then crosses L2 once per W tiles
// instead of once per tile and warp.  Each warp keeps its tile's sums to the end, so there is no
// cross-warp reduction: it writes y[tok, out_row[row]] itself.
//
// Row blocks [0, Bs) (sparse steps, then SdA dense steps) fill the first ceil(Bs / W) CTAs, the dense
// row blocks [Bs, Bs + Bd) (SdB dense steps) the next ceil(Bd / W): the steps of a CTA are the same for
// all its warps, which the shared x needs.  A warp past the last block of its kind still copies x and
// meets every barrier, but loads and computes nothing.
//
// Split K (gridDim.y = KS > 1, for layers with too few row tiles to fill the GPU): CTA (c, z) walks the
// rounds [z R / KS, (z + 1) R / KS) of its tiles and adds its sums into ws (fp32 [M][ldw], zeroed by
// the caller, with one zeroed counter per CTA column after it); the split that finishes last (its
// counter reaches KS - 1) reads the totals back and writes y.
#pragma once
#include "spense_mmasp_common.cuh"

constexpr int XS_U = 4;  // K steps per round (and per x copy)

template <int NT>
constexpr int xs_smem_bytes() { return 2 * XS_U * 2 * NT * 32 * 16; }  // two buffers of U steps of x

// CLAMP (SPENSE_MMASP_XS_CLAMP): every step of a round's weights loaded, a step past the row block's last loading the
// last one again (its registers unused: the round's math skips it), as the register kernel's load_sparse_round does,
// and at most 128 registers a thread (two CTAs of 8 warps a SM).  Without it ptxas predicates the steps' loads (no
// branch among them) and gives the bf16 kernel 142 registers; with it 128, no spills.  What it may change is occupancy.
// SSL: the weights in the SS layout, as the register kernel's SSL (harness only; measured 0.91-1.00x)
template <int NT, bool FP8, bool CLAMP = false, bool SSL = false>
__global__ void __launch_bounds__(256, CLAMP ? 2 : 0) spense_mmasp_xs_kernel(
    const uint4* __restrict__ sv, const uint32_t* __restrict__ sm, const uint4* __restrict__ dv,
    const uint4* __restrict__ xf, const int* __restrict__ sblk, const int* __restrict__ dblk,
    const int* __restrict__ out_row, const float* __restrict__ wscale, __nv_bfloat16* __restrict__ y, int ldy,
    int M, int Bs, int Bd, int Ss, int SdA, int SdB, int pdl, float* __restrict__ ws, unsigned* __restrict__ cnt,
    int ldw) {
  constexpr int U = XS_U;
  constexpr int VS = FP8 ? 32 : 64, VD = FP8 ? 64 : 128;  // uint4 per (tile, sparse / dense step)
  constexpr int NVS = FP8 ? 1 : 2, NVD = FP8 ? 2 : 4;    // uint4 per lane per sparse / dense step
  constexpr int XSTEP = 2 * NT * 32;                      // uint4 of x fragments per 64-K step
  static_assert(!SSL || !FP8, "the SS layout holds bf16 weights");
  extern __shared__ uint4 xs[];                           // [2 buffers][U steps][XSTEP]
  const int W = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int csp = (Bs + W - 1) / W;  // CTAs of sparse row blocks
  const bool sp_cta = (int)blockIdx.x < csp;
  const int b = sp_cta ? (int)blockIdx.x * W + warp : Bs + ((int)blockIdx.x - csp) * W + warp;
  const bool active = b < (sp_cta ? Bs : Bs + Bd);
  const int nsp = sp_cta ? Ss : 0, nde = sp_cta ? SdA : SdB;
  const uint4* vbase = sv + (size_t)b * Ss * VS;
  const uint32_t* mbase = sm + (size_t)b * Ss * 32;
  const uint4* dbase = sp_cta ? dv + (size_t)b * SdA * VD
                              : dv + ((size_t)Bs * SdA + (size_t)(b - Bs) * SdB) * VD;
  const int rs = (nsp + U - 1) / U, rounds = rs + (nde + U - 1) / U;
  const int KS = gridDim.y, r0 = (int)blockIdx.y * rounds / KS, r1 = ((int)blockIdx.y + 1) * rounds / KS;

  // x fragments of round r's steps into buffer r & 1 (one commit group)
  auto copy_x = [&](int r) {
    uint4* dst = xs + (size_t)(r & 1) * U * XSTEP;
    const bool sparse = r < rs;
    const int s0 = sparse ? r * U : (r - rs) * U, n = sparse ? nsp : nde;
    const int* tab = sparse ? sblk : dblk;
    for (int i = threadIdx.x; i < U * XSTEP; i += blockDim.x) {
      const int u = i / XSTEP, s = s0 + u;
      if (s < n) cp_async16(dst + i, xf + (size_t)(__ldg(tab + s) >> 5) * NT * 32 + (i - u * XSTEP));
    }
    cp_async_commit();
  };

  // after a round's weight loads are issued: wait for its x, then start the next round's copy
  auto next_x = [&](int r) {
    cp_async_wait_all();
    __syncthreads();  // round r's x is in; every warp is done with buffer (r + 1) & 1
    if (r + 1 < r1) copy_x(r + 1);
  };
  float acc[1][NT][4];
  zero_acc<1, NT>(acc);
  if (pdl) pdl_wait();  // x (and so xf) is written by the kernel before this one
  if (r0 < r1) copy_x(r0);
  for (int r = r0; r < r1; ++r) {
    const uint4* xr = xs + (size_t)(r & 1) * U * XSTEP;
    if (r < rs) {
      const int s0 = r * U;
      uint4 va[U][1][NVS];
      uint32_t me[U][1];
      if (active) {
#pragma unroll
        for (int u = 0; u < U; ++u)
          if (CLAMP || s0 + u < nsp) {  // (a sparse round has nsp >= 1)
            const int s = CLAMP ? min(s0 + u, nsp - 1) : s0 + u;
            const uint4* p = vbase + (size_t)s * VS + lane;
#pragma unroll
            for (int v = 0; v < NVS; ++v)
              va[u][0][v] = SSL ? ldg_ss_frag<NVS>(p - lane, v, lane) : ldg_stream(p + 32 * v);
            me[u][0] = ldg_stream32(mbase + (size_t)s * 32 + lane);
          }
      }
      next_x(r);
      if (active) {
#pragma unroll
        for (int u = 0; u < U; ++u)
          if (s0 + u < nsp)
            sparse_step<1, NT, FP8, NVS, X_SMEM>(acc, va[u], me[u], u * 64, xr, nullptr, 0, M, 0, lane);
      }
    } else {
      const int s0 = (r - rs) * U;
      uint4 da[U][1][NVD];
      if (active) {
#pragma unroll
        for (int u = 0; u < U; ++u)
          if (CLAMP || s0 + u < nde) {  // (a dense round has nde >= 1)
            const uint4* p = dbase + (size_t)(CLAMP ? min(s0 + u, nde - 1) : s0 + u) * VD + lane;
#pragma unroll
            for (int j = 0; j < NVD; ++j)
              da[u][0][j] = SSL ? ldg_ss_frag<NVD>(p - lane, j, lane) : ldg_stream(p + 32 * j);
          }
      }
      next_x(r);
      if (active) {
#pragma unroll
        for (int u = 0; u < U; ++u)
          if (s0 + u < nde) dense_step<1, NT, FP8, NVD, X_SMEM>(acc, da[u], u * 64, xr, nullptr, 0, M, 0, lane);
      }
    }
  }
  // f(sum, tok, o) for each of this warp's outputs: acc[0][n] = rows g, g + 8 x tokens 8n + 2t,
  // 8n + 2t + 1 (the m16n8 C fragment), written to column o = out_row[row] of token row tok
  auto each_out = [&](auto&& f) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int row = g + (q >> 1) * 8, tok = n * 8 + 2 * t + (q & 1);
        const int o = __ldg(out_row + (size_t)b * 16 + row);
        if (tok < M && o >= 0) f(acc[0][n][q], tok, o);
      }
  };
  if (KS > 1) {  // partial sums into ws; the last split of this CTA column takes the totals back
    __shared__ unsigned last;
    if (active) each_out([&](float& v, int tok, int o) { atomicAdd(ws + (size_t)tok * ldw + o, v); });
    __syncthreads();  // every warp's sums are added; thread 0 releases them with the counter
    if (threadIdx.x == 0) {
      __threadfence();
      last = atomicAdd(cnt + blockIdx.x, 1u) == (unsigned)(KS - 1);
      __threadfence();  // the last split: the others' sums are visible from here
    }
    __syncthreads();
    if (!last) return;
    if (active) each_out([&](float& v, int tok, int o) { v = __ldcg(ws + (size_t)tok * ldw + o); });
  }
  if (!active) return;
  each_out([&](float& v, int tok, int o) {
    y[(size_t)tok * ldy + o] = __float2bfloat16(FP8 ? v * __ldg(wscale + o) : v);
  });
}

// the K steps one CTA walks: a CTA of sparse row blocks Ss sparse + SdA dense steps, one of dense row
// blocks SdB (axis rows: both K / 64, so their sum would double the count and leave splits empty)
inline int xs_walk(int Ss, int SdA, int SdB) { return Ss + SdA > SdB ? Ss + SdA : SdB; }
// split count for a grid of `ctas` CTAs: enough splits for two CTAs per SM on 132 SMs, at most 8 and
// at most one split per round of 4 of the `steps` one CTA walks (xs_walk)
inline int xs_splits(int ctas, int steps) {
  int ks = (264 + ctas - 1) / ctas;
  ks = ks < 1 ? 1 : ks > 8 ? 8 : ks;
  const int rounds = (steps + XS_U - 1) / XS_U;
  return ks > rounds ? (rounds > 0 ? rounds : 1) : ks;
}

// one launch: ceil(Bs / warps) + ceil(Bd / warps) CTAs of 32 * warps threads (warps <= 8), times ks K
// splits (ks > 1: ws = zeroed fp32 [M][ldw] followed by one zeroed counter per CTA column); clamp: the CLAMP kernel,
// built at NT = 2 only (M = 9-16, where the default takes this kernel; elsewhere clamp changes nothing; when to clamp:
// spense_mmasp.cu, xs_clamp); SSL: the weights in the SS layout (bf16; harness only, benchmarks/mmasp_ss_check.cu)
template <int NT, bool FP8, bool SSL = false>
cudaError_t launch_xs(int warps, cudaStream_t stream, bool pdl, const uint4* sv, const uint32_t* sm,
                      const uint4* dv, const uint4* xf, const int* sblk, const int* dblk, const int* out_row,
                      const float* wscale, __nv_bfloat16* y, int ldy, int M, int Bs, int Bd, int Ss, int SdA,
                      int SdB, int ks = 1, float* ws = nullptr, int ldw = 0, bool clamp = false) {
  if (warps < 1 || warps > 8) return cudaErrorInvalidValue;
  auto kernel = spense_mmasp_xs_kernel<NT, FP8, false, SSL>;
  if constexpr (NT == 2) {
    if (clamp) kernel = spense_mmasp_xs_kernel<NT, FP8, true, SSL>;
  }
  const int smem = xs_smem_bytes<NT>();
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
  }
  if (ks < 1 || (ks > 1 && ws == nullptr)) return cudaErrorInvalidValue;
  const unsigned ctas = (unsigned)((Bs + warps - 1) / warps + (Bd + warps - 1) / warps);
  const dim3 grid(ctas, (unsigned)ks), block((unsigned)(32 * warps));
  if (ctas == 0) return cudaSuccess;
  unsigned* cnt = ks > 1 ? reinterpret_cast<unsigned*>(ws + (size_t)M * ldw) : nullptr;
  return launch_ex(kernel, grid, block, (size_t)smem, stream, pdl, sv, sm, dv, xf, sblk, dblk, out_row, wscale, y,
                   ldy, M, Bs, Bd, Ss, SdA, SdB, (int)pdl, ws, cnt, ldw);
}
