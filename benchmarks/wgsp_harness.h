// What the prefill harnesses share (benchmarks/wgsp_check.cu, wgsp_ss_check.cu; no torch): their first six
// arguments, a random layout at RT = 1 and M tokens of x on the device, the reference (the register decode kernel,
// 64 tokens at a time, checked against float64 by the GPU tests), and cuBLAS's bf16 GEMM of the same shape where the
// binary is built with it (-DWGSP_CUBLAS -lcublas).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "spense_mmasp_common.cuh"
#include "spense_mmasp_reg.cuh"
#include "spense_layout_gen.h"
#ifdef WGSP_CUBLAS
#include <cublas_v2.h>
#endif

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
  fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)

// [N K dense_frac axis(c|r) M reps] over the defaults, a random layout of N x K at dense_frac (its row tiles of each
// kind in multiples of `tiles`, else it exits 1), x (M x K bf16), all on the device; y0 = the reference's output
struct WgspSetup {
  int N = 12288, K = 4096, M = 2048, reps = 20;
  double dfrac = 0.25;
  char axis = 'c';
  RandLayout L;
  uint4 *sv = nullptr, *dv = nullptr;
  uint32_t* sm = nullptr;
  __nv_bfloat16 *x = nullptr, *y0 = nullptr, *y1 = nullptr;
  int *sblk = nullptr, *dblk = nullptr, *orow = nullptr;

  WgspSetup(const WgspSetup&) = delete;  // one owner of the device buffers
  WgspSetup& operator=(const WgspSetup&) = delete;
  WgspSetup(int argc, char** argv, int tiles, int n_default) : N(n_default) {
    if (argc > 1) N = atoi(argv[1]);
    if (argc > 2) K = atoi(argv[2]);
    if (argc > 3) dfrac = atof(argv[3]);
    if (argc > 4) axis = argv[4][0];
    if (argc > 5) M = atoi(argv[5]);
    if (argc > 6) reps = atoi(argv[6]);
    if (K % 64 || N % 64 || M < 1 || reps < 1) { fprintf(stderr, "bad arguments\n"); exit(1); }
    std::mt19937 rng(1234);
    L = rand_layout(N, K, dfrac, axis, 1, false, 64, 128, rng);
    if (L.Bs % tiles || L.Bd % tiles) {
      fprintf(stderr, "row tiles of each kind must come in %s\n", tiles == 4 ? "fours" : "eights");
      exit(1);
    }
    std::uniform_real_distribution<float> U(-1.f, 1.f);
    std::vector<uint16_t> hx((size_t)M * K);
    for (auto& v : hx) v = f2bf(U(rng));
    CK(cudaMalloc(&sv, L.nsv * 16 + 16)); CK(cudaMalloc(&dv, L.ndv * 16 + 16)); CK(cudaMalloc(&sm, L.nsm * 4 + 16));
    CK(cudaMemcpy(sv, L.hv.data(), L.nsv * 16, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dv, L.hv.data() + L.nsv * 4, L.ndv * 16, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(sm, L.hm.data(), L.nsm * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&x, hx.size() * 2)); CK(cudaMemcpy(x, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&y0, (size_t)M * N * 2)); CK(cudaMalloc(&y1, (size_t)M * N * 2));
    CK(cudaMalloc(&sblk, L.sblk.size() * 4)); CK(cudaMalloc(&dblk, L.dblk.size() * 4));
    CK(cudaMalloc(&orow, L.orow.size() * 4));
    CK(cudaMemcpy(sblk, L.sblk.data(), L.sblk.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dblk, L.dblk.data(), L.dblk.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(orow, L.orow.data(), L.orow.size() * 4, cudaMemcpyHostToDevice));
    for (int t0 = 0; t0 < M; t0 += 64)  // the reference: the register decode kernel, 4 warps, 64 tokens at a time
      spense_mmasp_kernel<1, 8, false, REG_U, X_DIRECT><<<L.Bs + L.Bd, 128>>>(
          sv, sm, dv, x + (size_t)t0 * K, nullptr, K, std::min(64, M - t0), K, sblk, dblk, orow, nullptr,
          y0 + (size_t)t0 * N, N, L.Bs, L.Bd, L.Ss, L.SdA, L.SdB, 0);
    CK(cudaGetLastError());
  }
  ~WgspSetup() {
    cudaFree(sv); cudaFree(dv); cudaFree(sm); cudaFree(x); cudaFree(y0); cudaFree(y1); cudaFree(sblk);
    cudaFree(dblk); cudaFree(orow);
  }
};

// µs a call of f: three warm-up calls, then `reps` calls between two events
template <typename F>
inline float wgsp_time(F&& f, int reps) {
  static cudaEvent_t e0 = nullptr, e1 = nullptr;
  if (!e0) { CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1)); }
  for (int i = 0; i < 3; ++i) f();
  CK(cudaEventRecord(e0));
  for (int i = 0; i < reps; ++i) f();
  CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1)); CK(cudaGetLastError());
  float ms;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  return 1e3f * ms / reps;
}

#ifdef WGSP_CUBLAS
// y (M x N, row-major) = x (M x K) W^T by cuBLAS, W dense N x K: column-major N x M = W^T^T x^T
struct WgspCublas {
  int N, K, M;
  const __nv_bfloat16* x;
  __nv_bfloat16 *w = nullptr, *yc = nullptr;
  cublasHandle_t h = nullptr;
  WgspCublas(const WgspCublas&) = delete;  // one owner of the buffers and the handle
  WgspCublas& operator=(const WgspCublas&) = delete;
  WgspCublas(const __nv_bfloat16* x_, int n, int k, int m) : N(n), K(k), M(m), x(x_) {
    CK(cudaMalloc(&w, (size_t)N * K * 2)); CK(cudaMalloc(&yc, (size_t)M * N * 2));
    CK(cudaMemset(w, 0x3C, (size_t)N * K * 2));
    cublasCreate(&h);
  }
  void operator()() const {
    const float alpha = 1.f, beta = 0.f;
    if (cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, CUDA_R_16BF, K, x, CUDA_R_16BF, K, &beta, yc,
                     CUDA_R_16BF, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS) {
      fprintf(stderr, "cublasGemmEx failed\n"); exit(1);
    }
  }
  ~WgspCublas() { cublasDestroy(h); cudaFree(w); cudaFree(yc); }
};
#endif
