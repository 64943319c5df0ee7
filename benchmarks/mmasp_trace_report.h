// The harness's report of one launch's timeline (benchmarks/mmasp_bulk_check.cu built with -DSPENSE_MMASP_TRACE): the
// kernel launched by f writes six clock readings a CTA into tr (spense_mmasp_reg.cuh: mmasp_trace); this prints one
// "trace" line of their percentiles over the CTAs, in us from the first CTA's entry.
#pragma once
#ifdef SPENSE_MMASP_TRACE
#include <cuda_runtime.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define TR_CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
  fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)

inline double trace_pct(std::vector<double> v, double q) {
  if (v.empty()) return -1.0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, (size_t)(q * (v.size() - 1) + 0.5))];
}

// f(copy, y): one launch on weight copy `copy`; three untraced launches first, on other copies; G CTAs
template <class F, class Y>
void trace_report(F&& f, const char* name, int G, int copies, Y* y, int N, int K, int M, int warps, size_t wbytes,
                  unsigned long long* tr) {
  unsigned long long* none = nullptr;
  auto pct = trace_pct;
  for (int i = 0; i < 3; ++i) f(i % copies, y);
  TR_CK(cudaDeviceSynchronize());
  TR_CK(cudaMemset(tr, 0, (size_t)G * 6 * 8));
  TR_CK(cudaMemcpyToSymbol(g_mmasp_trace, &tr, sizeof(tr)));
  f(3 % copies, y);
  TR_CK(cudaDeviceSynchronize());
  TR_CK(cudaMemcpyToSymbol(g_mmasp_trace, &none, sizeof(none)));
  std::vector<unsigned long long> h((size_t)G * 6);
  TR_CK(cudaMemcpy(h.data(), tr, h.size() * 8, cudaMemcpyDeviceToHost));
  unsigned long long t0 = ~0ull, t_end = 0, last_entry = 0;
  for (int c = 0; c < G; ++c) {
    t0 = std::min(t0, h[6 * c]);
    t_end = std::max(t_end, h[6 * c + 4]);
    last_entry = std::max(last_entry, h[6 * c]);
  }
  std::vector<double> entry, wait, first, body, epi, dur;
  std::vector<int> per_sm(1024, 0);
  for (int c = 0; c < G; ++c) {
    const unsigned long long* r = &h[6 * c];
    entry.push_back((r[0] - t0) * 1e-3);
    wait.push_back((r[1] - r[0]) * 1e-3);
    if (r[2]) first.push_back((r[2] - r[1]) * 1e-3);
    body.push_back((r[3] - r[1]) * 1e-3);
    epi.push_back((r[4] - r[3]) * 1e-3);
    dur.push_back((r[4] - r[0]) * 1e-3);
    ++per_sm[std::min<unsigned long long>(r[5], 1023)];
  }
  int sms = 0, most = 0;
  for (int n : per_sm) { sms += n > 0; most = std::max(most, n); }
  const double span = (t_end - t0) * 1e-3;
  printf("trace %s N=%d K=%d M=%d warps=%d CTAs=%d on %d SMs (at most %d an SM) | span %.2f us, %.0f GB/s | "
         "entry p50 %.2f p90 %.2f max %.2f | wait for x p50 %.2f | first round p50 %.2f p90 %.2f | "
         "entry to last MMA p50 %.2f | sum and store p50 %.2f p90 %.2f | CTA p50 %.2f max %.2f | "
         "last entry to end %.2f us\n",
         name, N, K, M, warps, G, sms, most, span, wbytes / (span * 1e3), pct(entry, .5), pct(entry, .9),
         pct(entry, 1), pct(wait, .5), pct(first, .5), pct(first, .9), pct(body, .5), pct(epi, .5), pct(epi, .9),
         pct(dur, .5), pct(dur, 1), (t_end - last_entry) * 1e-3);
}
#endif
