// The decode forms' launchers: the cluster form's; the stream-K form's grid, shared memory and ring slots, its
// launch on tiles of 16 / 32 / 64 tokens, and the variant chosen at run time (SPENSE_WGSD_EXP).  Included at the
// end of spense_wgsd.cuh.
#pragma once
#include <tuple>

#include "spense_wgsd.cuh"

// The K split of the cluster form for `blocks` CTAs of 8 row tiles.  Measured on the Qwen3 shapes at M = 1-64
// (benchmarks/results/wgsd_2026-12-01/b_81c10c2, 8 ring slots): a K split of 2 was fastest wherever the row
// blocks leave SMs idle (1.1-1.3x over no split; 4 and 8 slower but on one shape), none where they do not.
inline int wsd_split(int blocks) {
  const int n_sm = ws_sm_count();
  return n_sm > 0 && blocks < n_sm ? 2 : 1;
}

// y = the layer on M <= 64 tokens through the cluster form (8 row tiles and 64 tokens per CTA, the K steps split
// over a cluster of KS CTAs; KS = 0: wsd_split); cudaErrorInvalidValue where it does not apply (M > 64, or as
// launch_wgsp_ws).  pdl: launched dependent (run_wgsp_ws)
template <int S = WSD_STAGES, int KS = 0>
inline cudaError_t launch_wgsd(cudaStream_t stream, const uint4* sv, const uint32_t* sm, const uint4* dv,
                               const __nv_bfloat16* x, int ldx, int K, int M, const int* sblk, const int* dblk,
                               const int* out_row, __nv_bfloat16* y, int ldy, int Bs, int Bd, int Ss, int SdA,
                               int SdB, bool pdl = false) {
  if (M > 64 || !wg_fits(8, sv, sm, dv, x, ldx, K, M, Bs, Bd) || K / 64 > WS_MAXQ) return cudaErrorInvalidValue;
  WgMaps maps;
  if (!wgsp_maps(&maps, 8, wsd_xrows(M), sv, sm, dv, x, ldx, K, M, Bs, Bd, Ss, SdA, SdB)) return cudaErrorInvalidValue;
  const auto run = [&](auto ks) {
    return run_wgsp_ws<S, 1, 1, 64, decltype(ks)::value>(stream, maps, M, sblk, dblk, out_row, y, ldy, Bs, Bd, Ss,
                                                           SdA, SdB, pdl);
  };
  switch (KS > 0 ? KS : wsd_split((Bs + Bd) / 8)) {
    case 1: return run(std::integral_constant<int, 1>{});
    case 2: return run(std::integral_constant<int, 2>{});
    case 4: return run(std::integral_constant<int, 4>{});
    default: return run(std::integral_constant<int, 8>{});
  }
}

// the stream-K form's grid: one CTA per SM, fewer where the layer is small (at least 128 units, eight dense
// steps, per CTA); `want` CTAs where given, as long as each keeps 16 units (a step of every kind starts in them)
inline int wsd_sk_grid(const SkGeo& geo, int want = 0) {
  const long long n_sm = ws_sm_count(), g = want > 0 ? want : (n_sm > 0 ? n_sm : 1LL);
  return (int)std::max(1LL, std::min(g, geo.T / (want > 0 ? 16 : 128)));
}
// bytes of shared memory of the stream-K kernel: the ring, its barriers, two column tables, a flag (pair: slots
// of two steps, variant bit 512)
constexpr int wsd_sk_smem(int S, int nt = 64, bool fp8 = false, bool pair = false) {
  return S * (pair ? 2 : 1) * wsd_slot(nt, fp8) + 2 * S * 8 + 8 * WS_MAXQ + 1024 + 16;
}
// ring slots of the stream-K kernel with tiles of nt tokens: as many as fit in 227 KB of shared memory (bf16
// at 64 tokens: WSD_STAGES, as measured); more slots, more weight bytes in flight per SM
constexpr int wsd_stages(int nt, bool fp8, bool pair = false) {
  return nt == 64 && !fp8 ? WSD_STAGES
                          : (227 * 1024 - wsd_sk_smem(0)) / ((pair ? 2 : 1) * wsd_slot(nt, fp8) + 16);
}
// the token tile of the stream-K form for M tokens: the smallest of 16, 32, 64 that holds them; 64 at every M
// where `tile64` (variant bit 16, or a variant that has no other tiles)
inline int wsd_nt(int M, bool tile64) { return tile64 || M > 32 ? 64 : M > 16 ? 32 : 16; }

