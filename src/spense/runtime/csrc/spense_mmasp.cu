// Spense decode kernel: 2:4 sparse region through the sparse tensor-core instruction
// mma.sp.m16n8k32 (bf16 in, fp32 accumulate), dense region through mma.m16n8k16, one launch.
//
// Weights are the A operand (16 output rows x 32 K per sparse MMA), the M <= 64 tokens the B
// operand (n = 8 tokens per MMA).  All weight bytes are pre-arranged at load time
// (spense/runtime/mmasp.py: to_kernel_layout) in exactly the order the warps read them, so every
// thread issues one 16-byte load per MMA (bf16; per 2 MMAs for FP8) for values and one 4-byte load
// per 64 K for metadata.
//
// FP8 (weight-only, "W8A16"): values/dense stored as e4m3 bytes in the same fragment element order;
// each byte b is turned into the bf16 bit pattern (b & 0x80) << 8 | (b & 0x7f) << 4 in registers,
// whose value is e4m3(b) * 2^-120 (normal and subnormal alike), then one bf16x2 multiply by 2^120
// (exact; bf16 arithmetic keeps subnormals) gives the e4m3 value itself, so products and the fp32
// accumulators never sit near the fp32 subnormal range (which the shared-memory float atomics and
// --use_fast_math flush to zero); the epilogue multiplies by wscale[n] = scale[n].  Activations stay bf16; or
// (the default at M <= 16 through x_perm or fragments: spense.runtime.xops.f16_x) x comes in f16 as x * 2^-8, each
// e4m3 pair becomes f16 by one cvt, the MMAs run in f16 and the epilogue multiplies by 2^8 scale[n].
//
// Grid: one CTA per block of RT*16 weight rows ("row block").  The W warps of a CTA split the K
// steps (64 K each) of that row block, reduce through shared memory and write the outputs in
// place (y[m, out_row[r]]), so there is no second pass and no atomics in global memory.
// Logical row blocks [0, Bs) belong to the sparse region (Ss sparse steps, then SdA dense steps: the
// dense columns of axis="cols"); [Bs, Bs+Bd) hold dense rows (axis="rows", SdB dense steps).  The
// heavier dense-row blocks are launched first (blockIdx < Bd) to shorten the tail.
// x columns of each K step: sparse step s reads x[:, sblk[s] + 0..63], dense step s x[:, dblk[s] +
// 0..63] (64-aligned column blocks: an axis="cols" layout made of whole 64-column blocks needs no
// gather of x; other layouts pre-gather x once on the host side and pass identity tables).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <tuple>
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "spense_ext.h"

#include "spense_check.cuh"

#include "spense_mmasp_common.cuh"
#include "spense_mmasp_reg.cuh"   // spense_mmasp_kernel: weights through registers (stages == 0)
#include "spense_mmasp_persist.cuh"  // spense_mmasp_persist_kernel: the same, a CTA walking several row blocks
#include "spense_mmasp_bulk.cuh"  // spense_mmasp_bulk_kernel: weights through a shared-memory ring (sm_90)
#include "spense_mmasp_xs.cuh"    // spense_mmasp_xs_kernel: x fragments shared by the warps of a CTA
#include "spense_mmasp_switches.cuh"  // the SPENSE_MMASP_* environment switches, each read once

// x through its fragments (xf), or straight, pair by pair
#define LAUNCH(RT_, NT_, F_)                                                                        \
  if (XF) { LAUNCH_X(RT_, NT_, F_, X_FRAGS); }                                                       \
  else { LAUNCH_X(RT_, NT_, F_, X_DIRECT); }

#define LAUNCH_X(RT_, NT_, F_, XM_)                                                                 \
  launch_reg<RT_, NT_, F_, XM_>(grid, threads, stream, pdl, pf, det, (const uint4*)sv.data_ptr(),    \
      (const uint32_t*)sm.data_ptr(), (const uint4*)dv.data_ptr(), (const __nv_bfloat16*)x.data_ptr(), \
      XF, (int)x.stride(0), M, (int)x.size(1), sblk.data_ptr<int>(), dblk.data_ptr<int>(),           \
      out_row.data_ptr<int>(), wscale.data_ptr<float>(), (__nv_bfloat16*)y.data_ptr(),              \
      (int)y.stride(0), (int)Bs, (int)Bd, (int)Ss, (int)SdA, (int)SdB, (int)pdl)

