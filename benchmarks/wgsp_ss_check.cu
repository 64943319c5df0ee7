// The prefill trial form that reads A from shared memory (spense_wgsp_ws_kernel's SSA: the wgmmas take A through a
// descriptor, no load of A into registers before them) against the plain form and cuBLAS, on random bf16 weights
// at M tokens (sm_90a; no torch).
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -I src/spense/runtime/csrc \
//        -DWGSP_CUBLAS -lcublas benchmarks/wgsp_ss_check.cu -o /tmp/wgsp_ss_check
//   /tmp/wgsp_ss_check [N K dense_frac axis(c|r) M reps rounds]
//
// The SS layout (ss_layout below) keeps the decode layout's boxes (a row tile's sparse step 1 KB of values, its
// dense step 2 KB, in the same places, so the same TMA maps load it) and orders each box as a wgmma descriptor
// reads a K-major tile without swizzle: core matrices of 8 rows x 16 bytes, 128 bytes each, K's core matrices
// 128 bytes apart, the 8-row groups 512 (sparse) or 1024 (dense) bytes apart.  Every form is checked against the
// register decode kernel (the reference of wgsp_check.cu), then timed in turn with the plain form and cuBLAS,
// `rounds` rounds of `reps` calls each, medians reported: the SS form on the launcher's CTAs (ss), on CTAs of 8 row
// tiles and 256 tokens (ss256), and persistent.  One line per run; exits 2 on a mismatch.  The variants measured
// and dropped (the descriptor's strides swapped, the metadata a step ahead, the boxes reordered in the kernel) are in
// benchmarks/results/wgsd_2026-12-06 dl, dm and dn.
#include <algorithm>
#include <functional>
#include <vector>

#include "wgsp_harness.h"
#include "spense_wgsp.cuh"
#include "spense_wgsd.cuh"

// One box of F fragments (F = 2: a sparse step's two k32 halves of kept values; 4: a dense step's four k16
// fragments), each 512 bytes in mma's A-fragment order (lane 4g + c, 16 bytes: words (row g, cols 2c..2c+1),
// (g + 8, 2c..), (g, 2c + 8..), (g + 8, 2c + 8..) of the fragment's 16 x 16), reordered into core matrices: row r,
// column k of the box's 16 x 16F at byte (r / 8) 256 F + (k / 8) 128 + (r % 8) 16 + (k % 8) 2.
inline void ss_box(const uint32_t* in, uint32_t* out, int F) {
  for (int f = 0; f < F; ++f)
    for (int lane = 0; lane < 32; ++lane)
      for (int w = 0; w < 4; ++w) {
        const int g = lane >> 2, c = lane & 3, r = g + 8 * (w & 1), k = 16 * f + 2 * c + 8 * (w >> 1);
        const int byte = (r / 8) * 256 * F + (k / 8) * 128 + (r % 8) * 16 + (k % 8) * 2;
        out[byte / 4] = in[f * 128 + lane * 4 + w];
      }
}
// the values of a layout (sparse boxes of 1 KB, then dense boxes of 2 KB) in the SS layout
inline std::vector<uint32_t> ss_layout(const RandLayout& L) {
  std::vector<uint32_t> out(L.hv.size());
  for (size_t b = 0; b < L.nsv / 64; ++b) ss_box(L.hv.data() + b * 256, out.data() + b * 256, 2);
  for (size_t b = 0; b < L.ndv / 128; ++b)
    ss_box(L.hv.data() + L.nsv * 4 + b * 512, out.data() + L.nsv * 4 + b * 512, 4);
  return out;
}

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

  auto timeit = [&](auto&& f) { return wgsp_time(f, reps); };
  std::function<void()> gemm = nullptr;
#ifdef WGSP_CUBLAS
  const WgspCublas cublas(x, N, K, M);
  gemm = [&cublas] { cublas(); };
#endif
  std::vector<float> tc, tp, ts, t2, t3;  // cuBLAS, plain, SS, SS on 256 tokens, SS persistent: per round, in turn
  for (int r = 0; r < rounds; ++r) {
    if (gemm) tc.push_back(timeit(gemm));
    tp.push_back(timeit(plain));
    if (r1 < 5e-3) ts.push_back(timeit(ss1));
    if (r256 < 5e-3) t2.push_back(timeit(ss256));
    if (rps < 5e-3) t3.push_back(timeit(ssp));
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
  cudaFree(svs); cudaFree(dvs);
  return r_plain < 5e-3 && r1 < 5e-3 && r256 < 5e-3 && rps < 5e-3 ? 0 : 2;
}
