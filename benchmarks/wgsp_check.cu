// Standalone check and timing of the Spense prefill GEMMs on sparse warpgroup MMA (sm_90a; no torch):
// "wgsp" (spense_wgsp.cuh: one warpgroup per CTA, each step waited for), "wgsp_ws" (spense_wgsp_ws.cuh: a
// TMA producer thread and two consumer warpgroups, an mbarrier ring of 4 slots, one step in flight; 16 row
// tiles per CTA where the row tiles of each kind come in sixteens, else 8), "wgsp_ws1" (the same with 8 row
// tiles per CTA), "wgsp_wsc" (clusters of two CTAs sharing A by TMA multicast) and "wgsp_ws256" (8 row tiles and
// 256 tokens per CTA, m64n256 wgmmas; timed on an "nt256" line), on random bf16 weights
// in the decode kernels' layout at 25 % dense (cols or rows) and M tokens of x.  The reference is the
// register decode kernel (spense_mmasp_kernel, x read directly, checked against float64 by the GPU tests)
// run on slices of 64 tokens; then all are timed, next to cuBLAS's dense bf16 GEMM of the same shape where
// the binary was built with it (-DWGSP_CUBLAS -lcublas).
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -I src/spense/runtime/csrc \
//        [-DWGSP_CUBLAS -I<cublas include> -L<cublas lib> -lcublas] benchmarks/wgsp_check.cu -o /tmp/wgsp_check
//   [WGSP_NO_CLUSTER=1] /tmp/wgsp_check [N K dense_frac axis(c|r) M reps]
//
// One line per run: shape, rel. L2 difference to the reference and nonfinite outputs (the worst of the
// kernels), µs and dense-equivalent TFLOP/s (2 M N K / time) of wgsp, wgsp_ws, wgsp_ws1, wgsp_wsc and cuBLAS,
// and the fastest kernel's speed-up over cuBLAS; then the operand bytes (x tiles and A boxes, as the kernels
// load them) per second delivered into shared memory by wgsp_ws, wgsp_ws1 and wgsp_wsc, and for wgsp_wsc also
// read out of L2 (its A boxes once per cluster): a rate that stays put across the variants names the limit
// (e2e v16's wgsp_ws moved 7.5-8.8 TB/s on every shape and dense fraction).  At M <= 64 also the decode
// form (launch_wgsd: every K split checked, the launcher's one timed with the weights rotated past L2) on a
// "decode" line: its worst rel. difference, µs and GB/s of weight bytes against a 1 GiB device-to-device
// copy.  WGSP_NO_DECODE=1 leaves the decode form out, WGSP_NO_CLUSTER=1 every cluster launch (wgsp_wsc,
// decode KS > 1).  Exits 2 on a mismatch.
#include <algorithm>

#include "wgsp_harness.h"
#include "spense_wgsp.cuh"
#include "spense_wgsd.cuh"