// CTAs of `kernel` resident per SM at `threads` threads and `smem` bytes of dynamic shared memory (fixed per kernel;
// cudaOccupancyMaxActiveBlocksPerMultiprocessor), times the SMs: the largest grid that runs in one wave; asked once
// per device (the first 16; others every call), kernel and block size
template <auto kernel>
static unsigned resident_ctas(int threads, int smem = 0) {
  static std::atomic<unsigned> cached[16][REG_DET_W + 1];  // zero: static storage
  const int w = threads / 32;
  int dev = 0;
  C10_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 16 && cached[dev][w] != 0) return cached[dev][w];
  int sms = 0, occ = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  if (smem > 48 * 1024)
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kernel, threads, smem));
  const unsigned n = (unsigned)(std::max(1, occ) * sms);
  if (dev < 16) cached[dev][w] = n;
  return n;
}

// the register kernel; pf (RT = 1 only): its software-pipelined instantiation (spense_mmasp_reg.cuh: PF);
// det (NT <= REG_DET_NT, at most REG_DET_W warps, not pf): the warps' sums met in order (spense_mmasp_reg.cuh:
// DET), the default there; with e4m3 weights its persistent form (spense_mmasp_persist.cuh) where
// persist_mode() says, on a grid of at most the CTAs that fit on the GPU at once
constexpr int REG_DET_NT = 2;
template <int RT, int NT, int F, int XM, typename... Args>
static void launch_reg(dim3 grid, dim3 threads, cudaStream_t stream, bool pdl, bool pf, bool det, Args... args) {
  det = det && (int)threads.x <= 32 * det_w(RT, NT);
  if constexpr (NT <= REG_DET_NT && F != 0) {
    const int mode = persist_mode();
    if (det && mode != 0 && (int)threads.x <= 32 * DET_W256) {  // (bound to DET_W256 warps)
      const unsigned cap = resident_ctas<spense_mmasp_persist_kernel<RT, NT, F, XM>>((int)threads.x);
      // "3": more than one wave of the one-block kernel, whose CTAs (76-80 registers against 122-128) fit more a SM:
      // measured against the persistent kernel's own wave it took two layers a block in e2e v56 (72 launches a step
      // at B = 8 on the H100: gate_up and, by the counts, 8B.qkv's 384 CTAs, past 2 x 132 but within 3 x 132)
      const bool many = mode == 3 && grid.x > resident_ctas<spense_mmasp_kernel<RT, NT, F, REG_U, XM, false, 0, 2,
                                                                                false, true>>((int)threads.x);
      if (mode == 1 || (mode == 2 && grid.x <= cap) || many) {
        C10_CUDA_CHECK(launch_maybe_pdl(spense_mmasp_persist_kernel<RT, NT, F, XM>, dim3(std::min(grid.x, cap)),
                                        threads, stream, pdl, args...));
        return;
      }
    }
  }
  if constexpr (RT == 1 && XM != X_PERM && F != 2) {  // (not built for x in f16)
    if (pf) {
      C10_CUDA_CHECK(launch_maybe_pdl(spense_mmasp_kernel<RT, NT, F, REG_U, XM, true>, grid, threads, stream,
                                      pdl, args...));
      return;
    }
  }
  if constexpr (NT <= REG_DET_NT) {
    if (det) {
      // bf16 at RT = 2 through the fragments, bound to 256 threads where SPENSE_MMASP_RT2_256 says (no spills)
      if constexpr (RT == 2 && F == 0 && XM == X_FRAGS) {
        const int b = rt2_b256_mode();
        if (b != 0 && (int)threads.x <= 32 * DET_W256) {
          if (b == 2)
            C10_CUDA_CHECK(launch_maybe_pdl(spense_mmasp_kernel<RT, NT, F, REG_U, XM, false, 1, 2, false, true, 16>,
                                            grid, threads, stream, pdl, args...));
          else
            C10_CUDA_CHECK(launch_maybe_pdl(spense_mmasp_kernel<RT, NT, F, REG_U, XM, false, 1, 2, false, true>,
                                            grid, threads, stream, pdl, args...));
          return;
        }
      }
      constexpr auto kdet = spense_mmasp_kernel<RT, NT, F, REG_U, XM, false, 0, 2, false, true>;
      if constexpr (RT == 1 && NT == 1) {  // the prologue reordered (EARLY = 3) where early_mode() says
        const int em = early_mode();
        // (bound to DET_W256 warps: a CTA of more takes the kernels below)
        if ((int)threads.x <= 32 * DET_W256 &&
            (em == 3 || (em < 0 && F != 0 && grid.x <= resident_ctas<kdet>((int)threads.x)))) {
          C10_CUDA_CHECK(launch_maybe_pdl(spense_mmasp_kernel<RT, NT, F, REG_U, XM, false, 0, 2, false, true, 3>,
                                          grid, threads, stream, pdl, args...));
          return;
        }
      }
      // every step of a round loaded (EARLY = 16) where clamp_mode() says, no weight load behind a branch
      if constexpr (F != 0 || (RT == 1 && NT > 1)) {
        if (clamp_mode() != 0) {
          C10_CUDA_CHECK(launch_maybe_pdl(spense_mmasp_kernel<RT, NT, F, REG_U, XM, false, 0, 2, false, true, 16>,
                                          grid, threads, stream, pdl, args...));
          return;
        }
      }
      C10_CUDA_CHECK(launch_maybe_pdl(kdet, grid, threads, stream, pdl, args...));
      return;
    }
  }
  C10_CUDA_CHECK(launch_maybe_pdl(spense_mmasp_kernel<RT, NT, F, REG_U, XM, false>, grid, threads, stream,
                                  pdl, args...));
}

