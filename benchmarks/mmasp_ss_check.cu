// The bf16 decode kernels on the SS layout (benchmarks/ss_layout.h: the order the prefill's wgmma descriptors read)
// against the same kernels on the fragment order, at M <= 16 (sm_90a; no torch).  With the weights in the SS layout a
// lane takes each 16-byte fragment by four coalesced 4-byte loads (the kernels' SSL, spense_mmasp_common.cuh:
// ldg_ss_frag) instead of one 16-byte load: the same bytes and sectors in four times the load instructions.  One copy
// of the weights for prefill and decode needs the decode kernels to read that layout as fast as their own.
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -I src/spense/runtime/csrc \
//        benchmarks/mmasp_ss_check.cu -o /tmp/mmasp_ss_check
//   /tmp/mmasp_ss_check [N K dense_frac axis(c|r) M RT warps reps rounds]
//
// Kernels, each on both layouts: "ext", the register kernel the extension launches for bf16 at this M and RT
// (spense_mmasp.cu: launch_reg; x_perm at M = 1, else x fragments; the in-order sum; EARLY = 16 at RT = 2 and at
// NT = 2, RT = 2 bound to 256 threads), and at RT = 1 and M > 8 the shared-x kernel, unclamped and clamped ("xs",
// "xs_c"; the extension takes it on big layers).  Each pair must give the same bits (the same sums in the same order);
// ext and xs must agree within bf16 rounding.  Then timed under weight rotation past L2, `rounds` rounds of `reps`
// calls, the kernels in turn, medians, next to a 1 GiB device-to-device copy.  One line per run; exits 2 on a mismatch.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "spense_mmasp_common.cuh"
#include "spense_mmasp_reg.cuh"
#include "spense_mmasp_xs.cuh"
#include "mmasp_x_forms.h"
#include "ss_layout.h"

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
  fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)

struct Args { int N = 24576, K = 4096; double dfrac = 0.25; char axis = 'c'; int M = 1, RT = 1, warps = 8, reps = 50,
              rounds = 5; };