int main(int argc, char** argv) {
  const WgspSetup su(argc, argv, 4, 12288);  // arguments, layout, x, the reference's output (wgsp_harness.h)
  const int N = su.N, K = su.K, M = su.M, reps = su.reps;
  const double dfrac = su.dfrac;
  const char axis = su.axis;
  const RandLayout& L = su.L;
  uint4 *sv = su.sv, *dv = su.dv;
  uint32_t* sm = su.sm;
  __nv_bfloat16 *x = su.x, *y0 = su.y0, *y1 = su.y1;
  int *sblk = su.sblk, *dblk = su.dblk, *orow = su.orow;
  auto wgsp = [&]() {
    CK(launch_wgsp(0, sv, sm, dv, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd, L.Ss, L.SdA, L.SdB));
  };
  const bool with_ws = L.Bs % 8 == 0 && L.Bd % 8 == 0, with16 = L.Bs % 16 == 0 && L.Bd % 16 == 0;
  // wgsp_ws: 16 row tiles per CTA wherever the rows allow (the launcher's own choice, TPC = 0, also weighs the
  // grid's waves: it takes 8 for small grids), else 8
  auto wgsp_ws = [&]() {
    if (with16)
      CK((launch_wgsp_ws<WS_STAGES, 2>)(0, sv, sm, dv, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd, L.Ss, L.SdA,
                                        L.SdB));
    else
      CK((launch_wgsp_ws<WS_STAGES, 1>)(0, sv, sm, dv, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd, L.Ss, L.SdA,
                                        L.SdB));
  };
  auto wgsp_wsc = [&]() {  // clusters of two CTAs on neighbouring token tiles, A multicast to both
    if (with16)
      CK((launch_wgsp_ws<WS_STAGES, 2, 2>)(0, sv, sm, dv, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd, L.Ss,
                                           L.SdA, L.SdB));
    else
      CK((launch_wgsp_ws<WS_STAGES, 1, 2>)(0, sv, sm, dv, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd, L.Ss,
                                           L.SdA, L.SdB));
  };
  auto wgsp_ws256 = [&]() {  // 8 row tiles and 256 tokens per CTA (m64n256 wgmmas)
    CK((launch_wgsp_ws<WS_STAGES, 1, 1, false, false, 256>)(0, sv, sm, dv, x, K, K, M, sblk, dblk, orow, y1, N,
                                                            L.Bs, L.Bd, L.Ss, L.SdA, L.SdB));
  };
  auto wgsp_ws1 = [&]() {  // 8 row tiles per CTA (one 64-row block per consumer) where wgsp_ws takes 16
    CK((launch_wgsp_ws<WS_STAGES, 1>)(0, sv, sm, dv, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd, L.Ss, L.SdA,
                                    L.SdB));
  };
  std::vector<uint16_t> h0((size_t)M * N), h1(h0.size());
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(h0.data(), y0, h0.size() * 2, cudaMemcpyDeviceToHost));
  double rel = 0;
  int bad = 0;
  auto check = [&](auto&& f, const char* name) -> double {
    CK(cudaMemset(y1, 0xFF, (size_t)M * N * 2));  // a missed output shows as nonfinite
    f();
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h1.data(), y1, h1.size() * 2, cudaMemcpyDeviceToHost));
    double num = 0, den = 0;
    int nb = 0;
    for (size_t i = 0; i < h0.size(); ++i) {
      const double u = bf2f(h0[i]), v = bf2f(h1[i]);
      if (!std::isfinite(v)) { ++nb; continue; }
      num += (u - v) * (u - v); den += u * u;
    }
    const double r = std::sqrt(num / std::max(den, 1e-30));
    if (r > 5e-3 || nb) fprintf(stderr, "%s: rel_diff %.2e nonfinite %d\n", name, r, nb);
    rel = std::max(rel, r); bad += nb;
    return r;
  };
  check(wgsp, "wgsp");
  if (with_ws) check(wgsp_ws, "wgsp_ws");
  if (with_ws) check(wgsp_ws1, "wgsp_ws1");
  if (with_ws) check(wgsp_ws256, "wgsp_ws256");
  const bool with_wsc = with_ws && !getenv("WGSP_NO_CLUSTER");  // WGSP_NO_CLUSTER=1: leave the clusters out
  if (with_wsc) check(wgsp_wsc, "wgsp_wsc");
  // the decode form at M <= 64 (launch_wgsd): every K split checked (KS = 0: the launcher's choice; with
  // WGSP_NO_CLUSTER KS = 1 alone), unless WGSP_NO_DECODE is set
  const bool with_wsd = M <= 64 && with_ws && !getenv("WGSP_NO_DECODE"), wsd_clusters = !getenv("WGSP_NO_CLUSTER");
  auto wsd = [&](int ks) {
#define WSD_(KS_) CK((launch_wgsd<WSD_STAGES, KS_>)(0, sv, sm, dv, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd, \
                                                 L.Ss, L.SdA, L.SdB))
    switch (ks) { case 1: WSD_(1); break; case 2: WSD_(2); break; case 4: WSD_(4); break; case 8: WSD_(8); break;
                  default: WSD_(0); }
