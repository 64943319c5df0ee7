// One of the extension's three translation units: the GEMM on sparse warpgroup MMA (spense_wgsp_ws.cuh,
// spense_wgsd.cuh), bound to Python in spense_bind.cpp beside the mma.sp decode kernel (spense_mmasp.cu).  The units
// compile in parallel (spense.runtime.mmasp.load_extension).
#include <algorithm>
#include <tuple>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "spense_ext.h"

#include "spense_check.cuh"
#include "spense_wgsd.cuh"  // spense_wgsp_ws_kernel (prefill) and the decode forms on sparse warpgroup MMA

// The prefill GEMM on sparse warpgroup MMA (spense_wgsp_ws.cuh; its body exists only in sm_90a builds, which
// spense.runtime.wgsp.wgsp_forward checks before calling): y (M x N, rows of stride y.stride(0)) = the
// layer on x (M x K bf16, unit column stride), from the decode layout at RT = 1.  form 0: launch_wgsp_ws;
// 1: the same in clusters of two CTAs that share each weight load by multicast (CL = 2); 2: the decode
// form for M <= 64 (launch_wgsd, K split over a cluster); 3: the stream-K decode form (launch_wgsd_sk; ws: its
// fp32 workspace, cnt: its int32 counts, zeroed once; variant: its SPENSE_WGSD_EXP bits; grid: its CTAs, 0 = one
// per SM, at most the SMs, as the workspace holds; trace: empty, or int64 clocks of each CTA's entry, first
// operands, last MMAs and exit, 4 a CTA, for timelines; all five unused by the other forms but variant's bit 32768,
// which launches form 2 dependent too); 4: form 0 persistent (at most one CTA per SM, walking the tiles); 5: the
// same on CTAs of 8 row tiles; 6: form 0 with the tail split (ws_tail_rows: a layer's last row blocks on CTAs of 8
// row tiles where that fills its last wave; the default prefill form, spense.runtime.wgsp.wgsp_tail); 7: form 0 on
// CTAs of 8 row tiles and 256 tokens (m64n256 wgmmas; spense.runtime.wgsp.wgsp_nt).  e4m3 weights (sv as
// uint8: the FP8 layout) take form 3 only, with wscale their float32 per-output-row scales (else unused), and x
// may then be f16 (x * 2^-8: variant bit 2048, set here from x's dtype; in slots of two K steps only, else an
// error).
// Returns false where the kernel does not apply (row tiles not in eights, K not a multiple of 64, unaligned x
// or weights, M > 64 for forms 2 and 3, a workspace too small, FP8 in another form than 3): the caller falls
// back.
bool spense_wgsp(at::Tensor y, at::Tensor sv, at::Tensor sm, at::Tensor dv, at::Tensor x,
                 at::Tensor sblk, at::Tensor dblk, at::Tensor out_row, int64_t Bs, int64_t Bd, int64_t Ss,
                 int64_t SdA, int64_t SdB, int64_t form, at::Tensor ws, at::Tensor cnt, int64_t variant,
                 at::Tensor wscale, int64_t grid, at::Tensor trace) {
  // x in f16 (x * 2^-8: spense.runtime.xops.f16_operand) for e4m3 weights in the stream-K form: variant bit 2048
  const bool xh = x.scalar_type() == at::kHalf;
  TORCH_CHECK(x.is_cuda() && (x.scalar_type() == at::kBFloat16 || xh) && x.dim() == 2 && x.stride(1) == 1,
              "wgsp: x must be a 2-D bf16 (or f16) CUDA tensor with unit column stride");
  TORCH_CHECK(y.is_cuda() && y.scalar_type() == at::kBFloat16 && y.dim() == 2 && y.stride(1) == 1 &&
                  y.size(0) == x.size(0), "wgsp: y must be bf16 (M, N) with unit column stride");
  TORCH_CHECK(sblk.scalar_type() == at::kInt && dblk.scalar_type() == at::kInt && out_row.scalar_type() == at::kInt,
              "wgsp: int32 block tables");
  // every check before the device guard: on the H200 build a check that failed with the guard alive ended the
  // process (benchmarks/ext_refusal_probe.py, 2026-12-01), where one before it raised
  SPENSE_CHECK(form >= 0 && form <= 7, "wgsp: form must be 0..7, got %lld", (long long)form);
  const bool fp8 = sv.scalar_type() == at::kByte;
  TORCH_CHECK(!fp8 || (wscale.is_cuda() && wscale.scalar_type() == at::kFloat && wscale.is_contiguous() &&
                       wscale.numel() >= y.size(1)), "wgsp: e4m3 weights need float32 scales, one per output row");
  TORCH_CHECK(form != 3 || (ws.is_cuda() && ws.scalar_type() == at::kFloat && cnt.is_cuda() &&
                            cnt.scalar_type() == at::kInt && ws.is_contiguous() && cnt.is_contiguous()),
              "wgsp: stream-K needs a float32 workspace and int32 counts");
  SPENSE_CHECK(form != 3 || (variant >= 0 && variant <= 131071), "wgsp: stream-K variant must be 0..131071, got %lld",
               (long long)variant);
  SPENSE_CHECK(grid >= 0 && grid <= 4096, "wgsp: stream-K grid must be 0..4096, got %lld", (long long)grid);
  TORCH_CHECK(trace.numel() == 0 ||
                  (form == 3 && trace.is_cuda() && trace.scalar_type() == at::kLong && trace.is_contiguous() &&
                   trace.numel() >= 4LL * (grid > 0 ? grid : std::max(1, ws_sm_count()))),
              "wgsp: trace must be empty, or an int64 CUDA tensor of 4 clocks per stream-K CTA");
  TORCH_CHECK(!xh || (fp8 && form == 3), "wgsp: x in f16 is taken by e4m3 weights in the stream-K form only");
  if (fp8 && form != 3) return false;
  const c10::cuda::CUDAGuard guard(x.device());
  cudaError_t e;
  if (form == 3) {
    // bits 4 (with bit 2) and 32768: launched dependent (launch_wgsd_sk; graph capture of such launches needs
    // CUDA 12.3+)
    const bool pdl = (variant & (4 | 32768)) != 0 && CUDART_VERSION >= 12030;
    // bit 2048 says x is in f16, from x's dtype alone
    e = launch_wgsd_sk_variant(
        xh ? ((int)variant | 2048) : ((int)variant & ~2048), fp8, c10::cuda::getCurrentCUDAStream(), (const uint4*)sv.data_ptr(),
        (const uint32_t*)sm.data_ptr(), (const uint4*)dv.data_ptr(), (const __nv_bfloat16*)x.data_ptr(),
        (int)x.stride(0), (int)x.size(1), (int)x.size(0), sblk.data_ptr<int>(), dblk.data_ptr<int>(),
        out_row.data_ptr<int>(), (__nv_bfloat16*)y.data_ptr(), (int)y.stride(0), (int)Bs, (int)Bd, (int)Ss,
        (int)SdA, (int)SdB, ws.data_ptr<float>(), (long long)ws.numel(), cnt.data_ptr<int>(),
        (long long)cnt.numel(), (int)grid,
        trace.numel() ? (unsigned long long*)trace.data_ptr<int64_t>() : (unsigned long long*)nullptr, pdl,
        fp8 ? (const float*)wscale.data_ptr<float>() : nullptr);
    if (e == cudaErrorInvalidValue) return false;
    TORCH_CHECK(e != cudaErrorNotSupported,
                "wgsp: x in f16 is taken on tiles of 16 tokens in slots of two K steps only (variant 1 or 513)");
    C10_CUDA_CHECK(e);
    return true;
  }
  const auto args = std::make_tuple(
      c10::cuda::getCurrentCUDAStream(), (const uint4*)sv.data_ptr(), (const uint32_t*)sm.data_ptr(),
      (const uint4*)dv.data_ptr(), (const __nv_bfloat16*)x.data_ptr(), (int)x.stride(0), (int)x.size(1),
      (int)x.size(0), sblk.data_ptr<int>(), dblk.data_ptr<int>(), out_row.data_ptr<int>(),
      (__nv_bfloat16*)y.data_ptr(), (int)y.stride(0), (int)Bs, (int)Bd, (int)Ss, (int)SdA, (int)SdB);
  // the cluster decode form (2): bit 32768 of `variant` launches it dependent (the prefill forms take none)
  const bool pdl = form == 2 && (variant & 32768) != 0 && CUDART_VERSION >= 12030;
  e = form == 0   ? std::apply(launch_wgsp_ws<WS_STAGES, 0, 1>, args)
      : form == 1 ? std::apply(launch_wgsp_ws<WS_STAGES, 0, 2>, args)
      : form == 4 ? std::apply(launch_wgsp_ws<WS_STAGES, 0, 1, true>, args)
      : form == 5 ? std::apply(launch_wgsp_ws<WS_STAGES, 1, 1, true>, args)
      : form == 6 ? std::apply(launch_wgsp_ws<WS_STAGES, 0, 1, false, true>, args)
      : form == 7 ? std::apply(launch_wgsp_ws<WS_STAGES, 1, 1, false, false, 256>, args)
                  : std::apply([pdl](auto... a) { return launch_wgsd<WSD_STAGES, 0>(a..., pdl); }, args);
  if (e == cudaErrorInvalidValue) return false;
  C10_CUDA_CHECK(e);
  return true;
}