#define LAUNCH_BULK(RT_, NT_, F_)                                                                   \
  C10_CUDA_CHECK((launch_bulk<RT_, NT_, F_>(grid, (int)warps, (int)stages, stream, (const uint4*)sv.data_ptr(),             \
      (const uint32_t*)sm.data_ptr(), (const uint4*)dv.data_ptr(), (const __nv_bfloat16*)x.data_ptr(), XF, \
      (int)x.stride(0), M, (int)x.size(1), sblk.data_ptr<int>(), dblk.data_ptr<int>(),                      \
      out_row.data_ptr<int>(), wscale.data_ptr<float>(), (__nv_bfloat16*)y.data_ptr(), (int)y.stride(0),    \
      (int)Bs, (int)Bd, (int)Ss, (int)SdA, (int)SdB)))

#define DISPATCH_NT(RT_, F_)                                     \
  if (stages > 0) {                                              \
    switch (NT) {                                                \
      case 1: LAUNCH_BULK(RT_, 1, F_); break;                    \
      case 2: LAUNCH_BULK(RT_, 2, F_); break;                    \
      case 4: LAUNCH_BULK(RT_, 4, F_); break;                    \
      default: LAUNCH_BULK(RT_, 8, F_); break;                   \
    }                                                            \
  } else {                                                       \
    switch (NT) {                                                \
      case 1: LAUNCH(RT_, 1, F_); break;                         \
      case 2: LAUNCH(RT_, 2, F_); break;                         \
      case 4: LAUNCH(RT_, 4, F_); break;                         \
      default: LAUNCH(RT_, 8, F_); break;                        \
    }                                                            \
  }

// SPENSE_MMASP_XS_CLAMP (read once): the shared-x kernel's CLAMP form at NT = 2 (M = 9-16; spense_mmasp_xs.cuh:
// every step of a round loaded, at most 128 registers a thread against 142, the same sums). "1": always; "0": never;
// unset: where the unclamped grid (`grid` CTAs of `warps` warps) does not fit on the GPU at once and the clamped
// kernel fits more (resident_ctas). Measured: docs/runtime.md, its switch row.
template <int NT, bool F>
static bool xs_clamp(int warps, int grid) {
  static const int mode = env_int("SPENSE_MMASP_XS_CLAMP");
  if constexpr (NT != 2) {  // the CLAMP kernel is built at NT = 2 only
    return false;
  } else {
    if (mode >= 0) return mode == 1;
    const int smem = xs_smem_bytes<NT>(), threads = 32 * warps;
    const unsigned fit = resident_ctas<spense_mmasp_xs_kernel<NT, F>>(threads, smem);
    return (unsigned)grid > fit && resident_ctas<spense_mmasp_xs_kernel<NT, F, true>>(threads, smem) > fit;
  }
}

#define LAUNCH_XS(NT_, F_)                                                                          \
  C10_CUDA_CHECK((launch_xs<NT_, F_>(wxs, stream, pdl, (const uint4*)sv.data_ptr(),             \
      (const uint32_t*)sm.data_ptr(), (const uint4*)dv.data_ptr(), XF, sblk.data_ptr<int>(),          \
      dblk.data_ptr<int>(), out_row.data_ptr<int>(), wscale.data_ptr<float>(),                        \
      (__nv_bfloat16*)y.data_ptr(), (int)y.stride(0), M, (int)Bs, (int)Bd, (int)Ss, (int)SdA, (int)SdB, \
      ks, ks > 1 ? ws.data_ptr<float>() : nullptr, (int)y.size(1), xs_clamp<NT_, F_>(wxs, ctas * ks))))