#undef WSD_
  };
  const char* wsd_names[5] = {"wgsd_auto", "wgsd_ks1", "wgsd_ks2", "wgsd_ks4", "wgsd_ks8"};
  double rel_wsd = 0;
  if (with_wsd)
    for (int i = wsd_clusters ? 0 : 1; i < (wsd_clusters ? 5 : 2); ++i)
      rel_wsd = std::max(rel_wsd, check([&] { wsd(i == 0 ? 0 : 1 << (i - 1)); }, wsd_names[i]));
  // the stream-K form: its workspace for one CTA per SM, counts zeroed once (each launch leaves them zeroed)
  const long long sk_floats = 2LL * std::max(1, ws_sm_count()) * WSD_PART, sk_ints = (L.Bs + L.Bd) / 8 + 1;
  float* sk_ws; int* sk_cnt;
  CK(cudaMalloc(&sk_ws, sk_floats * 4)); CK(cudaMalloc(&sk_cnt, sk_ints * 4)); CK(cudaMemset(sk_cnt, 0, sk_ints * 4));
  const int sk_default = 1;  // the library's default variant (spense.runtime.wgsp.wgsd_exp): the 'decode' lines
  int sk_grid = 0, sk_exp = sk_default;  // CTAs of the stream-K form (0: one per SM); its variant (EXP bits)
  unsigned long long* sk_trace = nullptr;
  auto wsd_sk = [&](const uint4* v, const uint32_t* m_, const uint4* d) {
    CK(launch_wgsd_sk_variant(sk_exp, false, (cudaStream_t)0, v, m_, d, x, K, K, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd,
                              L.Ss, L.SdA, L.SdB, sk_ws, sk_floats, sk_cnt, sk_ints, sk_grid, sk_trace,
                              (sk_exp & 4) != 0));
  };
  if (with_wsd) {
    std::vector<uint16_t> bits0;  // variant 0's: every variant on tiles of 64 adds the same parts in the same order
    for (int e : {0, 1, 2, 3, 7, 9, 15, 17, 33, 49, 1027, 1031}) {  // each: against the reference, then its bits again
      sk_exp = e;
      rel_wsd = std::max(rel_wsd, check([&] { wsd_sk(sv, sm, dv); }, "wgsd_sk"));
      std::vector<uint16_t> first(h1);
      check([&] { wsd_sk(sv, sm, dv); }, "wgsd_sk again");
      if (first != h1) { fprintf(stderr, "wgsd_sk (variant %d): a second launch gave other bits\n", e); ++bad; }
      if (e == 0) bits0 = h1;
      else if (wsd_nt(M, (e & 15) != 1 || (e & 16) != 0) == 64 && h1 != bits0) {  // (1, 33: tiles of M's size)
        fprintf(stderr, "wgsd_sk (variant %d): other bits than variant 0\n", e); ++bad;
      }
    }
  }
  sk_exp = sk_default;

  auto timeit = [&](auto&& f) { return wgsp_time(f, reps); };
  const double flop = 2.0 * M * N * K;
  const float t_wg = timeit(wgsp), t_ws = with_ws ? timeit(wgsp_ws) : -1.f;
  const float t_ws1 = with_ws ? timeit(wgsp_ws1) : -1.f;
  const float t_wsc = with_wsc ? timeit(wgsp_wsc) : -1.f;
  // the 256-token form, then wgsp_ws again (the power cap moves the clock as a run goes on)
  const float t_256 = with_ws ? timeit(wgsp_ws256) : -1.f, t_ws2 = with_ws ? timeit(wgsp_ws) : -1.f;
  float t_cb = -1.f;
#ifdef WGSP_CUBLAS
  {
    const WgspCublas gemm(x, N, K, M);
    t_cb = timeit(gemm);
  }
