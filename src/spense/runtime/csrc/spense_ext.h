// The extension's two entry points, declared once for the three translation units: spense_bind.cpp binds them to
// Python; spense_mmasp.cu and spense_wgsp.cu define them.  Only ATen's Tensor header here, so that the CUDA units
// compile without torch/extension.h (pybind11 and the whole C++ API: on a 2-core host most of a unit's front-end time).
#pragma once
#include <cstdint>
#include <ATen/core/Tensor.h>

// the Spense 2:4 + dense decode GEMM on mma.sp (register, bulk-copy, shared-x and persistent forms; bf16 or e4m3
// weights): spense_mmasp.cu
void spense_mmasp(at::Tensor sv, at::Tensor sm, at::Tensor dv, at::Tensor x, at::Tensor sblk, at::Tensor dblk,
                  at::Tensor out_row, at::Tensor wscale, at::Tensor y, int64_t Bs, int64_t Bd, int64_t Ss, int64_t SdA,
                  int64_t SdB, int64_t RT, int64_t warps, bool fp8, int64_t stages, at::Tensor xf, bool xperm);

// the GEMM on sparse warpgroup MMA (prefill, and the decode forms for M = 17-64); false where it does not apply:
// spense_wgsp.cu
bool spense_wgsp(at::Tensor y, at::Tensor sv, at::Tensor sm, at::Tensor dv, at::Tensor x, at::Tensor sblk,
                 at::Tensor dblk, at::Tensor out_row, int64_t Bs, int64_t Bd, int64_t Ss, int64_t SdA, int64_t SdB,
                 int64_t form, at::Tensor ws, at::Tensor cnt, int64_t variant, at::Tensor wscale, int64_t grid,
                 at::Tensor trace);