template <int RT, int NT>
int run(const Args& a) {
  std::mt19937 rng(1234);
  const RandLayout L = rand_layout(a.N, a.K, a.dfrac, a.axis, RT, false, 64, 128, rng);
  const std::vector<uint32_t> hss = ss_layout(L);
  const size_t nsv = L.nsv, nsm = L.nsm, ndv = L.ndv, wbytes = L.bytes();
  const int copies = (int)std::max<size_t>(1, std::min<size_t>(16, (512ull << 20) / std::max<size_t>(wbytes, 1) + 1));
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  std::vector<uint16_t> hx((size_t)a.M * a.K);
  for (auto& v : hx) v = f2bf(U(rng));
  const std::vector<uint16_t> hxf = x_fragments_host(hx, a.M, a.K, NT), hxp = x_perm_host(hx, a.M, a.K);
  // the weights twice, fragment order [0] and SS layout [1], `copies` times each; one set of metadata words
  uint4 *sv[2], *dv[2], *xf; uint32_t* sm; __nv_bfloat16 *xp, *y; int *sblk, *dblk, *orow; float* wscale;
  for (int l = 0; l < 2; ++l) {
    const std::vector<uint32_t>& h = l ? hss : L.hv;
    CK(cudaMalloc(&sv[l], nsv * 16 * copies + 16)); CK(cudaMalloc(&dv[l], ndv * 16 * copies + 16));
    for (int c = 0; c < copies; ++c) {
      CK(cudaMemcpy(sv[l] + nsv * c, h.data(), nsv * 16, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(dv[l] + ndv * c, h.data() + nsv * 4, ndv * 16, cudaMemcpyHostToDevice));
    }
  }
  CK(cudaMalloc(&sm, nsm * 4 * copies + 16));
  for (int c = 0; c < copies; ++c) CK(cudaMemcpy(sm + nsm * c, L.hm.data(), nsm * 4, cudaMemcpyHostToDevice));
  auto up = [](const auto& h, auto*& d) {
    CK(cudaMalloc(&d, h.size() * sizeof(h[0]) + 16));
    CK(cudaMemcpy(d, h.data(), h.size() * sizeof(h[0]), cudaMemcpyHostToDevice));
  };
  up(hxf, xf); up(hxp, xp); up(L.sblk, sblk); up(L.dblk, dblk); up(L.orow, orow);
  up(std::vector<float>(a.N, 1.f), wscale);
  CK(cudaMalloc(&y, (size_t)a.M * a.N * 2));
  const dim3 grid(L.Bs + L.Bd), block(32 * a.warps);
  // the extension's register kernel at this M and RT, on layout l, weight copy c
  auto ext = [&](auto ssl, int l, int c) {
    constexpr bool S = decltype(ssl)::value;
    const uint4 *s = sv[l] + nsv * c, *d = dv[l] + ndv * c;
    const uint32_t* m = sm + nsm * c;
    auto go = [&](auto kernel, const __nv_bfloat16* xx, const uint4* xfp) {
      CK(launch_maybe_pdl(kernel, grid, block, 0, false, s, m, d, xx, xfp, a.K, a.M, a.K, sblk, dblk, orow, wscale, y,
                          a.N, L.Bs, L.Bd, L.Ss, L.SdA, L.SdB, 0));
    };
    const __nv_bfloat16* xbf = reinterpret_cast<const __nv_bfloat16*>(xp);
    if (a.M == 1) {
      if constexpr (NT == 1)
        go(spense_mmasp_kernel<RT, 1, 0, REG_U, X_PERM, false, 0, 2, false, true, 0, S>, xbf, nullptr);
    } else if constexpr (RT == 2) {
      go(spense_mmasp_kernel<RT, NT, 0, REG_U, X_FRAGS, false, 1, 2, false, true, 16, S>, xbf, xf);
    } else {
      go(spense_mmasp_kernel<RT, NT, 0, REG_U, X_FRAGS, false, 0, 2, false, true, NT == 2 ? 16 : 0, S>, xbf, xf);
    }
  };
  auto xs = [&](auto ssl, bool clamp, int l, int c) {
    constexpr bool S = decltype(ssl)::value;
    if constexpr (NT == 2)  // (the extension's default takes it at M = 9-16 only)
      CK((launch_xs<NT, false, S>(a.warps, 0, false, sv[l] + nsv * c, sm + nsm * c, dv[l] + ndv * c, xf, sblk, dblk,
                                  orow, wscale, y, a.N, a.M, L.Bs, L.Bd, L.Ss, L.SdA, L.SdB, 1, nullptr, 0, clamp)));
  };
  using F = std::false_type;
  using T = std::true_type;
  const bool with_xs = RT == 1 && NT == 2 && a.warps <= 8;
  // the columns: ext, ext on SS, xs, xs on SS, xs_c, xs_c on SS
  auto col = [&](int i, int c) {
    switch (i) {
      case 0: ext(F{}, 0, c); break;
      case 1: ext(T{}, 1, c); break;
      case 2: xs(F{}, false, 0, c); break;
      case 3: xs(T{}, false, 1, c); break;
      case 4: xs(F{}, true, 0, c); break;
      default: xs(T{}, true, 1, c); break;
    }
  };
  const int ncol = with_xs ? 6 : 2;
  std::vector<std::vector<uint16_t>> out(ncol, std::vector<uint16_t>((size_t)a.M * a.N));
  for (int i = 0; i < ncol; ++i) {
    CK(cudaMemset(y, 0xFF, out[i].size() * 2));  // a row a kernel misses stays NaN
    col(i, 0);
    CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(out[i].data(), y, out[i].size() * 2, cudaMemcpyDeviceToHost));
  }
  bool same = true;
  for (int i = 0; i + 1 < ncol; i += 2) same = same && out[i] == out[i + 1];
  int nonfinite = 0;
  double num = 0, den = 0;  // ext against xs (other sums' order): rel. L2 difference
  for (size_t j = 0; j < out[0].size(); ++j) {
    const double u = bf2f(out[0][j]);
    if (!std::isfinite(u)) ++nonfinite;
    if (with_xs) { const double v = bf2f(out[2][j]); num += (u - v) * (u - v); den += u * u; }
  }
  const double rel = with_xs ? std::sqrt(num / std::max(den, 1e-30)) : 0.0;
  cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  auto timeit = [&](int i) {
    for (int r = 0; r < 3; ++r) col(i, r % copies);
    CK(cudaEventRecord(e0));
    for (int r = 0; r < a.reps; ++r) col(i, r % copies);
    CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1)); CK(cudaGetLastError());
    float ms; CK(cudaEventElapsedTime(&ms, e0, e1)); return 1e3f * ms / a.reps;
  };
  std::vector<std::vector<float>> t(ncol);
  for (int r = 0; r < a.rounds; ++r)
    for (int i = 0; i < ncol; ++i) t[i].push_back(timeit(i));
  std::vector<float> med(ncol);
  for (int i = 0; i < ncol; ++i) { std::sort(t[i].begin(), t[i].end()); med[i] = t[i][t[i].size() / 2]; }
  void *c0, *c1; const size_t cb = 1ull << 30; CK(cudaMalloc(&c0, cb)); CK(cudaMalloc(&c1, cb));
  CK(cudaMemcpy(c1, c0, cb, cudaMemcpyDeviceToDevice));
  CK(cudaEventRecord(e0)); for (int i = 0; i < 5; ++i) CK(cudaMemcpy(c1, c0, cb, cudaMemcpyDeviceToDevice));
  CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1)); float cms; CK(cudaEventElapsedTime(&cms, e0, e1));
  const double copy_gbs = 2.0 * cb * 5 / (cms * 1e-3) / 1e9;
  const char* names[6] = {"ext", "ext_ss", "xs", "xs_ss", "xs_c", "xs_c_ss"};
  printf("ss_decode N=%d K=%d d=%.3f axis=%c M=%d RT=%d warps=%d | same bits %d nonfinite %d rel_ext_xs %.2e | "
         "weights %.1f MB x%d, copy %.0f GB/s | median of %d rounds x %d calls:", a.N, a.K, a.dfrac, a.axis, a.M, RT,
         a.warps, (int)same, nonfinite, rel, wbytes / 1e6, copies, copy_gbs, a.rounds, a.reps);
  for (int i = 0; i < ncol; ++i)
    printf(" %s %.2f us %.0f GB/s%s", names[i], med[i], wbytes / (med[i] * 1e3), i % 2 ? "" : ",");
  for (int i = 0; i + 1 < ncol; i += 2) printf(" | %s over %s %.3fx", names[i + 1], names[i], med[i] / med[i + 1]);
  printf("\n");
  for (int l = 0; l < 2; ++l) { cudaFree(sv[l]); cudaFree(dv[l]); }
  cudaFree(sm); cudaFree(xf); cudaFree(xp); cudaFree(y); cudaFree(sblk); cudaFree(dblk); cudaFree(orow);
  cudaFree(wscale); cudaFree(c0); cudaFree(c1);
  return same && nonfinite == 0 && rel < 2e-3 ? 0 : 2;
}

