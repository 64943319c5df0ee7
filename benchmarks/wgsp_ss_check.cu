// The prefill trial form that reads A from shared memory (spense_wgsp_ws_kernel's SSA: the wgmmas take A through a
// descriptor, no load of A into registers before them) against the plain form and cuBLAS, on random bf16 weights
// at M tokens (sm_90a; no torch).
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -I src/spense/runtime/csrc \
//        -DWGSP_CUBLAS -lcublas benchmarks/wgsp_ss_check.cu -o /tmp/wgsp_ss_check
//   /tmp/wgsp_ss_check [N K dense_frac axis(c|r) M reps rounds]
//
// The SS layout (benchmarks/ss_layout.h) keeps the decode layout's boxes (a row tile's sparse step 1 KB of values, its
// dense step 2 KB, in the same places, so the same TMA maps load it) and orders each box as a wgmma descriptor
// reads a K-major tile without swizzle: core matrices of 8 rows x 16 bytes, 128 bytes each, K's core matrices
// 128 bytes apart, the 8-row groups 512 (sparse) or 1024 (dense) bytes apart.  Every form is checked against the
// register decode kernel (the reference of wgsp_check.cu), then timed in turn with the plain form and cuBLAS,
// `rounds` rounds of `reps` calls each, medians reported: the SS form on the launcher's CTAs (ss), on CTAs of 8 row
// tiles and 256 tokens (ss256), and persistent; on layers of sparse steps only, also on rings of 5 and 6 slots of
// 34 KB instead of 4 of 48 KB (ws_sparse_ring; a "sparse_ring" line).  One line per run; exits 2 on a mismatch.
// The variants measured and dropped (the descriptor's strides swapped, the metadata a step ahead, the boxes reordered
// in the kernel) are in benchmarks/results/wgsd_2026-12-06 dl, dm and dn.
#include <algorithm>
#include <functional>
#include <vector>

#include "ss_layout.h"
#include "wgsp_harness.h"
#include "spense_wgsp.cuh"
#include "spense_wgsd.cuh"

int main(int argc, char** argv) {
  const WgspSetup su(argc, argv, 8, 24576);  // arguments, layout, x, the reference's output (wgsp_harness.h)
  const int N = su.N, K = su.K, M = su.M, reps = su.reps, rounds = argc > 7 ? atoi(argv[7]) : 5;
  if (rounds < 1) { fprintf(stderr, "bad arguments\n"); return 1; }
  const double dfrac = su.dfrac;
  const char axis = su.axis;
  const RandLayout& L = su.L;
  uint4 *sv = su.sv, *dv = su.dv, *svs, *dvs;
  uint32_t* sm = su.sm;
  __nv_bfloat16 *x = su.x, *y0 = su.y0, *y1 = su.y1;
  int *sblk = su.sblk, *dblk = su.dblk, *orow = su.orow;
  const std::vector<uint32_t> hss = ss_layout(L);  // the same values in the SS layout
  CK(cudaMalloc(&svs, L.nsv * 16 + 16)); CK(cudaMalloc(&dvs, L.ndv * 16 + 16));
  CK(cudaMemcpy(svs, hss.data(), L.nsv * 16, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dvs, hss.data() + L.nsv * 4, L.ndv * 16, cudaMemcpyHostToDevice));
  // the library's default prefill path (form 6: CTA size by the launcher, the tail split), then the SS forms on it
  auto plain = [&]() {
    CK((launch_wgsp_ws<WS_STAGES, 0, 1, false, true>)(0, sv, sm, dv, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd,
                                                      L.Ss, L.SdA, L.SdB));
  };
  auto ss1 = [&]() {
    CK((launch_wgsp_ws<WS_STAGES, 0, 1, false, true, WG_N, true>)(0, svs, sm, dvs, x, K, K, M, sblk, dblk, orow, y1,
                                                                   N, L.Bs, L.Bd, L.Ss, L.SdA, L.SdB));
  };
  // ... and on CTAs of 8 row tiles and 256 tokens (m64n256 wgmmas: cuSPARSELt's tile of 128 rows x 256 tokens)
  auto ss256 = [&]() {
    CK((launch_wgsp_ws<WS_STAGES, 1, 1, false, false, 256, true>)(0, svs, sm, dvs, x, K, K, M, sblk, dblk, orow, y1,
                                                                   N, L.Bs, L.Bd, L.Ss, L.SdA, L.SdB));
  };
  // ... and persistent (at most one CTA per SM walking the tiles, the ring running on from tile to tile: a tile's
  // first loads overlap the one before's stores)
  auto ssp = [&]() {
    CK((launch_wgsp_ws<WS_STAGES, 0, 1, true, false, WG_N, true>)(0, svs, sm, dvs, x, K, K, M, sblk, dblk, orow, y1,
                                                                   N, L.Bs, L.Bd, L.Ss, L.SdA, L.SdB));
  };
  // layers of sparse steps only (0 % dense): rings of 5 and 6 slots of 34 KB (ws_sparse_ring) instead of 4 of 48 KB,
  // the plain form at 6 and the SS form at 5 and 6
  const bool sparse_only = L.SdA == 0 && L.Bd == 0;
  auto plain6 = [&]() {
    CK((launch_wgsp_ws<6, 0, 1, false, true>)(0, sv, sm, dv, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd, L.Ss,
                                              L.SdA, L.SdB));
  };
  auto ss5 = [&]() {
    CK((launch_wgsp_ws<5, 0, 1, false, true, WG_N, true>)(0, svs, sm, dvs, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs,
                                                           L.Bd, L.Ss, L.SdA, L.SdB));
  };
  auto ss6 = [&]() {
    CK((launch_wgsp_ws<6, 0, 1, false, true, WG_N, true>)(0, svs, sm, dvs, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs,
                                                           L.Bd, L.Ss, L.SdA, L.SdB));
  };
  std::vector<uint16_t> h0((size_t)M * N), h1(h0.size());
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(h0.data(), y0, h0.size() * 2, cudaMemcpyDeviceToHost));
  auto check = [&](auto&& f) -> double {  // rel. L2 difference to the reference; nonfinite outputs count as 1
    CK(cudaMemset(y1, 0xFF, (size_t)M * N * 2));
    f();
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h1.data(), y1, h1.size() * 2, cudaMemcpyDeviceToHost));
    double num = 0, den = 0;
    for (size_t i = 0; i < h0.size(); ++i) {
      const double u = bf2f(h0[i]), v = bf2f(h1[i]);
      if (!std::isfinite(v)) return 1.0;
      num += (u - v) * (u - v); den += u * u;
    }
    return std::sqrt(num / std::max(den, 1e-30));
  };
  const double r_plain = check(plain), r1 = check(ss1), r256 = check(ss256), rps = check(ssp);
  const double rp6 = sparse_only ? check(plain6) : 0, r5 = sparse_only ? check(ss5) : 0;
  const double r6 = sparse_only ? check(ss6) : 0;

  auto timeit = [&](auto&& f) { return wgsp_time(f, reps); };
  std::function<void()> gemm = nullptr;
