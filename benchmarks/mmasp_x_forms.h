// x (M x K, bf16 bits, row-major) in the forms the Spense decode kernels read, built on the host for the standalone
// harness (benchmarks/mmasp_bulk_check.cu); the torch versions are spense.runtime.xops's x_fragments, x_perm and
// f16_operand.
#pragma once
#include <cuda_fp16.h>
#include <cstdint>
#include <cstring>
#include <vector>

#include "spense_layout_gen.h"

// fragment order, NT 8-token tiles, K padded to a multiple of 64:
//   xf[c][n][lane = 4g + t][i][e] = x[8n + g][32c + 8i + 2t + e]   (0 past M or K)
inline std::vector<uint16_t> x_fragments_host(const std::vector<uint16_t>& hx, int M, int K, int NT) {
  const int Kp = (K + 63) / 64 * 64;
  std::vector<uint16_t> f((size_t)(Kp / 32) * NT * 32 * 8, 0);
  for (int c = 0; c < Kp / 32; ++c) for (int n = 0; n < NT; ++n) for (int l = 0; l < 32; ++l)
    for (int i = 0; i < 4; ++i) for (int e = 0; e < 2; ++e) {
      const int tok = 8 * n + l / 4, k = 32 * c + 8 * i + 2 * (l % 4) + e;
      if (tok < M && k < K) f[(((size_t)c * NT + n) * 32 + l) * 8 + 2 * i + e] = hx[(size_t)tok * K + k];
    }
  return f;
}

// x_perm[tok][32c + 8t + 2i + e] = x[tok][32c + 8i + 2t + e] (X_PERM; K a multiple of 64, else zeros)
inline std::vector<uint16_t> x_perm_host(const std::vector<uint16_t>& hx, int M, int K) {
  std::vector<uint16_t> p(hx.size(), 0);
  if (K % 64 == 0)
    for (int tok = 0; tok < M; ++tok) for (int c = 0; c < K / 32; ++c)
      for (int t = 0; t < 4; ++t) for (int i = 0; i < 4; ++i) for (int e = 0; e < 2; ++e)
        p[(size_t)tok * K + 32 * c + 8 * t + 2 * i + e] = hx[(size_t)tok * K + 32 * c + 8 * i + 2 * t + e];
  return p;
}

// x's f16 operand, x * 2^-8 as f16 bits, element by element (either order above), for the e4m3 kernels' FP8 == 2
inline std::vector<uint16_t> f16_operand_host(const std::vector<uint16_t>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const __half x = __float2half_rn(bf2f(v[i]) * (1.f / 256.f));
    memcpy(&h[i], &x, 2);
  }
  return h;
}