int main(int argc, char** argv) {
  Args a;
  if (argc > 1) a.N = atoi(argv[1]);
  if (argc > 2) a.K = atoi(argv[2]);
  if (argc > 3) a.dfrac = atof(argv[3]);
  if (argc > 4) a.axis = argv[4][0];
  if (argc > 5) a.M = atoi(argv[5]);
  if (argc > 6) a.RT = atoi(argv[6]);
  if (argc > 7) a.warps = atoi(argv[7]);
  if (argc > 8) a.reps = atoi(argv[8]);
  if (argc > 9) a.rounds = atoi(argv[9]);
  if (a.K % 64 || a.N % (16 * a.RT) || a.M < 1 || a.M > 16 || (a.RT != 1 && a.RT != 2) || a.warps < 1 ||
      a.warps > 16 || (a.RT == 2 && a.M > 1 && a.warps > DET_W256) || a.reps < 1 || a.rounds < 1) {
    fprintf(stderr, "bad arguments\n");
    return 1;
  }
  int rc;
  if (a.RT == 1) rc = a.M <= 8 ? run<1, 1>(a) : run<1, 2>(a);
  else rc = a.M <= 8 ? run<2, 1>(a) : run<2, 2>(a);
  if (rc) fprintf(stderr, "MISMATCH\n");
  return rc;
}