#define DISPATCH_XS(F_)                      \
  switch (NT) {                              \
    case 1: LAUNCH_XS(1, F_); break;         \
    case 2: LAUNCH_XS(2, F_); break;         \
    case 4: LAUNCH_XS(4, F_); break;         \
    default: LAUNCH_XS(8, F_); break;        \
  }

void spense_mmasp(at::Tensor sv, at::Tensor sm, at::Tensor dv, at::Tensor x,
                  at::Tensor sblk, at::Tensor dblk, at::Tensor out_row, at::Tensor wscale,
                  at::Tensor y, int64_t Bs, int64_t Bd, int64_t Ss, int64_t SdA, int64_t SdB,
                  int64_t RT, int64_t warps, bool fp8, int64_t stages, at::Tensor xf, bool xperm) {
  // x in f16 (x * 2^-8: spense.runtime.xops.f16_x), e4m3 weights only: the register kernel's FP8 == 2; with
  // xf the fragments' dtype says it (x then gives only M and K)
  const bool xh = (xf.numel() > 0 ? xf.scalar_type() : x.scalar_type()) == at::kHalf;
  TORCH_CHECK(x.is_cuda() && (x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf) && x.stride(1) == 1,
              "x: bf16 cuda, row-major");
  TORCH_CHECK(!xh || fp8, "x in f16 (x * 2^-8) is taken for e4m3 weights only");
  TORCH_CHECK(x.stride(0) % 2 == 0 && (reinterpret_cast<uintptr_t>(x.data_ptr()) & 3) == 0, "x: 4-byte aligned rows");
  TORCH_CHECK(y.scalar_type() == at::kBFloat16 && y.stride(1) == 1, "y: bf16 row-major");
  TORCH_CHECK(sblk.scalar_type() == at::kInt && dblk.scalar_type() == at::kInt && out_row.scalar_type() == at::kInt,
              "block tables / out_row: int32");
  TORCH_CHECK(wscale.scalar_type() == at::kFloat, "wscale: float32");
  TORCH_CHECK(warps >= 1 && warps <= 16, "warps in 1..16");
  TORCH_CHECK(stages >= 0 && stages <= BULK_MAX_STAGES, "stages in 0..16 (0: the register kernel)");
  const c10::cuda::OptionalCUDAGuard guard(x.device());
  if (stages > 0) {
    int dev = 0, major = 0, smem_max = 0;
    C10_CUDA_CHECK(cudaGetDevice(&dev));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&smem_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    TORCH_CHECK(major >= 9, "the bulk-copy mmasp kernel (stages > 0) needs sm_90+");
    TORCH_CHECK(warps <= BULK_MAX_WARPS, "the bulk-copy mmasp kernel takes at most 8 consumer warps");
    const int need = RT == 1 ? (fp8 ? bulk_smem_bytes<1, true>((int)stages) : bulk_smem_bytes<1, false>((int)stages))
                             : (fp8 ? bulk_smem_bytes<2, true>((int)stages) : bulk_smem_bytes<2, false>((int)stages));
    // + the kernel's static shared memory: the reduction buffer (RT*16 rows x NT*8 tokens of fp32) and
    // the ring's mbarriers
    const int M0 = (int)x.size(0), NT0 = M0 <= 8 ? 1 : M0 <= 16 ? 2 : M0 <= 32 ? 4 : 8;
    const int fixed = (int)RT * 16 * NT0 * 8 * 4 + 2 * BULK_MAX_STAGES * 8 + 128;  // + the ring's alignment
    SPENSE_CHECK(need + fixed <= smem_max, "mmasp: %d ring slots need %d bytes of shared memory with M = %d, more "
                 "than this GPU's %d; use fewer stages", (int)stages, need + fixed, M0, smem_max);
  }
  const int M = (int)x.size(0);
  TORCH_CHECK(M >= 1 && M <= 64, "mmasp kernel handles 1 <= M <= 64");
  if (Bs + Bd == 0) return;
  const int NT = M <= 8 ? 1 : M <= 16 ? 2 : M <= 32 ? 4 : 8;
  // xf: x in fragment order ([ceil(K/64)*2][NT][32][8] bf16, spense.runtime.xops.x_fragments), or empty
  const uint4* XF = nullptr;
  if (xf.numel() > 0) {
    TORCH_CHECK(xf.is_cuda() && (xf.scalar_type() == at::kBFloat16 || xh) && xf.is_contiguous(),
                "xf: contiguous bf16 (or f16) cuda");
    TORCH_CHECK(xf.numel() == (int64_t)((x.size(1) + 63) / 64) * 2 * NT * 32 * 8,
                "xf: shape does not match x (ceil(K/64)*2 chunks x NT x 32 lanes x 8)");
    XF = reinterpret_cast<const uint4*>(xf.data_ptr());
  }
  dim3 grid((unsigned)(Bs + Bd)), threads((unsigned)(32 * warps));
  auto stream = c10::cuda::getCurrentCUDAStream();
  const int pdl = stages == 0 ? pdl_mode() : 0;  // 0: plain launch, 1 / 2: dependent (pdl_mode)
  // its bound: 256 threads; not built for xperm
  const bool pf = stages == 0 && RT == 1 && warps <= 8 && !xperm && !xh && pf_enabled();
  const bool det = stages == 0 && !pf && warps <= REG_DET_W && det_enabled();
  // xperm: x is x_perm (spense_mmasp_common.cuh: X_PERM), read by the register kernel at RT = 1 and M <= 8
  // (NT = 1, the only instantiation), whatever SPENSE_MMASP_XS says
  // x in f16: the register kernel through x_perm (RT = 1, NT = 1) or the fragments (RT 1 / 2, M <= 16)
  if (xh) {
    TORCH_CHECK(stages == 0 && (xperm || XF != nullptr),
                "mmasp: x in f16 is read by the register kernel alone (stages 0), through xf or x_perm");
    SPENSE_CHECK(M <= 16 && RT <= 2 && (!xperm || (RT == 1 && M <= 8)), "mmasp: x in f16 is built for M <= 16 "
                 "and RT 1 or 2 (x_perm: RT = 1, M <= 8), got M = %d, RT = %d", M, (int)RT);
    TORCH_CHECK(!xperm || (x.size(1) % 64 == 0 && x.stride(0) % 8 == 0 &&
                           (reinterpret_cast<uintptr_t>(x.data_ptr()) & 15) == 0),
                "mmasp: xperm needs x rows of a multiple of 64 columns, 16-byte aligned");
    if (xperm) { LAUNCH_X(1, 1, 2, X_PERM); }
    else if (RT == 1) { if (NT == 1) { LAUNCH_X(1, 1, 2, X_FRAGS); } else { LAUNCH_X(1, 2, 2, X_FRAGS); } }
    else { if (NT == 1) { LAUNCH_X(2, 1, 2, X_FRAGS); } else { LAUNCH_X(2, 2, 2, X_FRAGS); } }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  if (xperm) {
    TORCH_CHECK(XF == nullptr && stages == 0, "mmasp: xperm is read by the register kernel alone: no xf, stages 0");
    SPENSE_CHECK(RT == 1 && M <= 8, "mmasp: xperm is built for RT = 1 and M <= 8, got RT = %d, M = %d", (int)RT, M);
    TORCH_CHECK(x.size(1) % 64 == 0 && x.stride(0) % 8 == 0 && (reinterpret_cast<uintptr_t>(x.data_ptr()) & 15) == 0,
                "mmasp: xperm needs x rows of a multiple of 64 columns, 16-byte aligned");
    if (fp8) { LAUNCH_X(1, 1, true, X_PERM); } else { LAUNCH_X(1, 1, false, X_PERM); }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  // the shared-x kernel: whole where its CTAs (`warps` row tiles each, 4 where 8 would give fewer than
  // two CTAs per SM) still fill the GPU, at least 1056 row tiles (2 CTAs of 4 warps on each of 132 SMs;
  // SPENSE_MMASP_XS_MIN_TILES); with fewer it would hold too few weight bytes in flight, so K is split
  const bool xs_big = Bs + Bd >= xs_min_tiles();
  if (stages == 0 && RT == 1 && warps <= 8 && XF != nullptr && xs_wanted(M, fp8, xs_big)) {
    const int wxs = (Bs + Bd) / 8 >= 264 ? (int)warps : std::min((int)warps, 4);
    const int ctas = (int)((Bs + wxs - 1) / wxs + (Bd + wxs - 1) / wxs);
    const int ks = xs_big ? 1 : xs_splits(ctas, xs_walk((int)Ss, (int)SdA, (int)SdB));
    // the split sums and one counter per CTA column, zeroed (a memset node inside a CUDA graph)
    at::Tensor ws = ks > 1 ? at::zeros({(int64_t)M * y.size(1) + ctas}, y.options().dtype(at::kFloat))
                              : at::Tensor();
    if (fp8) { DISPATCH_XS(true) } else { DISPATCH_XS(false) }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  if (fp8) {
    if (RT == 1) { DISPATCH_NT(1, true) } else { DISPATCH_NT(2, true) }
  } else {
    if (RT == 1) { DISPATCH_NT(1, false) } else { DISPATCH_NT(2, false) }
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}
