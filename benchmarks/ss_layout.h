// The SS layout: the Spense kernel layout's bf16 boxes (a row tile's sparse step 1 KB of kept values, its dense step
// 2 KB, in the same places) each reordered as a wgmma descriptor reads a K-major tile without swizzle: core matrices
// of 8 rows x 16 bytes, 128 bytes each, K's core matrices 128 bytes apart, the 8-row groups 512 (sparse) or 1024
// (dense) bytes apart.  The prefill trial form reads A from it in shared memory (benchmarks/wgsp_ss_check.cu), the
// decode kernels' SSL instantiations from global memory (benchmarks/mmasp_ss_check.cu; spense_mmasp_common.cuh's
// ldg_ss_frag).
#pragma once
#include <cstdint>
#include <vector>

#include "spense_layout_gen.h"

// One box of F fragments (F = 2: a sparse step's two k32 halves of kept values; 4: a dense step's four k16
// fragments), each 512 bytes in mma's A-fragment order (lane 4g + c, 16 bytes: words (row g, cols 2c..2c+1),
// (g + 8, 2c..), (g, 2c + 8..), (g + 8, 2c + 8..) of the fragment's 16 x 16), reordered into core matrices: row r,
// column k of the box's 16 x 16F at byte (r / 8) 256 F + (k / 8) 128 + (r % 8) 16 + (k % 8) 2, i.e. word w of lane's
// fragment f at word lane + 64 f + 32 (w >> 1) + 64 F (w & 1).
inline void ss_box(const uint32_t* in, uint32_t* out, int F) {
  for (int f = 0; f < F; ++f)
    for (int lane = 0; lane < 32; ++lane)
      for (int w = 0; w < 4; ++w) {
        const int g = lane >> 2, c = lane & 3, r = g + 8 * (w & 1), k = 16 * f + 2 * c + 8 * (w >> 1);
        const int byte = (r / 8) * 256 * F + (k / 8) * 128 + (r % 8) * 16 + (k % 8) * 2;
        out[byte / 4] = in[f * 128 + lane * 4 + w];
      }
}
// the values of a bf16 layout (sparse boxes of 1 KB, then dense boxes of 2 KB) in the SS layout
inline std::vector<uint32_t> ss_layout(const RandLayout& L) {
  std::vector<uint32_t> out(L.hv.size());
  for (size_t b = 0; b < L.nsv / 64; ++b) ss_box(L.hv.data() + b * 256, out.data() + b * 256, 2);
  for (size_t b = 0; b < L.ndv / 128; ++b)
    ss_box(L.hv.data() + L.nsv * 4 + b * 512, out.data() + L.nsv * 4 + b * 512, 4);
  return out;
}
