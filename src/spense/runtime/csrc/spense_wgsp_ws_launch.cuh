// The host side of the warp-specialized wgmma.sp GEMM (spense_wgsp_ws.cuh): its TMA tensor maps, the SM count, the
// choice of CTA size, and the launchers of its prefill forms (plain, clusters of two, persistent) and of the kernel
// the decode forms share (run_wgsp_ws; spense_wgsd.cuh, spense_wgsd_launch.cuh).
#pragma once
#include <algorithm>

#include "spense_wgsp_ws.cuh"

// a tiled TMA tensor map of `rank` dims (dims[0] contiguous; strides in bytes of dims 1..), boxes of `box`;
// false where the driver has no encoder or refuses the tensor
inline bool wgsp_tmap(CUtensorMap* map, CUtensorMapDataType type, int rank, const void* base, const cuuint64_t* dims,
                      const cuuint64_t* strides, const cuuint32_t* box, CUtensorMapSwizzle swizzle) {
  using Encode = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                              const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                              CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  static Encode encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found;
#if CUDART_VERSION >= 12050
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                                           &found);
#else
    const cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &fn, cudaEnableDefault, &found);
#endif
    return (e == cudaSuccess && found == cudaDriverEntryPointSuccess) ? reinterpret_cast<Encode>(fn) : nullptr;
  }();
  const cuuint32_t step[3] = {1, 1, 1};
  return encode && encode(map, type, rank, const_cast<void*>(base), dims, strides, box, step,
                          CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}
// one launch's maps (WgMaps; a region with no rows, or fewer steps than a box holds, keeps a zeroed map, never
// read); fp8: the e4m3 layout (a row tile's sparse step 512 B of values, its dense step one row of 1 KB);
// steps: K steps per weight box (2: the stream-K pair form's boxes)
inline bool wgsp_maps(WgMaps* w, int tiles, int nt, const uint4* sv, const uint32_t* sm, const uint4* dv,
                      const __nv_bfloat16* x, int ldx, int K, int M, int Bs, int Bd, int Ss, int SdA, int SdB,
                      bool fp8 = false, int steps = 1) {
  *w = WgMaps{};
  const CUtensorMapDataType U32 = CU_TENSOR_MAP_DATA_TYPE_UINT32;
  const CUtensorMapSwizzle NONE = CU_TENSOR_MAP_SWIZZLE_NONE;
  const cuuint64_t xd[2] = {(cuuint64_t)K, (cuuint64_t)M}, xs[1] = {(cuuint64_t)ldx * 2};
  const cuuint32_t xb[2] = {64, (cuuint32_t)nt};
  if (!wgsp_tmap(&w->x, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, x, xd, xs, xb, CU_TENSOR_MAP_SWIZZLE_128B)) return false;
  const cuuint64_t vw = fp8 ? 128 : 256, dr = fp8 ? 1 : 2;  // words of a tile's sparse step; dense rows per step
  const cuuint32_t st = (cuuint32_t)steps, vb[3] = {(cuuint32_t)vw, st, (cuuint32_t)tiles},
                   mb[3] = {32, st, (cuuint32_t)tiles}, db[3] = {256, (cuuint32_t)dr * st, (cuuint32_t)tiles};
  if (Bs > 0 && Ss >= steps) {
    const cuuint64_t vd[3] = {vw, (cuuint64_t)Ss, (cuuint64_t)Bs}, vs[2] = {4 * vw, (cuuint64_t)Ss * 4 * vw};
    const cuuint64_t md[3] = {32, (cuuint64_t)Ss, (cuuint64_t)Bs}, ms[2] = {128, (cuuint64_t)Ss * 128};
    if (!wgsp_tmap(&w->v, U32, 3, sv, vd, vs, vb, NONE) || !wgsp_tmap(&w->m, U32, 3, sm, md, ms, mb, NONE))
      return false;
  }
  if (Bs > 0 && SdA >= steps) {
    const cuuint64_t d[3] = {256, dr * SdA, (cuuint64_t)Bs}, str[2] = {1024, dr * SdA * 1024};
    if (!wgsp_tmap(&w->da, U32, 3, dv, d, str, db, NONE)) return false;
  }
  if (Bd > 0 && SdB >= steps) {
    const cuuint64_t d[3] = {256, dr * SdB, (cuuint64_t)Bd}, str[2] = {1024, dr * SdB * 1024};
    if (!wgsp_tmap(&w->db, U32, 3, dv + (size_t)Bs * SdA * 64 * dr, d, str, db, NONE)) return false;
  }
  return true;
}

// the SM count of the current device (cached for devices below 32); 0 where unknown
inline int ws_sm_count() {
  static int sms[32] = {};
  int dev = 0, n = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (dev < 32 && sms[dev] > 0) return sms[dev];
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) return 0;
  if (dev < 32) sms[dev] = n;
  return n;
}