#endif
  float t_best = t_wg;
  for (float t : {t_ws, t_ws1, t_wsc})
    if (t > 0) t_best = std::min(t_best, t);
  auto tf = [&](float t) { return t > 0 ? flop / (t * 1e6) : -1.0; };
  // operand bytes of the TMA kernels: A (values + metadata or dense fragments) per token tile, independent of
  // the CTA size; x (WG_N tokens x 64 columns of bf16 per step) once per CTA and step
  const double a_tok = (double)L.Bs * (1152.0 * L.Ss + 2048.0 * L.SdA) + 2048.0 * L.Bd * L.SdB;
  const long ntok = (M + WG_N - 1) / WG_N;
  auto x_bytes = [&](int tiles, long nt) {
    return (double)nt * WG_N * 128 * ((double)L.Bs / tiles * (L.Ss + L.SdA) + (double)L.Bd / tiles * L.SdB);
  };
  const int tiles_ws = L.Bs % 16 == 0 && L.Bd % 16 == 0 && !ws_half_ctas_win(M, L.Bs + L.Bd, 1) ? 16 : 8;
  const int tiles_wsc = L.Bs % 16 == 0 && L.Bd % 16 == 0 && !ws_half_ctas_win(M, L.Bs + L.Bd, 2) ? 16 : 8;
  const long ntok2 = (ntok + 1) / 2 * 2;  // wgsp_wsc pads the token tiles to pairs
  auto tbs = [](double bytes, float t) { return t > 0 ? bytes / (t * 1e6) : -1.0; };
  printf("N=%d K=%d d=%.3f axis=%c M=%d | rel_diff %.2e nonfinite %d | wgsp %.2f us %.0f TFLOP/s | "
         "wgsp_ws %.2f us %.0f TFLOP/s | wgsp_ws1 %.2f us %.0f TFLOP/s | wgsp_wsc %.2f us %.0f TFLOP/s | "
         "cublas %.2f us %.0f TFLOP/s | best/cublas %.3fx\n",
         N, K, dfrac, axis, M, rel, bad, t_wg, tf(t_wg), t_ws, tf(t_ws), t_ws1, tf(t_ws1), t_wsc, tf(t_wsc), t_cb,
         tf(t_cb), t_cb > 0 ? t_cb / t_best : -1.0);
  if (with_ws)  // the 256-token form apart, so that the line above keeps its fields
    printf("nt256 N=%d K=%d d=%.3f axis=%c M=%d | wgsp_ws256 %.2f us %.0f TFLOP/s | wgsp_ws again %.2f us | over "
           "wgsp_ws %.3fx / %.3fx | over cublas %.3fx\n", N, K, dfrac, axis, M, t_256, tf(t_256), t_ws2, t_ws / t_256,
           t_ws2 / t_256, t_cb > 0 ? t_cb / t_256 : -1.0);
  if (with_ws)
    printf("operands N=%d K=%d d=%.3f axis=%c M=%d | into shared memory: wgsp_ws (%d tiles) %.2f TB/s, wgsp_ws1 "
           "%.2f TB/s, wgsp_wsc (%d tiles) %.2f TB/s (out of L2 %.2f TB/s)\n", N, K, dfrac, axis, M, tiles_ws,
           tbs(x_bytes(tiles_ws, ntok) + a_tok * ntok, t_ws), tbs(x_bytes(8, ntok) + a_tok * ntok, t_ws1), tiles_wsc,
           tbs(x_bytes(tiles_wsc, ntok2) + a_tok * ntok2, t_wsc),
           tbs(x_bytes(tiles_wsc, ntok2) + a_tok * ntok2 / 2, t_wsc));
  if (with_wsd) {  // the decode form timed with its weights rotated past L2, next to a device-to-device copy
    const int ks = wsd_clusters ? wsd_split((L.Bs + L.Bd) / 8) : 1;
    const size_t wbytes = L.bytes();
    const int copies = (int)std::max<size_t>(1, std::min<size_t>(16, (512ull << 20) / std::max<size_t>(wbytes, 1) + 1));
    uint4 *svc, *dvc; uint32_t* smc;
    CK(cudaMalloc(&svc, L.nsv * 16 * copies + 16)); CK(cudaMalloc(&dvc, L.ndv * 16 * copies + 16));
    CK(cudaMalloc(&smc, L.nsm * 4 * copies + 16));
    std::vector<WgMaps> maps(copies);
    for (int c = 0; c < copies; ++c) {
      CK(cudaMemcpy(svc + L.nsv * c, sv, L.nsv * 16, cudaMemcpyDeviceToDevice));
      CK(cudaMemcpy(dvc + L.ndv * c, dv, L.ndv * 16, cudaMemcpyDeviceToDevice));
      CK(cudaMemcpy(smc + L.nsm * c, sm, L.nsm * 4, cudaMemcpyDeviceToDevice));
      if (!wgsp_maps(&maps[c], 8, wsd_xrows(M), svc + L.nsv * c, smc + L.nsm * c, dvc + L.ndv * c, x, K, K, M,
                     L.Bs, L.Bd, L.Ss, L.SdA, L.SdB)) { fprintf(stderr, "no tensor map\n"); exit(1); }
    }
    int it = 0, ks_run = ks, s_run = WSD_STAGES;
    auto run = [&]() {
      const WgMaps& m = maps[it++ % copies];
#define RUN_(S_, KS_) CK((run_wgsp_ws<S_, 1, 1, 64, KS_>)(0, m, M, sblk, dblk, orow, y1, N, L.Bs, L.Bd, L.Ss, \
                                                          L.SdA, L.SdB))
      if (s_run == WSD_STAGES) {
        switch (ks_run) { case 1: RUN_(WSD_STAGES, 1); break; case 2: RUN_(WSD_STAGES, 2); break;
                          case 4: RUN_(WSD_STAGES, 4); break; default: RUN_(WSD_STAGES, 8); }
      } else {
        switch (ks_run) { case 1: RUN_(WS_STAGES, 1); break; case 2: RUN_(WS_STAGES, 2); break;
                          case 4: RUN_(WS_STAGES, 4); break; default: RUN_(WS_STAGES, 8); }
      }