#ifdef WGSP_CUBLAS
  const WgspCublas cublas(x, N, K, M);
  gemm = [&cublas] { cublas(); };
#endif
  std::vector<float> tc, tp, ts, t2, t3;  // cuBLAS, plain, SS, SS on 256 tokens, SS persistent: per round, in turn
  std::vector<float> tp6, t5, t6;         // sparse rings: the plain form at 6 slots, the SS form at 5 and 6
  for (int r = 0; r < rounds; ++r) {
    if (gemm) tc.push_back(timeit(gemm));
    tp.push_back(timeit(plain));
    if (r1 < 5e-3) ts.push_back(timeit(ss1));
    if (r256 < 5e-3) t2.push_back(timeit(ss256));
    if (rps < 5e-3) t3.push_back(timeit(ssp));
    if (sparse_only && rp6 < 5e-3) tp6.push_back(timeit(plain6));
    if (sparse_only && r5 < 5e-3) t5.push_back(timeit(ss5));
    if (sparse_only && r6 < 5e-3) t6.push_back(timeit(ss6));
  }
  auto med = [](std::vector<float> v) {
    if (v.empty()) return -1.f;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const float c = med(tc), p = med(tp), s = med(ts), s2 = med(t2), s3 = med(t3);
  auto over = [](float a, float b) { return a > 0 && b > 0 ? a / b : -1.0; };
  printf("ss N=%d K=%d d=%.3f axis=%c M=%d | rel_diff plain %.2e ss %.2e ss256 %.2e ss_persistent %.2e | median of %d "
         "rounds x %d calls: cublas %.1f us, plain %.1f us (%.3fx), ss %.1f us (%.3fx; %.3fx of plain), ss256 %.1f us "
         "(%.3fx; %.3fx of plain), ss_persistent %.1f us (%.3fx; %.3fx of plain)\n", N, K, dfrac, axis, M, r_plain, r1,
         r256, rps, rounds, reps, c, p, over(c, p), s, over(c, s), over(p, s), s2, over(c, s2), over(p, s2), s3,
         over(c, s3), over(p, s3));
  if (sparse_only) {
    const float p6 = med(tp6), s5 = med(t5), s6 = med(t6);
    printf("sparse_ring N=%d K=%d M=%d | rel_diff plain6 %.2e ss5 %.2e ss6 %.2e | cublas %.1f us, plain6 %.1f us "
           "(%.3fx; %.3fx of plain), ss5 %.1f us (%.3fx; %.3fx of ss), ss6 %.1f us (%.3fx; %.3fx of ss)\n", N, K, M,
           rp6, r5, r6, c, p6, over(c, p6), over(p, p6), s5, over(c, s5), over(s, s5), s6, over(c, s6), over(s, s6));
  }
  cudaFree(svs); cudaFree(dvs);
  return r_plain < 5e-3 && r1 < 5e-3 && r256 < 5e-3 && rps < 5e-3 && rp6 < 5e-3 && r5 < 5e-3 && r6 < 5e-3 ? 0 : 2;
}