// Whether CTAs of 8 row tiles finish sooner than CTAs of 16 for M tokens and `tiles` row tiles: the grid of
// 16 fills ceil(n / SMs) waves of n CTAs, the grid of 8 ceil(2 n / SMs) waves of CTAs that take 0.63 of the
// time (in the harness a CTA of 8 moved 0.79 of the work per second of a CTA of 16: e2e v16, M = 2048).  So
// the smaller CTAs serve small grids (M = 512 on 8B.o: 64 CTAs of 16 leave half the SMs idle).  Chosen from
// those harness ratios; not yet measured per layer.
constexpr long WS_HALF_CTA_PCT = 63;  // a CTA of 8 row tiles takes this per cent of the time of one of 16
inline bool ws_half_ctas_win(int M, int tiles, int cl) {
  const long n_sm = ws_sm_count();
  if (n_sm == 0) return false;
  const long ntok = ((long)(M + WG_N - 1) / WG_N + cl - 1) / cl * cl, n = ntok * (tiles / 16);
  const long waves16 = (n + n_sm - 1) / n_sm, waves8 = (2 * n + n_sm - 1) / n_sm;
  return WS_HALF_CTA_PCT * waves8 < 100 * waves16;
}

// launches spense_wgsp_ws_kernel<S, TPC, CL, NT, KS> on maps built by wgsp_maps (boxes of 8 TPC / CL row tiles
// and NT tokens); a cluster launch where CL or KS > 1; pdl: launched dependent (programmatic stream
// serialization; the kernel never triggers early, so the one after it launches at its exit); tb, nrt: the row
// tiles [tb, tb + nrt) only (nrt < 0: all from tb; not in the persistent form)
template <int S, int TPC, int CL, int NT, int KS, bool PS = false, bool SSA = false>
inline cudaError_t run_wgsp_ws(cudaStream_t stream, const WgMaps& maps, int M, const int* sblk, const int* dblk,
                               const int* out_row, __nv_bfloat16* y, int ldy, int Bs, int Bd, int Ss, int SdA,
                               int SdB, bool pdl = false, int tb = 0, int nrt = -1) {
  constexpr int TILES = 8 * TPC, SMEM = ws_smem(S, TPC, NT, PS), CLUSTER = CL * KS;
  if (ws_sparse_ring(S, NT) && (SdA > 0 || Bd > 0)) return cudaErrorInvalidValue;  // its slots hold no dense step
  auto kernel = spense_wgsp_ws_kernel<S, TPC, CL, NT, KS, PS, SSA>;
  static unsigned set_on = 0;  // the devices (below 32) this instantiation's shared-memory limit was raised on
  const cudaError_t e = wg_smem_limit(kernel, SMEM, set_on);
  if (e != cudaSuccess) return e;
  const unsigned ntok = (unsigned)((M + NT - 1) / NT), rb = (unsigned)((nrt < 0 ? Bs + Bd - tb : nrt) / TILES);
  const unsigned n_sm = (unsigned)ws_sm_count();
  if (PS && n_sm == 0) return cudaErrorInvalidValue;
  const dim3 grid = PS ? dim3(std::min(ntok * rb, n_sm)) : dim3(KS > 1 ? KS : (ntok + CL - 1) / CL * CL, rb);
  return launch_ex_cl(kernel, grid, dim3(384), SMEM, stream, pdl, CLUSTER, maps, M, sblk, dblk, out_row, y, ldy, Bs,
                      Ss, SdA, SdB, Bd, PS ? 0 : tb);
}

// The tail split (launch_wgsp_ws's TAIL; SPENSE_WGSP_TAIL, on by default, measured: spense.runtime.wgsp.wgsp_tail):
// where a layer of sparse rows only (Bd = 0) fills whole waves of the SMs with CTAs of 16 row tiles but for a last,
// part-filled one, its last row blocks go to a second launch of CTAs of 8 row tiles, which take about 0.63 of the
// time (WS_HALF_CTA_PCT) and so fill that wave twice as densely: 32B.down at M = 2048 is 320 CTAs of 16 on 132 SMs,
// 2.42 waves; its last 4 row blocks as 128 CTAs of 8 make it 256 + 128.  The number of row tiles the second launch
// takes (a multiple of 16; 0: no split).
inline int ws_tail_rows(int M, int Bs, int Bd) {
  const long n_sm = ws_sm_count();
  if (n_sm == 0 || Bd != 0 || Bs % 16 != 0) return 0;
  const long ntok = (M + WG_N - 1) / WG_N, n = ntok * (Bs / 16), rem = n % n_sm;
  if (n < n_sm || rem == 0) return 0;
  const long tr = (rem + ntok - 1) / ntok;  // the row blocks of 16 that hold the last wave's CTAs
  const long waves8 = (2 * tr * ntok + n_sm - 1) / n_sm;  // ... in waves of CTAs of 8
  return tr < Bs / 16 && WS_HALF_CTA_PCT * waves8 < 100 ? (int)(16 * tr) : 0;
}
// the maps of a launch of CTAs of `tiles` row tiles and nt tokens (wg_fits, K's steps, wgsp_maps); false where it
// does not apply
inline bool ws_launch_maps(WgMaps* maps, int tiles, int cl, const uint4* sv, const uint32_t* sm, const uint4* dv,
                           const __nv_bfloat16* x, int ldx, int K, int M, int Bs, int Bd, int Ss, int SdA, int SdB,
                           int nt = WG_N) {
  return wg_fits(tiles, sv, sm, dv, x, ldx, K, M, Bs, Bd) && K / 64 <= WS_MAXQ &&
         wgsp_maps(maps, tiles / cl, nt, sv, sm, dv, x, ldx, K, M, Bs, Bd, Ss, SdA, SdB);
}

