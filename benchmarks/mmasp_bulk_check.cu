// Standalone A/B of the Spense decode kernels (no torch): the register variant (spense_mmasp_kernel)
// reading x directly ("reg") and through x in fragment order ("reg_xf", spense.runtime.xops.
// x_fragments), and the bulk-copy variant (spense_mmasp_bulk_kernel, x in fragment order if xfrag=1),
// on random weights in the kernel layout.  Checks that all give the same outputs (relative L2
// difference; the K split over warps differs, so fp32 sums differ in order only), then times them
// under weight rotation past L2, next to a device-to-device copy of 1 GiB measured in the same run.
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90,code=sm_90 --use_fast_math -Xptxas -v \
//        -I src/spense/runtime/csrc benchmarks/mmasp_bulk_check.cu -o /tmp/mmasp_bulk_check
//   /tmp/mmasp_bulk_check [N K dense_frac axis(c|r) fp8(0|1) M RT warps stages reps xfrag(0|1) pdl(0|1|2)]
// pdl=1: the register kernels launched with programmatic stream serialization (sm_90), back to back;
// pdl=2: so too, each CTA freeing the next launch right after its wait (SPENSE_MMASP_PDL=2).
//
// One line per run: shape, config, rel. difference, µs and GB/s of each kernel, copy GB/s; last, the
// register kernel with x fragments and twice the K steps in flight per warp ("reg_xf_u2": U = 8),
// and software-pipelined ("reg_xf_pf": round r+1's weights loaded before round r's math); the torch
// extension builds neither; then the shared-x kernel ("xs", spense_mmasp_xs.cuh: the warps of
// a CTA own whole row tiles and read x fragments staged once per CTA in shared memory; RT = 1 only),
// and the same with K split over CTAs ("xs_sk": xs_splits(); a memset of the fp32 sums per call, timed);
// last, with 4 warps, the register kernel with x fragments bounded to 64 registers so that 8 CTAs fit per
// SM ("reg_xf_occ"); then the register kernel before its x ring ("reg_xf_x0": x loaded inside each
// step's MMAs, FP8 at 8 steps per round), with a deeper ring ("reg_xf_x4": XD = 4), and with the
// warps split by kind of step ("reg_xf_roles", spense_mmasp_reg.cuh: ROLES), and with the warps' sums
// met in warp order without atomics ("reg_xf_det": DET; two calls must give the same bits), and last the
// same reading x_perm, x with each 32-column chunk in fragment order, instead of xf ("reg_xp": X_PERM,
// K a multiple of 64; DET where it runs, else the atomics; spense.runtime.xops.x_perm).  (A column
// "reg_xq", x read by quads of lanes, ran on 2026-12-01 at 1.6-2.5x the time of reg_xf and was removed
// with it: benchmarks/results/mmasp_bulk_2026-12-01.)
// e4m3 at RT = 1 and at most 8 warps, last: reg_xf_det and reg_xp again on x's f16 operand x * 2^-8 ("reg_xf_det_h",
// "reg_xp_h": the kernels' FP8 == 2, spense.runtime.xops.f16_x), and their relative difference from reg_xf_det
// ("rel_h"; x's f16 operand is exact but below |x| = 2^-6); then, at RT = 1 and at most 8 warps, the kernel the
// extension runs at this M with its prologue reordered ("early1", "early3": spense_mmasp_reg.cuh's EARLY;
// the same bits), and with K split over 2 and 3 CTAs ("reg_ks2", "reg_ks3": spense_mmasp_ks.cuh; its own bits,
// the same on every call, "rel_ks" from ext's); last, e4m3 at M <= 16 and the line's RT (1, 2 or 4: RT = 4 runs only
// these and reg / reg_xf, at 2 steps a round) on x's f16 operand, the in-order-sum kernel and the K split over 2 and 3
// CTAs ("det_h_rt", "ks2_rt", "ks3_rt"; "rel_rt" from reg); and, the last two, "ext" and det_h_rt with every step
// of a round loaded ("clamp", "det_h_rt_c": EARLY & 16, no load behind a branch; their bits checked against
// theirs), and early3 with clamp's rounds ("early3c": EARLY = 19).  SPENSE_HARNESS_ONLY=<column> launches one column
// three times and exits (for Nsight Compute; run_bulk_ab.sh L2PROBE=1).  (A column "reg_xp_h_occ7", reg_xp_h bounded to 7 CTAs of 4 warps a SM at 72 registers, ran
// on 2026-12-02 at -11 %..+18 % of reg_xp_h's time at 4 warps (+0.2..1.7 % on the 18 cells off gate_up) and was removed:
// benchmarks/results/wgsd_2026-12-02, folder at.)
// Built with -DSPENSE_MMASP_TRACE (a second binary: the timed kernels of the plain build stay as the extension's), it
// also prints a "trace" line: one launch's timeline of the in-order-sum kernel's CTAs (entry spread, the first
// round's latency, the body, the sum and store, the tail after the last CTA's entry; spense_mmasp_reg.cuh).
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <random>
#include <algorithm>
#include <type_traits>
#include <string>
#include <initializer_list>

#include "spense_mmasp_common.cuh"
#include "spense_mmasp_reg.cuh"
#include "spense_mmasp_ks.cuh"
#include "spense_mmasp_bulk.cuh"
#include "spense_mmasp_xs.cuh"
#include "spense_layout_gen.h"
#include "mmasp_x_forms.h"
#include "mmasp_trace_report.h"

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
  fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)