// the clusters of k CTAs of `kernel` (384 threads, smem bytes of shared memory each) the device holds at once;
// -1 where the query fails (its error cleared)
template <typename Kern>
inline int wsd_max_clusters(Kern kernel, int smem, int k) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(k);
  cfg.blockDim = dim3(384);
  cfg.dynamicSmemBytes = smem;
  cudaLaunchAttribute at[1] = {cluster_x_attr(k)};
  cfg.attrs = at;
  cfg.numAttrs = 1;
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, (const void*)kernel, &cfg) != cudaSuccess) {
    (void)cudaGetLastError();
    return -1;
  }
  return n;
}

// y = the layer on M <= 64 tokens through the stream-K form (grid: CTAs wanted, 0 = one per SM; trace: as the
// kernel's); ws: at least 2 wsd_sk_grid WSD_PART floats, cnt: at least (Bs + Bd) / 8 ints, zeroed before the
// first launch (each launch leaves them zeroed).  FP8: e4m3 weights (the decode kernels' FP8 layout) and
// wscale, their per-output-row scales (float, N); null for bf16.
// cudaErrorInvalidValue where it does not apply (as launch_wgsd, ws / cnt too small, wscale not as FP8 says).
template <int S = WSD_STAGES, int EXP = 0, bool FP8 = false, int NT = 64>
inline cudaError_t launch_wgsd_sk(cudaStream_t stream, const uint4* sv, const uint32_t* sm, const uint4* dv,
                                  const __nv_bfloat16* x, int ldx, int K, int M, const int* sblk, const int* dblk,
                                  const int* out_row, __nv_bfloat16* y, int ldy, int Bs, int Bd, int Ss, int SdA,
                                  int SdB, float* ws, long long ws_floats, int* cnt, long long cnt_ints,
                                  int grid = 0, unsigned long long* trace = nullptr, bool pdl = false,
                                  const float* wscale = nullptr) {
  if (M > NT || !wg_fits(8, sv, sm, dv, x, ldx, K, M, Bs, Bd) || K / 64 > WS_MAXQ || FP8 != (wscale != nullptr))
    return cudaErrorInvalidValue;
  const SkGeo geo(Bs, Bd, Ss, SdA, SdB, 1, FP8);
  const int G = wsd_sk_grid(geo, grid);
  if (ws_floats < 2LL * G * WSD_PART || cnt_ints < (Bs + Bd) / 8) return cudaErrorInvalidValue;
  constexpr bool PAIR = (EXP & 512) != 0;
  WgMapsFor<EXP> maps{};
  if (!wgsp_maps(&maps, 8, wsd_xrows(M), sv, sm, dv, x, ldx, K, M, Bs, Bd, Ss, SdA, SdB, FP8))
    return cudaErrorInvalidValue;
  if constexpr (PAIR) {  // the same regions in boxes of two K steps (a run's pairs never reach past its part)
    WgMaps two;
    if (!wgsp_maps(&two, 8, wsd_xrows(M), sv, sm, dv, x, ldx, K, M, Bs, Bd, Ss, SdA, SdB, FP8, 2))
      return cudaErrorInvalidValue;
    maps.v2 = two.v;
    maps.m2 = two.m;
    maps.da2 = two.da;
    maps.db2 = two.db;
  }
  constexpr int SMEM = wsd_sk_smem(S, NT, FP8, PAIR);
  static_assert(SMEM <= 227 * 1024, "shared memory");
  auto kernel = spense_wgsd_sk_kernel<S, EXP, FP8, NT>;
  static unsigned set_on = 0;
  const cudaError_t e = wg_smem_limit(kernel, SMEM, set_on);
  if (e != cudaSuccess) return e;
  int k = 1;  // bit 8192: clusters of the k CTAs of each row block, where the split gives every block its own
  if constexpr ((EXP & 8192) != 0) {
    static int most[9] = {};  // per k: the clusters the device holds at once (asked once; -1: not known)
    k = wsd_cluster_k(SkGeo(Bs, Bd, Ss, SdA, SdB, G, FP8));
    if (k > 0 && most[k] == 0) most[k] = wsd_max_clusters(kernel, SMEM, k);
    if (k == 0 || most[k] < G / k)  // the workspace's sums there, also where a second wave of clusters would
      // double the launch (the kernel without the bit)
      return launch_wgsd_sk<S, EXP & ~8192, FP8, NT>(stream, sv, sm, dv, x, ldx, K, M, sblk, dblk, out_row, y, ldy,
                                                     Bs, Bd, Ss, SdA, SdB, ws, ws_floats, cnt, cnt_ints, grid, trace,
                                                     pdl, wscale);
  }
  // pdl: launched dependent (programmatic stream serialization); only with EXP bit 2 or 32768, whose producer
  // waits for the kernel before ahead of its first x load
  const bool dep = pdl && (EXP & (2 | 32768)) != 0;
  return launch_ex_cl(kernel, dim3(G), dim3(384), SMEM, stream, dep, k, maps, M, sblk, dblk, out_row, y, ldy, Bs, Bd,
                      Ss, SdA, SdB, ws, cnt, trace, wscale);
}