// y (M x ldy) = the Spense layer applied to x, as launch_wgsp, with 8 TPC row tiles per CTA and S ring
// slots; TPC = 0 takes 2 where the row tiles of each kind come in sixteens and the grid is large enough
// (ws_half_ctas_win), else 1.  cudaErrorInvalidValue where it does not apply (row tiles of each kind not in
// eights, K not a multiple of 64 or above 65536, x, its rows or the weights not 16-byte aligned, no tensor
// map): the caller falls back.  CL = 2: clusters of two CTAs on neighbouring token tiles sharing A (token
// tiles padded to even; measured no faster: off).  PS: the persistent form (at most one CTA per SM, walking the
// tiles; measured slower: off, docs/runtime.md section 11).  TAIL (with TPC = 0): the tail split (ws_tail_rows).
// NT (with TPC = 1, CL = 1, not PS): tokens per CTA, 128 or 256 (m64n256 wgmmas: each step's A box serves twice the
// tokens, fewer shared-memory bytes per MMA; benchmarks/prefill_smem_model.py; measured 0.79-0.89x of NT = 128).
// SSA (CL = 1; persistent too): the trial form reading A from shared memory (spense_wgsp_ws_kernel), on weights in
// the SS layout (benchmarks/ss_layout.h)
template <int S = WS_STAGES, int TPC = 0, int CL = 1, bool PS = false, bool TAIL = false, int NT = WG_N,
          bool SSA = false>
inline cudaError_t launch_wgsp_ws(cudaStream_t stream, const uint4* sv, const uint32_t* sm, const uint4* dv,
                                  const __nv_bfloat16* x, int ldx, int K, int M, const int* sblk, const int* dblk,
                                  const int* out_row, __nv_bfloat16* y, int ldy, int Bs, int Bd, int Ss, int SdA,
                                  int SdB) {
  if constexpr (TPC == 0) {
    static_assert(NT == WG_N, "the launcher's own CTA size: 128 tokens");
    if constexpr (TAIL && CL == 1 && !PS) {
      const int tail = ws_tail_rows(M, Bs, Bd);
      WgMaps m16, m8;
      if (tail > 0 && ws_launch_maps(&m16, 16, 1, sv, sm, dv, x, ldx, K, M, Bs, Bd, Ss, SdA, SdB) &&
          ws_launch_maps(&m8, 8, 1, sv, sm, dv, x, ldx, K, M, Bs, Bd, Ss, SdA, SdB)) {
        const cudaError_t e = run_wgsp_ws<S, 2, 1, WG_N, 1, false, SSA>(stream, m16, M, sblk, dblk, out_row, y,
                                                                         ldy, Bs, Bd, Ss, SdA, SdB, false, 0,
                                                                         Bs - tail);
        if (e != cudaSuccess) return e;
        return run_wgsp_ws<S, 1, 1, WG_N, 1, false, SSA>(stream, m8, M, sblk, dblk, out_row, y, ldy, Bs, Bd, Ss,
                                                         SdA, SdB, false, Bs - tail, tail);
      }
    }
    if (Bs % 16 == 0 && Bd % 16 == 0 && !ws_half_ctas_win(M, Bs + Bd, CL))
      return launch_wgsp_ws<S, 2, CL, PS, false, WG_N, SSA>(stream, sv, sm, dv, x, ldx, K, M, sblk, dblk, out_row,
                                                             y, ldy, Bs, Bd, Ss, SdA, SdB);
    return launch_wgsp_ws<S, 1, CL, PS, false, WG_N, SSA>(stream, sv, sm, dv, x, ldx, K, M, sblk, dblk, out_row, y,
                                                           ldy, Bs, Bd, Ss, SdA, SdB);
  } else {
    static_assert(NT == WG_N || (NT == 256 && TPC == 1 && CL == 1 && !PS), "256 tokens: CTAs of 8 row tiles only");
    WgMaps maps;
    if (!ws_launch_maps(&maps, 8 * TPC, CL, sv, sm, dv, x, ldx, K, M, Bs, Bd, Ss, SdA, SdB, NT))
      return cudaErrorInvalidValue;
    return run_wgsp_ws<S, TPC, CL, NT, 1, PS, SSA>(stream, maps, M, sblk, dblk, out_row, y, ldy, Bs, Bd, Ss, SdA, SdB);
  }
}