struct Args { int N = 12288, K = 4096; double dfrac = 0.25; char axis = 'c'; int fp8 = 0, M = 1, RT = 1,
              warps = 4, stages = 4, reps = 50, xfrag = 1, pdl = 0; };

// The largest relative L2 difference of the outputs `outs` from `ref` (bf16 bits), sqrt(sum (r - o)^2 / sum r^2);
// `nonfinite` counts their non-finite elements
static double max_rel_diff(const std::vector<uint16_t>& ref, std::initializer_list<const std::vector<uint16_t>*> outs,
                           int& nonfinite) {
  double worst = 0, dd = 0;
  for (uint16_t r : ref) dd += (double)bf2f(r) * bf2f(r);
  for (const std::vector<uint16_t>* o : outs) {
    double n = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      const double r = bf2f(ref[i]), v = bf2f((*o)[i]);
      if (!std::isfinite(v)) ++nonfinite;
      n += (r - v) * (r - v);
    }
    worst = std::max(worst, n);
  }
  return std::sqrt(worst / std::max(dd, 1e-30));
}

template <int RT, int NT, bool FP8>
void run(const Args& a, std::mt19937& rng) {
  using G = BulkGeom<FP8>;
  const RandLayout L = rand_layout(a.N, a.K, a.dfrac, a.axis, RT, FP8, G::VS, G::VD, rng);
  const int Bs = L.Bs, Bd = L.Bd, Ss = L.Ss, SdA = L.SdA, SdB = L.SdB;
  const int kx = a.K;
  const size_t nsv = L.nsv, nsm = L.nsm, ndv = L.ndv, wbytes = L.bytes();
  // enough copies to rotate past L2 (>= 512 MB moved per rotation)
  const int copies = (int)std::max<size_t>(1, std::min<size_t>(16, (512ull << 20) / std::max<size_t>(wbytes, 1) + 1));
  const std::vector<uint32_t>& hv = L.hv;
  const std::vector<uint32_t>& hm = L.hm;
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  std::vector<uint16_t> hx((size_t)a.M * kx);
  for (auto& v : hx) v = f2bf(U(rng));
  const std::vector<int>&sblk = L.sblk, &dblk = L.dblk, &orow = L.orow;
  std::vector<float> hs(a.N, 0.5f);
  // x in fragment order, x_perm (K a multiple of 64) and x's f16 operand in both (benchmarks/mmasp_x_forms.h)
  const bool with_xp = kx % 64 == 0;
  const std::vector<uint16_t> hxf = x_fragments_host(hx, a.M, kx, NT), hxp = x_perm_host(hx, a.M, kx);
  const std::vector<uint16_t> hxfh = f16_operand_host(hxf), hxph = f16_operand_host(hxp);
  uint4* xfh; __nv_bfloat16* xph;
  CK(cudaMalloc(&xfh, hxfh.size() * 2)); CK(cudaMemcpy(xfh, hxfh.data(), hxfh.size() * 2, cudaMemcpyHostToDevice));
  CK(cudaMalloc(&xph, hxph.size() * 2)); CK(cudaMemcpy(xph, hxph.data(), hxph.size() * 2, cudaMemcpyHostToDevice));
  uint4 *sv, *dv, *xf; uint32_t* sm; __nv_bfloat16 *x, *xp, *y0, *y1, *y2; int *d_sblk, *d_dblk, *d_orow; float* ws;
  CK(cudaMalloc(&sv, nsv * 16 * copies + 16)); CK(cudaMalloc(&dv, ndv * 16 * copies + 16));
  CK(cudaMalloc(&sm, nsm * 4 * copies + 16));
  for (int c = 0; c < copies; ++c) {
    CK(cudaMemcpy(sv + nsv * c, hv.data(), nsv * 16, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dv + ndv * c, hv.data() + nsv * 4, ndv * 16, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(sm + nsm * c, hm.data(), nsm * 4, cudaMemcpyHostToDevice));
  }
  CK(cudaMalloc(&x, hx.size() * 2)); CK(cudaMemcpy(x, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
  CK(cudaMalloc(&xp, hxp.size() * 2)); CK(cudaMemcpy(xp, hxp.data(), hxp.size() * 2, cudaMemcpyHostToDevice));
  CK(cudaMalloc(&xf, hxf.size() * 2)); CK(cudaMemcpy(xf, hxf.data(), hxf.size() * 2, cudaMemcpyHostToDevice));
  CK(cudaMalloc(&y0, (size_t)a.M * a.N * 2)); CK(cudaMalloc(&y1, (size_t)a.M * a.N * 2));
  CK(cudaMalloc(&y2, (size_t)a.M * a.N * 2));
  CK(cudaMalloc(&d_sblk, sblk.size() * 4)); CK(cudaMalloc(&d_dblk, dblk.size() * 4));
  CK(cudaMalloc(&d_orow, orow.size() * 4)); CK(cudaMalloc(&ws, a.N * 4));
  CK(cudaMemcpy(d_sblk, sblk.data(), sblk.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(d_dblk, dblk.data(), dblk.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(d_orow, orow.data(), orow.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(ws, hs.data(), a.N * 4, cudaMemcpyHostToDevice));
  dim3 grid(Bs + Bd);
  // the register kernels are launched with programmatic stream serialization when a.pdl (each may then
  // start its weight stream while the one before it finishes)
  const dim3 block(32 * a.warps);
  // one launch of a register-kernel instantiation on weight copy c (x through xfp if not null)
  auto launch = [&](auto kernel, int c, __nv_bfloat16* y, const uint4* xfp, const __nv_bfloat16* xx = nullptr) {
    CK(launch_maybe_pdl(kernel, grid, block, 0, a.pdl != 0, sv + nsv * c, sm + nsm * c, dv + ndv * c,
                        xx != nullptr ? xx : x, xfp, kx, a.M, kx, d_sblk, d_dblk, d_orow, ws, y, a.N, Bs, Bd, Ss,
                        SdA, SdB, a.pdl));
  };
  constexpr int UD = REG_U;  // the steps per round that the extension builds
  // RT = 4 (e4m3, M <= 16; the "_rt" columns below): 2 steps a round, which builds the in-order-sum kernel and the K
  // split without spills (128 registers at NT = 2, as RT = 2 at 4 steps; reg / reg_xf, the reference there, spill 20-48
  // bytes at NT = 2); the forms the extension does not build are not run there (-1 us, negative GB/s)
  constexpr int URT = RT == 4 ? 2 : UD;
  constexpr bool R12 = RT <= 2;
  auto reg_x = [&](int c, __nv_bfloat16* y, const uint4* xfp) {
    if (xfp != nullptr) launch(spense_mmasp_kernel<RT, NT, FP8, URT, X_FRAGS>, c, y, xfp);
    else launch(spense_mmasp_kernel<RT, NT, FP8, URT, X_DIRECT>, c, y, nullptr);
  };
  // the register kernel before the x ring (XD = 0: each step's x loaded inside its MMAs; FP8 with 8
  // steps per round, as the extension built it; only its epilogue's early read of the output rows is
  // new), and with a deeper ring (XD = 4), x fragments
  auto reg_xf_x0 = [&](int c, __nv_bfloat16* y) {
    if constexpr (R12) launch(spense_mmasp_kernel<RT, NT, FP8, FP8 ? 8 : 4, X_FRAGS, false, 0, 0>, c, y, xf);
  };
  auto reg_xf_x4 = [&](int c, __nv_bfloat16* y) {
    if constexpr (R12) launch(spense_mmasp_kernel<RT, NT, FP8, UD, X_FRAGS, false, 0, 4>, c, y, xf);
  };
  // the warps split by kind of step (ROLES: sparse steps on some warps, dense on the others), x fragments
  auto reg_xf_roles = [&](int c, __nv_bfloat16* y) {
    if constexpr (R12) launch(spense_mmasp_kernel<RT, NT, FP8, UD, X_FRAGS, false, 0, 2, true>, c, y, xf);
  };
  // the warps' sums met without atomics, in warp order (DET: RT = 1, at most 8 warps), x fragments
  auto reg_xf_det = [&](int c, __nv_bfloat16* y) {
    if constexpr (RT == 1) launch(spense_mmasp_kernel<RT, NT, FP8, UD, X_FRAGS, false, 0, 2, false, true>, c, y, xf);
  };
  // x_perm instead of xf (X_PERM), with DET where it runs
  auto reg_xp = [&](int c, __nv_bfloat16* y) {
    if constexpr (RT == 1) {
      if (a.warps <= DET_W256) {
        launch(spense_mmasp_kernel<RT, NT, FP8, UD, X_PERM, false, 0, 2, false, true>, c, y, nullptr, xp);
        return;
      }
    }
    if constexpr (R12) launch(spense_mmasp_kernel<RT, NT, FP8, UD, X_PERM>, c, y, nullptr, xp);
  };
  // e4m3 with x's f16 operand (FP8 == 2), DET, through the fragments and through x_perm (RT = 1, <= 8 warps)
  auto reg_xf_det_h = [&](int c, __nv_bfloat16* y) {
    if constexpr (RT == 1 && FP8)
      launch(spense_mmasp_kernel<RT, NT, 2, UD, X_FRAGS, false, 0, 2, false, true>, c, y, xfh);
  };
  auto reg_xp_h = [&](int c, __nv_bfloat16* y) {
    if constexpr (RT == 1 && FP8)
      launch(spense_mmasp_kernel<RT, NT, 2, UD, X_PERM, false, 0, 2, false, true>, c, y, nullptr, xph);
  };
  // the DET kernel as the extension runs it (x_perm at M = 1, else fragments; e4m3 on x's f16 operand) with its
  // prologue reordered, EARLY (spense_mmasp_reg.cuh): 1, the first round's loads before the rows' scales are read;
  // 3, also each warp's next round asked into L2 before a round's MMAs ("early1", "early3"; the same bits as "ext",
  // reg_xp / reg_xf_det / reg_xp_h / reg_xf_det_h, whichever the line's dtype and M take).  (Columns "early7" and
  // "early9", EARLY 7 and 9: 3 and the first round of the CTA that follows on the same SM into L2, 1 and all of the
  // warp's later rounds into L2 at the start, ran on 2026-12-02 at 0.97-1.16x and 1.01-1.56x the time of early3
  // and were removed: benchmarks/results/wgsd_2026-12-02, folder ay.)
  auto ext_early = [&](auto early, int c, __nv_bfloat16* y) {
    if constexpr (RT == 1) {
      constexpr int E = decltype(early)::value, F = FP8 ? 2 : 0;
      constexpr auto kp = spense_mmasp_kernel<RT, NT, F, UD, X_PERM, false, 0, 2, false, true, E>;
      constexpr auto kf = spense_mmasp_kernel<RT, NT, F, UD, X_FRAGS, false, 0, 2, false, true, E>;
      if (with_xp && a.M == 1) launch(kp, c, y, nullptr, FP8 ? xph : xp);
      else launch(kf, c, y, FP8 ? xfh : xf, nullptr);
    }
  };
  auto early1 = [&](int c, __nv_bfloat16* y) { ext_early(std::integral_constant<int, 1>{}, c, y); };
  auto early3 = [&](int c, __nv_bfloat16* y) { ext_early(std::integral_constant<int, 3>{}, c, y); };
  // ... and with every step of a round loaded, past the last step the last one again, so that no load sits behind a
  // branch (EARLY & 16, spense_mmasp_reg.cuh: load_sparse_round's CLAMP; "clamp"; the same bits as "ext")
  auto clamp = [&](int c, __nv_bfloat16* y) { ext_early(std::integral_constant<int, 16>{}, c, y); };
  // ... both: early3's prologue and next-round L2 requests with clamp's rounds (EARLY = 19, "early3c"; written after
  // the sixteenth stop for the e4m3 one-wave grids where the extension takes EARLY = 3 and so no clamp; not yet run)
  auto early3c = [&](int c, __nv_bfloat16* y) { ext_early(std::integral_constant<int, 19>{}, c, y); };
  // K split over KS CTAs of this run's warps (spense_mmasp_ks.cuh; "reg_ks2", "reg_ks3"; RT = 1, at most 8 warps, x
  // as "ext" takes it): the KS partial sums of a row block in a workspace, added by its last CTA
  float* ks_part = nullptr;
  unsigned* ks_count = nullptr;
  CK(cudaMalloc(&ks_part, (size_t)(Bs + Bd) * 3 * RT * 16 * NT * 8 * sizeof(float)));
  CK(cudaMalloc(&ks_count, (size_t)(Bs + Bd) * sizeof(unsigned)));
  CK(cudaMemset(ks_count, 0, (size_t)(Bs + Bd) * sizeof(unsigned)));
  auto reg_ks = [&](int KS, int c, __nv_bfloat16* y) {
    if constexpr (RT == 1) {
      constexpr int F = FP8 ? 2 : 0;
      auto go = [&](auto kernel, const uint4* xfp, const __nv_bfloat16* xx) {
        CK(launch_maybe_pdl(kernel, dim3(Bs + Bd, KS), block, 0, a.pdl != 0, sv + nsv * c, sm + nsm * c,
                            dv + ndv * c, xx, xfp, kx, a.M, kx, d_sblk, d_dblk, d_orow, ws, y, a.N, Bs, Bd, Ss, SdA,
                            SdB, a.pdl, ks_part, ks_count));
      };
      if (with_xp && a.M == 1) go(spense_mmasp_ks_kernel<RT, NT, F, X_PERM>, nullptr, FP8 ? xph : xp);
      else go(spense_mmasp_ks_kernel<RT, NT, F, X_FRAGS>, FP8 ? xfh : xf, x);
    }
  };
  auto reg_ks2 = [&](int c, __nv_bfloat16* y) { reg_ks(2, c, y); };
  auto reg_ks3 = [&](int c, __nv_bfloat16* y) { reg_ks(3, c, y); };
  // e4m3 at this line's RT (1, 2 or 4; at most 8 warps, M <= 16), x's f16 operand through its fragments: the in-order-sum kernel
  // ("det_h_rt": at RT = 1 the kernel of reg_xf_det_h, at RT = 2 the extension's M = 16 kernel, at RT = 4 with URT
  // steps a round) and the K split over 2 and 3 CTAs ("ks2_rt", "ks3_rt").  Why: every CTA reads all of x, (N / 16 RT)
  // M K 2 bytes from L2, 0.19 M / RT of the e4m3 weights' bytes at 25 % dense (3.0x at M = 16, RT = 1): a larger RT
  // reads less x a weight byte, and the K split keeps the GPU full at the fewer row blocks (docs/runtime.md §13)
  auto det_h_rt = [&](int c, __nv_bfloat16* y) {
    if constexpr (FP8 && NT <= 2)
      launch(spense_mmasp_kernel<RT, NT, 2, URT, X_FRAGS, false, 0, 2, false, true>, c, y, xfh);
  };
  auto det_h_rt_c = [&](int c, __nv_bfloat16* y) {  // ... its rounds' loads as "clamp"'s (the same bits as det_h_rt)
    if constexpr (FP8 && NT <= 2)
      launch(spense_mmasp_kernel<RT, NT, 2, URT, X_FRAGS, false, 0, 2, false, true, 16>, c, y, xfh);
  };
  auto ks_rt = [&](int KS, int c, __nv_bfloat16* y) {
    if constexpr (FP8 && NT <= 2)
      CK(launch_maybe_pdl(spense_mmasp_ks_kernel<RT, NT, 2, X_FRAGS, URT>, dim3(Bs + Bd, KS), block, 0, a.pdl != 0,
                          sv + nsv * c, sm + nsm * c, dv + ndv * c, x, xfh, kx, a.M, kx, d_sblk, d_dblk, d_orow, ws,
                          y, a.N, Bs, Bd, Ss, SdA, SdB, a.pdl, ks_part, ks_count));
  };
  auto ks2_rt = [&](int c, __nv_bfloat16* y) { ks_rt(2, c, y); };
  auto ks3_rt = [&](int c, __nv_bfloat16* y) { ks_rt(3, c, y); };
  // twice the steps in flight per warp (U = 8), x fragments
  auto reg_xf2 = [&](int c, __nv_bfloat16* y) {
    if constexpr (R12) launch(spense_mmasp_kernel<RT, NT, FP8, 2 * UD, X_FRAGS>, c, y, xf);
  };
  // software-pipelined (PF: round r+1 loaded before round r's math), x fragments
  auto reg_xf_pf = [&](int c, __nv_bfloat16* y) {
    if constexpr (R12) launch(spense_mmasp_kernel<RT, NT, FP8, UD, X_FRAGS, true>, c, y, xf);
  };
  // the shared-x kernel (RT = 1, at most 8 warps; x fragments)
  auto xs = [&](int c, __nv_bfloat16* y) {
    CK((launch_xs<NT, FP8>(a.warps, 0, a.pdl != 0, sv + nsv * c, sm + nsm * c, dv + ndv * c, xf, d_sblk, d_dblk,
                           d_orow, ws, y, a.N, a.M, Bs, Bd, Ss, SdA, SdB)));
  };
  const int xs_ctas = (Bs + a.warps - 1) / a.warps + (Bd + a.warps - 1) / a.warps;
  const int xs_ks = xs_splits(xs_ctas, xs_walk(Ss, SdA, SdB));
  float* wsk = nullptr;
  const size_t wsk_bytes = ((size_t)a.M * a.N + xs_ctas) * 4;
  CK(cudaMalloc(&wsk, wsk_bytes));
  auto xs_sk = [&](int c, __nv_bfloat16* y) {
    CK(cudaMemsetAsync(wsk, 0, wsk_bytes, 0));
    CK((launch_xs<NT, FP8>(a.warps, 0, a.pdl != 0, sv + nsv * c, sm + nsm * c, dv + ndv * c, xf, d_sblk, d_dblk,
                           d_orow, ws, y, a.N, a.M, Bs, Bd, Ss, SdA, SdB, xs_ks, wsk, a.N)));
  };
  // x fragments, at most 64 registers per thread so that 8 CTAs of 4 warps fit per SM (4 warps only)
  auto reg_xf_occ = [&](int c, __nv_bfloat16* y) {
    if constexpr (R12) launch(spense_mmasp_kernel<RT, NT, FP8, UD, X_FRAGS, false, 8>, c, y, xf);
  };
  auto reg = [&](int c, __nv_bfloat16* y) { reg_x(c, y, nullptr); };
  auto reg_xf = [&](int c, __nv_bfloat16* y) { reg_x(c, y, xf); };
  auto bulk = [&](int c, __nv_bfloat16* y) {
    if constexpr (R12) {
      const cudaError_t e = launch_bulk<RT, NT, FP8>(grid, a.warps, a.stages, 0, sv + nsv * c, sm + nsm * c,
          dv + ndv * c, x, a.xfrag ? xf : nullptr, kx, a.M, kx, d_sblk, d_dblk, d_orow, ws, y, a.N, Bs, Bd, Ss,
          SdA, SdB);
      CK(e);
    }
  };
  // SPENSE_HARNESS_ONLY=det_h_rt / ks2_rt / early3: that column alone, three launches on three weight copies, no
  // check and no timing (for Nsight Compute: run_bulk_ab.sh's L2PROBE=1 profiles the third launch)
  if (const char* only = getenv("SPENSE_HARNESS_ONLY")) {
    const std::string o(only);
    const bool runs = (o == "det_h_rt" || o == "ks2_rt") ? FP8 && NT <= 2 && a.warps <= DET_W256
                    : o == "early3" ? RT == 1 && a.warps <= DET_W256 : true;
    if (!runs) {  // nothing would launch: Nsight Compute would profile nothing
      fprintf(stderr, "SPENSE_HARNESS_ONLY=%s does not run at fp8=%d M=%d RT=%d warps=%d\n", only, (int)FP8, a.M, RT,
              a.warps);
      exit(1);
    }
    for (int i = 0; i < 3; ++i) {
      if (o == "det_h_rt") det_h_rt(i % copies, y0);
      else if (o == "ks2_rt") ks2_rt(i % copies, y0);
      else if (o == "early3") early3(i % copies, y0);
      else { fprintf(stderr, "SPENSE_HARNESS_ONLY: det_h_rt, ks2_rt or early3, got %s\n", only); exit(1); }
    }
    CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
    printf("only %s N=%d K=%d M=%d RT=%d warps=%d: 3 launches\n", only, a.N, a.K, a.M, RT, a.warps);
    return;
  }
  std::vector<uint16_t> h0((size_t)a.M * a.N), h1(h0.size()), h2(h0.size()), h3(h0.size());
  reg(0, y0); bulk(0, y1); reg_xf(0, y2);
  CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(h0.data(), y0, h0.size() * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(h1.data(), R12 ? y1 : y0, h1.size() * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(h2.data(), y2, h2.size() * 2, cudaMemcpyDeviceToHost));
  std::vector<uint16_t> h4(h0.size()), h5(h0.size()), h6(h0.size()), h8(h0.size());
  // h = the output of one call of f into y1 set to NaN first (a row the kernel misses shows as
  // nonfinite); h0 where the variant does not run with this config
  auto output_of = [&](bool runs, auto&& f, std::vector<uint16_t>& h) {
    if (!runs) { h = h0; return; }
    CK(cudaMemset(y1, 0xFF, h.size() * 2));
    f(0, y1);
    CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h.data(), y1, h.size() * 2, cudaMemcpyDeviceToHost));
  };
  const bool with_xs = RT == 1 && a.warps <= 8, with_occ = a.warps == 4;
  output_of(with_xs, xs, h5);
  if (with_xs) {  // a first call, then a checked one: the counters and sums start from zero again
    xs_sk(0, y1);
    CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
  }
  output_of(with_xs, xs_sk, h6);
  // reg_xf_u2 and reg_xf_pf are bound to 256 threads
  output_of(R12 && a.warps <= 8, reg_xf2, h3);
  output_of(R12 && a.warps <= 8, reg_xf_pf, h4);
  output_of(R12 && with_occ, reg_xf_occ, h8);
  std::vector<uint16_t> h9(h0.size()), h10(h0.size()), h11(h0.size()), h12(h0.size()), h13(h0.size());
  output_of(R12, reg_xf_x0, h9);
  output_of(R12, reg_xf_x4, h10);
  output_of(R12, reg_xf_roles, h11);
  const bool with_det = RT == 1 && a.warps <= DET_W256;
  output_of(with_det, reg_xf_det, h12);
  output_of(with_det, reg_xf_det, h13);  // again: the same bits
  if (h12 != h13) { fprintf(stderr, "MISMATCH: reg_xf_det differs between two calls\n"); exit(2); }
  std::vector<uint16_t> h14(h0.size());
  output_of(with_xp && (R12 || with_det), reg_xp, h14);
  // where both run DET they read the same 16 bytes per lane and step: the same bits
  if (with_xp && with_det && h14 != h12) { fprintf(stderr, "MISMATCH: reg_xp differs from reg_xf_det\n"); exit(2); }
  const bool with_h = FP8 && with_det;
  std::vector<uint16_t> h15(h0.size()), h16(h0.size());
  output_of(with_h, reg_xf_det_h, h15);
  output_of(with_h && with_xp, reg_xp_h, h16);
  if (with_h && with_xp && h15 != h16) { fprintf(stderr, "MISMATCH: reg_xp_h differs from reg_xf_det_h\n"); exit(2); }
  // the "ext" column: the DET kernel with the x form the extension takes at this M
  const std::vector<uint16_t>& ext_bits = with_xp && a.M == 1 ? (FP8 ? h16 : h14) : (FP8 ? h15 : h12);
  std::vector<uint16_t> h17(h0.size()), h18(h0.size()), h19(h0.size()), h31(h0.size());
  output_of(with_det, early1, h17);
  output_of(with_det, early3, h18);
  output_of(with_det, clamp, h19);
  output_of(with_det, early3c, h31);
  if (with_det && (h17 != ext_bits || h18 != ext_bits || h19 != ext_bits || h31 != ext_bits)) {
    fprintf(stderr, "MISMATCH: early1/3, clamp or early3c differ from ext\n");
    exit(2);
  }
  // the K split: other steps per warp, so other bits than ext's, but the same on every call (twice each) and within
  // bf16 / f16 rounding of ext ("rel_ks", the larger of the two)
  std::vector<uint16_t> h21(h0.size()), h22(h0.size()), h23(h0.size()), h24(h0.size());
  output_of(with_det, reg_ks2, h21);
  output_of(with_det, reg_ks2, h22);
  output_of(with_det, reg_ks3, h23);
  output_of(with_det, reg_ks3, h24);
  if (h21 != h22 || h23 != h24) { fprintf(stderr, "MISMATCH: reg_ks2/3 differ between two calls\n"); exit(2); }
  int bad_ks = 0;
  const double rel_ks = with_det ? max_rel_diff(ext_bits, {&h21, &h23}, bad_ks) : 0.0;
  // the "_rt" columns: within f16 / bf16 rounding of reg (h0), and the K split the same bits on two calls each
  const bool with_rt = FP8 && NT <= 2 && a.warps <= DET_W256;
  std::vector<uint16_t> h25(h0.size()), h26(h0.size()), h27(h0.size()), h28(h0.size()), h29(h0.size());
  output_of(with_rt, det_h_rt, h25);
  std::vector<uint16_t> h30(h0.size());
  output_of(with_rt, det_h_rt_c, h30);
  if (with_rt && h30 != h25) { fprintf(stderr, "MISMATCH: det_h_rt_c differs from det_h_rt\n"); exit(2); }
  output_of(with_rt, ks2_rt, h26);
  output_of(with_rt, ks2_rt, h27);
  output_of(with_rt, ks3_rt, h28);
  output_of(with_rt, ks3_rt, h29);
  if (h26 != h27 || h28 != h29) { fprintf(stderr, "MISMATCH: ks2_rt/ks3_rt differ between two calls\n"); exit(2); }
  int bad_rt = 0;
  const double rel_rt = with_rt ? max_rel_diff(h0, {&h25, &h26, &h28}, bad_rt) : 0.0;
  int bad_h = 0;
  const double rel_h = with_h ? max_rel_diff(h12, {&h15}, bad_h) : 0.0;
  // every column so far against reg (h0; columns that do not run at this config hold h0); nonfinite: over all of them
  int bad = 0;
  const double rel = max_rel_diff(h0, {&h0, &h1, &h2, &h3, &h4, &h5, &h6, &h8, &h9, &h10, &h11, &h12, &h14}, bad);
  cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  auto timeit = [&](auto&& f) {
    for (int i = 0; i < 3; ++i) f(i % copies, y0);
    CK(cudaEventRecord(e0));
    for (int i = 0; i < a.reps; ++i) f(i % copies, y0);
    CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1)); CK(cudaGetLastError());
    float ms; CK(cudaEventElapsedTime(&ms, e0, e1)); return 1e3 * ms / a.reps;
  };
  // reg_xf_u2 and reg_xf_pf are bound to 256 threads: not run with more than 8 warps (-1 us)
  const bool small = a.warps <= 8;
  const float t_reg = timeit(reg), t_regxf = timeit(reg_xf), t_bulk = R12 ? timeit(bulk) : -1.f,
              t_regxf2 = R12 && small ? timeit(reg_xf2) : -1.f, t_pf = R12 && small ? timeit(reg_xf_pf) : -1.f,
              t_xs = with_xs ? timeit(xs) : -1.f, t_xs_sk = with_xs ? timeit(xs_sk) : -1.f,
              t_occ = R12 && with_occ ? timeit(reg_xf_occ) : -1.f, t_x0 = R12 ? timeit(reg_xf_x0) : -1.f,
              t_x4 = R12 ? timeit(reg_xf_x4) : -1.f, t_roles = R12 ? timeit(reg_xf_roles) : -1.f,
              t_det = with_det ? timeit(reg_xf_det) : -1.f,
              t_xp = with_xp && (R12 || with_det) ? timeit(reg_xp) : -1.f, t_xfh = with_h ? timeit(reg_xf_det_h) : -1.f,
              t_xph = with_h && with_xp ? timeit(reg_xp_h) : -1.f, t_e1 = with_det ? timeit(early1) : -1.f,
              t_e3 = with_det ? timeit(early3) : -1.f, t_ks2 = with_det ? timeit(reg_ks2) : -1.f,
              t_ks3 = with_det ? timeit(reg_ks3) : -1.f, t_drt = with_rt ? timeit(det_h_rt) : -1.f,
              t_k2rt = with_rt ? timeit(ks2_rt) : -1.f, t_k3rt = with_rt ? timeit(ks3_rt) : -1.f,
              t_clamp = with_det ? timeit(clamp) : -1.f, t_drtc = with_rt ? timeit(det_h_rt_c) : -1.f,
              t_e3c = with_det ? timeit(early3c) : -1.f;
  // copy bandwidth (read + write) of 1 GiB, same run
  void *c0, *c1; const size_t cb = 1ull << 30; CK(cudaMalloc(&c0, cb)); CK(cudaMalloc(&c1, cb));
  CK(cudaMemcpy(c1, c0, cb, cudaMemcpyDeviceToDevice));
  CK(cudaEventRecord(e0)); for (int i = 0; i < 5; ++i) CK(cudaMemcpy(c1, c0, cb, cudaMemcpyDeviceToDevice));
  CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1)); float cms; CK(cudaEventElapsedTime(&cms, e0, e1));
  const double copy_gbs = 2.0 * cb * 5 / (cms * 1e-3) / 1e9;
  printf("N=%d K=%d d=%.3f axis=%c fp8=%d M=%d RT=%d warps=%d stages=%d xfrag=%d pdl=%d | rel_diff %.2e nonfinite %d | "
         "reg %.2f us %.0f GB/s | reg_xf %.2f us %.0f GB/s | bulk %.2f us %.0f GB/s | bulk/reg %.3fx | "
         "copy %.0f GB/s | weights %.1f MB x%d | reg_xf_u2 %.2f us %.0f GB/s | reg_xf_pf %.2f us %.0f GB/s | "
         "xs %.2f us %.0f GB/s | xs_sk%d %.2f us %.0f GB/s | reg_xf_occ %.2f us %.0f GB/s | "
         "reg_xf_x0 %.2f us %.0f GB/s | reg_xf_x4 %.2f us %.0f GB/s | reg_xf_roles %.2f us %.0f GB/s | "
         "reg_xf_det %.2f us %.0f GB/s | reg_xp %.2f us %.0f GB/s | rel_h %.2e | reg_xf_det_h %.2f us %.0f GB/s | "
         "reg_xp_h %.2f us %.0f GB/s | early1 %.2f us %.0f GB/s | early3 %.2f us %.0f GB/s | "
         "rel_ks %.2e | reg_ks2 %.2f us %.0f GB/s | "
         "reg_ks3 %.2f us %.0f GB/s | rel_rt %.2e | det_h_rt %.2f us %.0f GB/s | ks2_rt %.2f us %.0f GB/s | "
         "ks3_rt %.2f us %.0f GB/s | clamp %.2f us %.0f GB/s | det_h_rt_c %.2f us %.0f GB/s | "
         "early3c %.2f us %.0f GB/s\n",
         a.N, a.K, a.dfrac, a.axis, a.fp8, a.M, RT, a.warps, a.stages, a.xfrag, a.pdl, rel, bad, t_reg,
         wbytes / (t_reg * 1e3), t_regxf, wbytes / (t_regxf * 1e3), t_bulk, wbytes / (t_bulk * 1e3),
         t_reg / t_bulk, copy_gbs, wbytes / 1e6, copies, t_regxf2, wbytes / (t_regxf2 * 1e3), t_pf,
         wbytes / (t_pf * 1e3), t_xs, wbytes / (t_xs * 1e3), xs_ks, t_xs_sk, wbytes / (t_xs_sk * 1e3), t_occ,
         wbytes / (t_occ * 1e3), t_x0, wbytes / (t_x0 * 1e3), t_x4, wbytes / (t_x4 * 1e3), t_roles,
         wbytes / (t_roles * 1e3), t_det, wbytes / (t_det * 1e3), t_xp, wbytes / (t_xp * 1e3), rel_h, t_xfh,
         wbytes / (t_xfh * 1e3), t_xph, wbytes / (t_xph * 1e3), t_e1, wbytes / (t_e1 * 1e3), t_e3,
         wbytes / (t_e3 * 1e3), rel_ks, t_ks2,
         wbytes / (t_ks2 * 1e3), t_ks3, wbytes / (t_ks3 * 1e3), rel_rt, t_drt, wbytes / (t_drt * 1e3), t_k2rt,
         wbytes / (t_k2rt * 1e3), t_k3rt, wbytes / (t_k3rt * 1e3), t_clamp, wbytes / (t_clamp * 1e3), t_drtc,
         wbytes / (t_drtc * 1e3), t_e3c, wbytes / (t_e3c * 1e3));
#ifdef SPENSE_MMASP_TRACE
  // one launch's timeline (spense_mmasp_reg.cuh: mmasp_trace), after three untraced ones on other weight copies: the
  // in-order-sum kernel as the extension runs it (x_perm at M = 1, else fragments; e4m3 on x's f16 operand), in us
  // from the first CTA's entry
  if (with_det) {
    const int G = Bs + Bd;
    unsigned long long* tr;
    CK(cudaMalloc(&tr, (size_t)G * 6 * 8));
    auto traced = [&](auto&& f, const char* name) {
      trace_report(f, name, G, copies, y0, a.N, a.K, a.M, a.warps, wbytes, tr);
    };
    if (with_h && with_xp && a.M == 1) traced(reg_xp_h, "reg_xp_h");
    else if (with_h) traced(reg_xf_det_h, "reg_xf_det_h");
    else if (with_xp && a.M == 1) traced(reg_xp, "reg_xp");
    else traced(reg_xf_det, "reg_xf_det");
    traced(early3, "early3");
    cudaFree(tr);
  }
#endif
  cudaFree(sv); cudaFree(dv); cudaFree(sm); cudaFree(x); cudaFree(xp); cudaFree(xf); cudaFree(y0); cudaFree(y1); cudaFree(y2);
  cudaFree(d_sblk);
  cudaFree(d_dblk); cudaFree(d_orow); cudaFree(ws); cudaFree(c0); cudaFree(c1); cudaFree(wsk);
  cudaFree(xfh); cudaFree(xph);
  // (not asked to be bit-equal: the warps of a CTA meet through shared-memory float atomics, in an order
  // that varies)
  cudaFree(ks_part); cudaFree(ks_count);
  if (rel > 2e-3 || rel_h > 2e-3 || rel_ks > 2e-3 || rel_rt > 2e-3 || bad || bad_h || bad_ks || bad_rt) {
    fprintf(stderr, "MISMATCH\n");
    exit(2);
  }
}

template <int RT, bool FP8>
void by_nt(const Args& a, std::mt19937& rng) {
  if (a.M <= 8) run<RT, 1, FP8>(a, rng);
  else if (a.M <= 16) run<RT, 2, FP8>(a, rng);
  else if (a.M <= 32) run<RT, 4, FP8>(a, rng);
  else run<RT, 8, FP8>(a, rng);
}

int main(int argc, char** argv) {
  Args a;
  if (argc > 1) a.N = atoi(argv[1]);
  if (argc > 2) a.K = atoi(argv[2]);
  if (argc > 3) a.dfrac = atof(argv[3]);
  if (argc > 4) a.axis = argv[4][0];
  if (argc > 5) a.fp8 = atoi(argv[5]);
  if (argc > 6) a.M = atoi(argv[6]);
  if (argc > 7) a.RT = atoi(argv[7]);
  if (argc > 8) a.warps = atoi(argv[8]);
  if (argc > 9) a.stages = atoi(argv[9]);
  if (argc > 10) a.reps = atoi(argv[10]);
  if (argc > 11) a.xfrag = atoi(argv[11]);
  if (argc > 12) a.pdl = atoi(argv[12]);
  if (a.K % 64 || a.N % (16 * a.RT) || a.M < 1 || a.M > 64 || a.stages < 1 || a.stages > BULK_MAX_STAGES ||
      (a.RT != 1 && a.RT != 2 && a.RT != 4) || (a.RT == 4 && (!a.fp8 || a.M > 16))) {  // RT = 4: e4m3, M <= 16
    fprintf(stderr, "bad arguments\n");
    return 1;
  }
  std::mt19937 rng(1234);
  if (a.RT == 1) { if (a.fp8) by_nt<1, true>(a, rng); else by_nt<1, false>(a, rng); }
  else if (a.RT == 2) { if (a.fp8) by_nt<2, true>(a, rng); else by_nt<2, false>(a, rng); }
  else if (a.M <= 8) run<4, 1, true>(a, rng);
  else run<4, 2, true>(a, rng);
  return 0;
}