// launch_wgsd_sk on tiles of nt tokens (16, 32 or 64: wsd_nt) with as many ring slots as fit (wsd_stages)
template <int EXP, bool FP8, class... Args>
inline cudaError_t launch_wgsd_sk_nt(int nt, Args... args) {
  switch (nt) {
    case 16: return launch_wgsd_sk<wsd_stages(16, FP8), EXP, FP8, 16>(args...);
    case 32: return launch_wgsd_sk<wsd_stages(32, FP8), EXP, FP8, 32>(args...);
    default: return launch_wgsd_sk<wsd_stages(64, FP8), EXP, FP8, 64>(args...);
  }
}
// launch_wgsd_sk for a variant's bits chosen at run time (SPENSE_WGSD_EXP; the launch's `pdl`, among `args`, comes
// from bits 4 and 32768): the kernel instantiation EXP of those bits, bit 8 counting with bit 1 only.  fp8: e4m3
// weights (`args` end with wscale), variant 0 or 1 (bit 1; the others not instantiated).  Variant 1 takes the token
// tile of M (wsd_nt) unless bit 16 is set, two wgmma groups in flight with bit 32, four accumulator chains with
// bit 64 (and in e4m3 on tiles of 16 tokens); the others tiles of 64.  129 and 257: timing only (M <= 16).
// 1027 (bf16; 1031 launched dependent): variant 3 with two early slots.  e4m3 at M <= 16, variants 1 and 513:
// slots of two K steps, with four accumulator chains (kernel 577); 65 there: slots of one step.  Bit 2048: x is
// in f16 (times 2^-8; spense_wgsp sets the bit from x's dtype): the same form with e4m3 taken as f16 (kernel
// 2625, on tiles of 16 or 32 tokens), cudaErrorNotSupported where that form does not apply.
template <class... Args>
inline cudaError_t launch_wgsd_sk_variant(int variant, bool fp8, Args... args) {
  const int M = std::get<7>(std::forward_as_tuple(args...));
  const int nt = wsd_nt(M, (variant & 16) != 0);
  // with bit 1 only; e4m3 on tiles of 16 tokens takes the four chains of bit 64 by default (measured 2-5 %
  // faster at M <= 16 on the Qwen3 gate_up / down shapes, both for Spense FP8 and for the FP8 dense rows; no
  // change in bf16, 1-2 % slower in e4m3 on tiles of 32 and 64: benchmarks/results/wgsd_2026-12-01, aa)
  const bool deep = (variant & 32) != 0, chains = (variant & 64) != 0 || (fp8 && nt == 16);
  if ((variant & 384) != 0) {  // the timing-only variants 129 (no MMA) and 257 (e4m3 not widened): tiles of 16
    if (M > 16) return cudaErrorInvalidValue;
    constexpr int S16 = wsd_stages(16, false), S16F = wsd_stages(16, true);
    if ((variant & 128) != 0)
      return fp8 ? launch_wgsd_sk<S16F, 129, true, 16>(args...) : launch_wgsd_sk<S16, 129, false, 16>(args...);
    return fp8 ? launch_wgsd_sk<S16F, 257, true, 16>(args...) : launch_wgsd_sk_nt<1, false>(nt, args...);
  }
  // e4m3 on tiles of 16 tokens: ring slots of two K steps with the four chains (kernel 577) for variant 1 (the
  // default) and 513; 65 keeps slots of one step (the default before).  Measured (benchmarks/results/
  // wgsd_2026-12-01, ad): 4-6 % faster on the 32B gate_up / down shapes at M = 1 and 16, 1-3 % on the 8B ones
  const bool pair = (variant & 33) == 1 && ((variant & 512) != 0 || (variant & 64) == 0);
  if ((variant & 2048) != 0) {  // x in f16 (the caller gives it only where this form takes it): kernel 2625
    // bit 4096: the split blocks' count by one acq_rel atomic (kernel 6721); bit 8192 (with 4096 or not):
    // clusters of each block's CTAs, the parts through distributed shared memory (kernel 14913; 6721 where the
    // split does not give each block CTAs of its own)
    // bit 32768 (with 4096, not with 8192): launched dependent, the entry overlapping the kernel before (kernel
    // 39489: 6721 with it); bit 16384 (the first ring's weight boxes at entry) was measured slower and removed
    const bool ar = (variant & 4096) != 0, cl = (variant & 8192) != 0, dep = ar && (variant & 32768) != 0;
    // bit 65536 on tiles of 32 tokens: each slot's MMAs waited for before the next slot's A is read (DRAIN in
    // spense_wgsd.cuh), the form ptxas fits in the registers without serializing the wgmmas (kernels 80449,
    // 105025, 72257, 68161: 14913, 39489, 6721, 2625 with it; on tiles of 16 the bit is not read)
    const bool drain = (variant & 65536) != 0;
    if (fp8 && pair && nt == 16 && cl) return launch_wgsd_sk<wsd_stages(16, true, true), 14913, true, 16>(args...);
    if (fp8 && pair && nt == 32 && cl)
      return drain ? launch_wgsd_sk<wsd_stages(32, true, true), 80449, true, 32>(args...)
                   : launch_wgsd_sk<wsd_stages(32, true, true), 14913, true, 32>(args...);
    if (fp8 && pair && nt == 16 && dep) return launch_wgsd_sk<wsd_stages(16, true, true), 39489, true, 16>(args...);
    if (fp8 && pair && nt == 32 && dep)
      return drain ? launch_wgsd_sk<wsd_stages(32, true, true), 105025, true, 32>(args...)
                   : launch_wgsd_sk<wsd_stages(32, true, true), 39489, true, 32>(args...);
    if (fp8 && pair && nt == 16)
      return ar ? launch_wgsd_sk<wsd_stages(16, true, true), 6721, true, 16>(args...)
                : launch_wgsd_sk<wsd_stages(16, true, true), 2625, true, 16>(args...);
    // tiles of 32 tokens: the same kernel 2625 (four accumulator chains).  Measured (benchmarks/results/
    // wgsd_2026-12-03, s): with one chain (2561) it spills and is no faster than variant 1 in bf16 there
    if (fp8 && pair && nt == 32 && drain)
      return ar ? launch_wgsd_sk<wsd_stages(32, true, true), 72257, true, 32>(args...)
                : launch_wgsd_sk<wsd_stages(32, true, true), 68161, true, 32>(args...);
    if (fp8 && pair && nt == 32)
      return ar ? launch_wgsd_sk<wsd_stages(32, true, true), 6721, true, 32>(args...)
                : launch_wgsd_sk<wsd_stages(32, true, true), 2625, true, 32>(args...);
    return cudaErrorNotSupported;
  }
  if (fp8 && pair && nt == 16) return launch_wgsd_sk<wsd_stages(16, true, true), 577, true, 16>(args...);
  if (fp8 && (variant & 1) == 0) return launch_wgsd_sk<wsd_stages(64, true), 0, true>(args...);
  if (fp8)
    return chains ? (deep ? launch_wgsd_sk_nt<97, true>(nt, args...) : launch_wgsd_sk_nt<65, true>(nt, args...))
           : deep ? launch_wgsd_sk_nt<33, true>(nt, args...)
                  : launch_wgsd_sk_nt<1, true>(nt, args...);
  if ((variant & 1027) == 1027) return launch_wgsd_sk<WSD_STAGES, 1027>(args...);  // bit 1024: tiles of 64
  if ((variant & 15) == 1 && (variant & 12288) != 0 && !chains && !deep)  // bits 4096, 8192, 32768 as above (bf16)
    return (variant & 8192) != 0             ? launch_wgsd_sk_nt<12289, false>(nt, args...)
           : (variant & 36864) == 36864 ? launch_wgsd_sk_nt<36865, false>(nt, args...)
                                        : launch_wgsd_sk_nt<4097, false>(nt, args...);
  if ((variant & 15) == 1)
    return chains ? (deep ? launch_wgsd_sk_nt<97, false>(nt, args...) : launch_wgsd_sk_nt<65, false>(nt, args...))
           : deep ? launch_wgsd_sk_nt<33, false>(nt, args...)
                  : launch_wgsd_sk_nt<1, false>(nt, args...);
  switch ((variant & 9) == 9 ? variant & 11 : variant & 3) {
    case 1: return launch_wgsd_sk<WSD_STAGES, 1>(args...);
    case 2: return launch_wgsd_sk<WSD_STAGES, 2>(args...);
    case 3: return launch_wgsd_sk<WSD_STAGES, 3>(args...);
    case 9: return launch_wgsd_sk<WSD_STAGES, 9>(args...);
    case 11: return launch_wgsd_sk<WSD_STAGES, 11>(args...);
    default: return launch_wgsd_sk<WSD_STAGES, 0>(args...);
  }
}