#undef RUN_
    };
    rel_wsd = std::max(rel_wsd, check(run, "wgsd_timed"));  // the timed path itself, on the first copy's maps
    it = 0;
    const float t_wsd = timeit(run);
    int it_sk = 0;
    auto run_sk = [&] {
      const int c = it_sk++ % copies;
      wsd_sk(svc + L.nsv * c, smc + L.nsm * c, dvc + L.ndv * c);
    };
    const float t_sk = timeit(run_sk);
    if (getenv("WGSD_SWEEP") && with_wsd) {
      // stream-K on fewer CTAs, then one launch's timeline (clocks per CTA: entry, first operands in, last MMAs
      // done, exit), to see where its time goes
      printf("sksweep N=%d K=%d d=%.3f axis=%c M=%d | us by variant (SPENSE_WGSD_EXP) and CTAs:", N, K, dfrac,
             axis, M);
      for (int e : {0, 1, 33, 17, 7, 1031})
        for (int g : {0, 96}) {
          sk_exp = e;
          sk_grid = g;
          printf(" e%d/G%d %.2f", e, g, timeit(run_sk));
        }
      sk_grid = 0;
      sk_exp = sk_default;
      printf("\n");
      const int G = wsd_sk_grid(SkGeo(L.Bs, L.Bd, L.Ss, L.SdA, L.SdB, 1));
      for (int e : {1, 7, 1031}) {  // the timelines of the default (1), of 7 and of 1031 (two early slots)
        sk_exp = e;
        CK(cudaMalloc(&sk_trace, (size_t)G * 4 * 8));
        CK(cudaMemset(sk_trace, 0, (size_t)G * 4 * 8));
        for (int r = 0; r < 3; ++r) run_sk();  // the last of three back-to-back launches
        CK(cudaDeviceSynchronize());
        std::vector<unsigned long long> tr((size_t)G * 4);
        CK(cudaMemcpy(tr.data(), sk_trace, tr.size() * 8, cudaMemcpyDeviceToHost));
        CK(cudaFree(sk_trace));
        sk_trace = nullptr;
        unsigned long long t0 = ~0ull, t3 = 0;
        std::vector<double> fill, strm, tail, skew;
        for (int c = 0; c < G; ++c) {
          t0 = std::min(t0, tr[4 * c]);
          t3 = std::max(t3, tr[4 * c + 3]);
        }
        for (int c = 0; c < G; ++c) {
          skew.push_back((tr[4 * c] - t0) * 1e-3); fill.push_back((tr[4 * c + 1] - tr[4 * c]) * 1e-3);
          strm.push_back((tr[4 * c + 2] - tr[4 * c + 1]) * 1e-3); tail.push_back((t3 - tr[4 * c + 2]) * 1e-3);
        }
        auto q = [](std::vector<double> v, double f) {
          std::sort(v.begin(), v.end());
          return v[(size_t)(f * (v.size() - 1))];
        };
        printf("sktrace N=%d K=%d M=%d G=%d e%d | span %.2f us; CTA entry skew p50 %.2f max %.2f; first operands "
               "after entry p50 %.2f max %.2f; streaming p50 %.2f max %.2f; last MMAs to the kernel's end p50 %.2f max "
               "%.2f\n", N, K, M, G, e, (t3 - t0) * 1e-3, q(skew, .5), q(skew, 1), q(fill, .5), q(fill, 1), q(strm, .5),
               q(strm, 1), q(tail, .5), q(tail, 1));
      }
      sk_exp = sk_default;
    }
    if (getenv("WGSD_SWEEP") && wsd_clusters) {  // every K split with both ring depths: what the launcher picks from
      printf("sweep N=%d K=%d d=%.3f axis=%c M=%d | us by ring slots and K split:", N, K, dfrac, axis, M);
      for (int st : {WS_STAGES, WSD_STAGES})
        for (int k : {1, 2, 4, 8}) {
          s_run = st; ks_run = k; it = 0;
          if (st == WS_STAGES) rel_wsd = std::max(rel_wsd, check(run, "wgsd_sweep"));
          printf(" S%d/ks%d %.2f", st, k, timeit(run));
        }
      printf("\n");
      s_run = WSD_STAGES; ks_run = ks;
    }
    void *ca, *cb;
    CK(cudaMalloc(&ca, 1ull << 30)); CK(cudaMalloc(&cb, 1ull << 30));
    const float t_copy = timeit([&] { CK(cudaMemcpyAsync(cb, ca, 1ull << 30, cudaMemcpyDeviceToDevice)); });
    const double copy_gbs = 2.0 * (1ull << 30) / (t_copy * 1e3), gbs = wbytes / (t_wsd * 1e3);
    const double gbs_sk = wbytes / (t_sk * 1e3);
    printf("decode N=%d K=%d d=%.3f axis=%c M=%d | wgsd rel_diff %.2e | ks=%d %.2f us %.0f GB/s of weights (%.0f %% "
           "of the copy's %.0f GB/s) | stream-K (variant %d) %.2f us %.0f GB/s (%.0f %%), %d copies rotated\n", N, K,
           dfrac, axis, M, rel_wsd, ks, t_wsd, gbs, 100.0 * gbs / copy_gbs, copy_gbs, sk_default, t_sk, gbs_sk,
           100.0 * gbs_sk / copy_gbs, copies);
    cudaFree(ca); cudaFree(cb); cudaFree(svc); cudaFree(dvc); cudaFree(smc);
  }
  cudaFree(sk_ws); cudaFree(sk_cnt);
  if (rel > 5e-3 || bad) { fprintf(stderr, "MISMATCH\n"); return 2; }
  return 0;
}
