// Device helpers shared by the Spense decode kernels (spense_mmasp.cu): the sparse / dense MMAs,
// streaming loads, e4m3 -> bf16 fragment expansion, x loads.  No torch headers, so the kernels also
// build standalone (nvcc -arch=sm_90 -Xptxas -v: benchmarks/mmasp_bulk_check.cu, benchmarks/wgsp_check.cu).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

// Programmatic dependent launch (sm_90): a kernel launched with programmatic stream serialization may
// start while the kernel before it in the stream finishes.  It must not read what that kernel writes
// (x) before pdl_wait(); the weights are constant, so their first loads can go ahead (prefetch_l2).
// Without such a launch, pdl_wait() returns at once.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
// ... and lets the kernel after it in the stream launch (if that one was launched so too: e.g. Inductor's
// Triton kernels under TORCHINDUCTOR_ENABLE_PDL=1, which wait with gdc_wait before reading y): called
// once a CTA has read all its weights, so the next kernel's launch overlaps this one's epilogue.  Only
// after pdl_wait(): a kernel that starts early and reads no output of this one skips its own wait, so
// everything before this kernel must be complete by then.
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];\n" :: "l"(p));
}

// the launch attribute of clusters of `k` CTAs along x
inline cudaLaunchAttribute cluster_x_attr(int k) {
  cudaLaunchAttribute a = {};
  a.id = cudaLaunchAttributeClusterDimension;
  a.val.clusterDim.x = (unsigned)k;
  a.val.clusterDim.y = 1;
  a.val.clusterDim.z = 1;
  return a;
}
// Launch `kernel` on `stream` with `smem` bytes of dynamic shared memory; pdl: with programmatic stream
// serialization (see pdl_wait); launch_ex_cl: in clusters of `cluster` CTAs along x (1: none)
template <typename... KArgs, typename... Args>
cudaError_t launch_ex_cl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool pdl,
                         int cluster, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  int n = 0;
  if (pdl) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster > 1) attr[n++] = cluster_x_attr(cluster);
  cfg.attrs = attr;
  cfg.numAttrs = n;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}
template <typename... KArgs, typename... Args>
cudaError_t launch_ex(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool pdl,
                      Args... args) {
  return launch_ex_cl(kernel, grid, block, smem, stream, pdl, 1, args...);
}
template <typename... KArgs, typename... Args>
cudaError_t launch_maybe_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, cudaStream_t stream, bool pdl,
                             Args... args) {
  return launch_ex(kernel, grid, block, 0, stream, pdl, args...);
}

// 16-byte asynchronous copy global -> shared (sm_80+), and its group fences
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// The MMAs in bf16 (H = false) or f16 (H: e4m3 weights widened to f16, x given in f16 as x * 2^-8; the
// kernels' FP8 == 2, spense.runtime.xops.f16_x)
#define SPENSE_MMA_SP(TY, SEL)                                                                     \
  asm("mma.sp.sync.aligned.m16n8k32.row.col.f32." TY "." TY ".f32 "                                 \
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, " SEL ";\n"                \
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                              \
      : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e))
template <bool H = false>
__device__ __forceinline__ void mma_sp(float* c, const uint4& a, const uint32_t* b, uint32_t e, int sel) {
  if (H) {
    if (sel == 0) SPENSE_MMA_SP("f16", "0x0"); else SPENSE_MMA_SP("f16", "0x1");
  } else {
    if (sel == 0) SPENSE_MMA_SP("bf16", "0x0"); else SPENSE_MMA_SP("bf16", "0x1");
  }
}
#undef SPENSE_MMA_SP

template <bool H = false>
__device__ __forceinline__ void mma_dense(float* c, const uint4& a, uint32_t b0, uint32_t b1) {
  if (H) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
  }
}

__device__ __forceinline__ uint4 ldg_stream(const uint4* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}
__device__ __forceinline__ uint32_t ldg_stream32(const uint32_t* p) {
  uint32_t r;
  asm volatile("ld.global.nc.L1::no_allocate.u32 %0, [%1];\n" : "=r"(r) : "l"(p));
  return r;
}
// A lane's fragment f (16 bytes) of a box of F fragments (a row tile's bf16 step: F = 2 sparse, 4 dense) in the SS
// layout (the order a wgmma descriptor reads, benchmarks/ss_layout.h; the kernels' SSL): word w at word
// lane + 64 f + 32 (w >> 1) + 64 F (w & 1), four coalesced 4-byte loads (the fragment order: one 16-byte load at uint4
// lane + 32 f)
template <int F>
__device__ __forceinline__ uint4 ldg_ss_frag(const uint4* box, int f, int lane) {
  const uint32_t* q = reinterpret_cast<const uint32_t*>(box) + lane + 64 * f;
  return make_uint4(ldg_stream32(q), ldg_stream32(q + 64 * F), ldg_stream32(q + 32), ldg_stream32(q + 64 * F + 32));
}

// two e4m3 bytes (selected by the byte_perm selector) -> bf16x2 holding e4m3 * 2^-120
__device__ __forceinline__ uint32_t e4m3x2_bf16x2(uint32_t w, uint32_t sel) {
  const uint32_t t = __byte_perm(w, 0u, sel);  // b_lo << 8 | b_hi << 24
  const uint32_t v = (t & 0x80008000u) | ((t >> 4) & 0x07F007F0u);  // e4m3 * 2^-120 (bf16x2)
  uint32_t r;
  // * 2^120 (bf16 0x7B80), + (-0): exact for every finite e4m3 value, subnormals included
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(v), "r"(0x7B807B80u), "r"(0x80008000u));
  return r;
}
// 8 e4m3 bytes (one thread's A fragment, element order of the bf16 fragment) -> bf16 fragment
__device__ __forceinline__ uint4 e4m3x8_frag(uint32_t lo, uint32_t hi) {
  uint4 r;
  r.x = e4m3x2_bf16x2(lo, 0x1404u);
  r.y = e4m3x2_bf16x2(lo, 0x3424u);
  r.z = e4m3x2_bf16x2(hi, 0x1404u);
  r.w = e4m3x2_bf16x2(hi, 0x3424u);
  return r;
}
// two e4m3 bytes (selected as in e4m3x2_bf16x2) -> f16x2 of the same values, without the sm_89 cvt: the bit
// pattern (b & 0x80) << 8 | (b & 0x7f) << 7 is the f16 of e4m3(b) * 2^-8 (normal and subnormal alike), times 2^8
// in f16 (exact)
__device__ __forceinline__ uint32_t e4m3x2_f16x2_bits(uint32_t w, uint32_t sel) {
  const uint32_t t = __byte_perm(w, 0u, sel);  // b_lo << 8 | b_hi << 24
  const uint32_t v = (t & 0x80008000u) | ((t >> 1) & 0x3F803F80u);
  uint32_t r;
  asm("mul.rn.f16x2 %0, %1, %2;\n" : "=r"(r) : "r"(v), "r"(0x5C005C00u));  // 2^8 in each half
  return r;
}
// four e4m3 bytes -> two f16x2 of the same values (bytes 0, 1 and 2, 3; the first of each in the low half): one
// cvt a pair, exact (every e4m3 value, subnormals included, is an f16); the halves taken by the cvt itself (.H1).
// Below sm_89 (no e4m3 cvt: the register kernel's FP8 == 2 is built for every arch) through the bits instead.
__device__ __forceinline__ uint2 e4m3x4_f16x4(uint32_t w) {
  uint2 r;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 890
  r.x = e4m3x2_f16x2_bits(w, 0x1404u);
  r.y = e4m3x2_f16x2_bits(w, 0x3424u);
#else
  asm("{\n.reg .b16 lo, hi;\nmov.b32 {lo, hi}, %2;\ncvt.rn.f16x2.e4m3x2 %0, lo;\ncvt.rn.f16x2.e4m3x2 %1, hi;\n}\n"
      : "=r"(r.x), "=r"(r.y) : "r"(w));
#endif
  return r;
}
// 8 e4m3 bytes -> f16 fragment, in e4m3x8_frag's element order (for MMAs in f16, x in f16)
__device__ __forceinline__ uint4 e4m3x8_frag_h(uint32_t lo, uint32_t hi) {
  const uint2 a = e4m3x4_f16x4(lo), b = e4m3x4_f16x4(hi);
  return make_uint4(a.x, a.y, b.x, b.y);
}

// two consecutive bf16 of token `tok` at x column k (k even) -> one b32 register
__device__ __forceinline__ uint32_t load_x2(const __nv_bfloat16* __restrict__ x, int ldx, int tok, int M,
                                            int k, int kx) {
  if (tok >= M || k >= kx) return 0u;
  return __ldg(reinterpret_cast<const uint32_t*>(x + (size_t)tok * ldx + k));
}


// B fragments (x, n = 8 tokens) of one MMA.  With xf (x in fragment order, built on the host by
// spense.runtime.xops.x_fragments: [K/32 chunk][NT][lane][4 x bf16 pair]) a lane's whole fragment of a
// 32-K chunk is one coalesced 16-byte load (a warp reads 512 contiguous bytes), instead of four
// 4-byte loads spread over 8 token rows: at M >= 8 those scattered loads, not the weight stream,
// bound the kernel's L1 throughput.  xf == nullptr: straight from x.
// XM (x mode): X_DIRECT / X_FRAGS fix the source at compile time (the register kernel is instantiated
// for both: no branch, no second load path in its inner loop); X_RUNTIME tests xf per load.
// X_SMEM: xf points at fragments staged in shared memory (spense_mmasp_xs.cuh), read with plain loads.
// X_PERM: x row-major (M x K, K a multiple of 64, 16-byte aligned rows) with each 32-column chunk in
// fragment order, x_perm[tok][32c + 8t + 2i + e] = x[tok][32c + 8i + 2t + e] (spense.runtime.xops.
// x_perm): a lane's fragment is the 16 bytes at column 32c + 8t of its token's row, one load as through
// xf, but x_perm keeps x's shape, so torch.compile can write it from the kernel that produces x (xf pads
// the tokens to 8 n and cannot be).
constexpr int X_DIRECT = 0, X_FRAGS = 1, X_RUNTIME = 2, X_SMEM = 3, X_PERM = 4;

// a lane's 16 bytes of x_perm (X_PERM) for token tok and the 32-K chunk at k0; zeros past M
__device__ __forceinline__ uint4 load_xperm(const __nv_bfloat16* __restrict__ x, int ldx, int tok, int M, int k0,
                                            int lane) {
  // in uint4 (8 bf16): rows of ldx / 8, the chunk at k0 / 8, the lane's 16 bytes at t (32-bit index math)
  return tok < M ? __ldg(reinterpret_cast<const uint4*>(x) + (tok * (ldx >> 3) + (k0 >> 3) + (lane & 3)))
                 : make_uint4(0u, 0u, 0u, 0u);
}

template <int NT, int XM>
__device__ __forceinline__ void load_b32(uint32_t bf[4], const uint4* __restrict__ xf,
                                         const __nv_bfloat16* __restrict__ x, int ldx, int M, int kx, int n,
                                         int lane, int k0) {
  if (XM == X_SMEM) {
    const uint4 v = xf[((k0 >> 5) * NT + n) * 32 + lane];
    bf[0] = v.x; bf[1] = v.y; bf[2] = v.z; bf[3] = v.w;
  } else if (XM == X_FRAGS || XM == X_PERM || (XM == X_RUNTIME && xf != nullptr)) {
    const uint4 v = XM == X_PERM ? load_xperm(x, ldx, n * 8 + (lane >> 2), M, k0, lane)
                                 : __ldg(xf + ((size_t)(k0 >> 5) * NT + n) * 32 + lane);
    bf[0] = v.x; bf[1] = v.y; bf[2] = v.z; bf[3] = v.w;
  } else {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int i = 0; i < 4; ++i) bf[i] = load_x2(x, ldx, n * 8 + g, M, k0 + 2 * t + 8 * i, kx);
  }
}
// the two registers of an m16n8k16 B fragment at k0 (a multiple of 16)
template <int NT, int XM>
__device__ __forceinline__ void load_b16(uint32_t& b0, uint32_t& b1, const uint4* __restrict__ xf,
                                         const __nv_bfloat16* __restrict__ x, int ldx, int M, int kx, int n,
                                         int lane, int k0) {
  if (XM == X_SMEM || XM == X_FRAGS || XM == X_PERM || (XM == X_RUNTIME && xf != nullptr)) {
    const int k32 = k0 & ~31;  // X_PERM: the chunk's 16 bytes of this lane (both halves)
    const uint4 v = XM == X_SMEM   ? xf[((k0 >> 5) * NT + n) * 32 + lane]
                    : XM == X_PERM ? load_xperm(x, ldx, n * 8 + (lane >> 2), M, k32, lane)
                                   : __ldg(xf + ((size_t)(k0 >> 5) * NT + n) * 32 + lane);
    const bool hi = (k0 >> 4) & 1;
    b0 = hi ? v.z : v.x;
    b1 = hi ? v.w : v.y;
  } else {
    const int g = lane >> 2, t = lane & 3;
    b0 = load_x2(x, ldx, n * 8 + g, M, k0 + 2 * t, kx);
    b1 = load_x2(x, ldx, n * 8 + g, M, k0 + 2 * t + 8, kx);
  }
}

// The x (B) fragments of one 64-K step at x column xb, loaded ahead of its MMAs (the register kernel's
// x ring, spense_mmasp_reg.cuh: XD): two 32-K chunks x NT fragments of 8 tokens, one uint4 per lane each
// (an m16n8k32 B fragment; its halves serve the two m16n8k16 pieces of a dense step).  Through xf, a
// lane whose token (8 n + lane / 4) is past M loads nothing and holds zeros, as xf does there: at
// M = 1, 4 of the 32 lanes load.
template <int NT, int XM>
__device__ __forceinline__ void load_xstep(uint4 (&xr)[2][NT], const uint4* __restrict__ xf,
                                           const __nv_bfloat16* __restrict__ x, int ldx, int M, int kx,
                                           int lane, int xb) {
  static_assert(XM != X_SMEM, "load_xstep reads x from global memory (xf or x)");
#pragma unroll
  for (int c = 0; c < 2; ++c)
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      const int k0 = xb + 32 * c;
      if (XM == X_PERM) {
        xr[c][n] = load_xperm(x, ldx, 8 * n + (lane >> 2), M, k0, lane);
      } else if (XM == X_FRAGS || (XM == X_RUNTIME && xf != nullptr)) {
        xr[c][n] = 8 * n + (lane >> 2) < M ? __ldg(xf + ((size_t)(k0 >> 5) * NT + n) * 32 + lane)
                                           : make_uint4(0u, 0u, 0u, 0u);
      } else {
        uint32_t bf[4];
        load_b32<NT, X_DIRECT>(bf, xf, x, ldx, M, kx, n, lane, k0);
        xr[c][n] = make_uint4(bf[0], bf[1], bf[2], bf[3]);
      }
    }
}

// ---------------- the per-step math and the epilogue, shared by both kernels ----------------
// the A fragments of piece j of a step, for each of RT row tiles: sparse (j = 0, 1: one mma.sp each;
// FP8: both expanded from one uint4 of e4m3 bytes) and dense (j = 0..3: one m16n8k16 each)
template <int RT, int FP8, int NVS>
__device__ __forceinline__ void a_sparse(uint4 (&a)[RT], const uint4 (&va)[RT][NVS], int j) {
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    if (FP8 == 2) a[r] = j == 0 ? e4m3x8_frag_h(va[r][0].x, va[r][0].y) : e4m3x8_frag_h(va[r][0].z, va[r][0].w);
    else if (FP8) a[r] = j == 0 ? e4m3x8_frag(va[r][0].x, va[r][0].y) : e4m3x8_frag(va[r][0].z, va[r][0].w);
    else a[r] = va[r][FP8 ? 0 : j];
  }
}
template <int RT, int FP8, int NVD>
__device__ __forceinline__ void a_dense(uint4 (&a)[RT], const uint4 (&da)[RT][NVD], int j) {
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    if (FP8) {
      const uint4& q = da[r][j >> 1];
      if (FP8 == 2) a[r] = (j & 1) == 0 ? e4m3x8_frag_h(q.x, q.y) : e4m3x8_frag_h(q.z, q.w);
      else a[r] = (j & 1) == 0 ? e4m3x8_frag(q.x, q.y) : e4m3x8_frag(q.z, q.w);
    } else {
      a[r] = da[r][FP8 ? 0 : j];
    }
  }
}

// one sparse 64-K step of RT row tiles: va = each tile's values (NVS uint4 per lane; bf16: one per
// mma.sp, FP8: one uint4 holding both), me = its metadata word, xb = the step's first x column
template <int RT, int NT, int FP8, int NVS, int XM>
__device__ __forceinline__ void sparse_step(float (&acc)[RT][NT][4], const uint4 (&va)[RT][NVS],
                                            const uint32_t (&me)[RT], int xb, const uint4* __restrict__ xf,
                                            const __nv_bfloat16* __restrict__ x, int ldx, int M, int kx, int lane) {
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int k0 = xb + j * 32;
    uint4 a[RT];
    a_sparse<RT, FP8, NVS>(a, va, j);
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      uint32_t bf[4];
      load_b32<NT, XM>(bf, xf, x, ldx, M, kx, n, lane, k0);
#pragma unroll
      for (int r = 0; r < RT; ++r) mma_sp<FP8 == 2>(acc[r][n], a[r], bf, me[r], j);
    }
  }
}

// one dense 64-K step (4 mma.m16n8k16 per tile): da = each tile's NVD uint4 per lane
template <int RT, int NT, int FP8, int NVD, int XM>
__device__ __forceinline__ void dense_step(float (&acc)[RT][NT][4], const uint4 (&da)[RT][NVD], int xb,
                                           const uint4* __restrict__ xf, const __nv_bfloat16* __restrict__ x,
                                           int ldx, int M, int kx, int lane) {
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int k0 = xb + j * 16;
    uint4 a[RT];
    a_dense<RT, FP8, NVD>(a, da, j);
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      uint32_t b0, b1;
      load_b16<NT, XM>(b0, b1, xf, x, ldx, M, kx, n, lane, k0);
#pragma unroll
      for (int r = 0; r < RT; ++r) mma_dense<FP8 == 2>(acc[r][n], a[r], b0, b1);
    }
  }
}

// sparse_step / dense_step with the step's x fragments already in registers (load_xstep)
template <int RT, int NT, int FP8, int NVS>
__device__ __forceinline__ void sparse_step_x(float (&acc)[RT][NT][4], const uint4 (&va)[RT][NVS],
                                              const uint32_t (&me)[RT], const uint4 (&xr)[2][NT]) {
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    uint4 a[RT];
    a_sparse<RT, FP8, NVS>(a, va, j);
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      const uint32_t bf[4] = {xr[j][n].x, xr[j][n].y, xr[j][n].z, xr[j][n].w};
#pragma unroll
      for (int r = 0; r < RT; ++r) mma_sp<FP8 == 2>(acc[r][n], a[r], bf, me[r], j);
    }
  }
}
template <int RT, int NT, int FP8, int NVD>
__device__ __forceinline__ void dense_step_x(float (&acc)[RT][NT][4], const uint4 (&da)[RT][NVD],
                                             const uint4 (&xr)[2][NT]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    uint4 a[RT];
    a_dense<RT, FP8, NVD>(a, da, j);
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      const uint4& v = xr[j >> 1][n];
      const uint32_t b0 = (j & 1) ? v.z : v.x, b1 = (j & 1) ? v.w : v.y;
#pragma unroll
      for (int r = 0; r < RT; ++r) mma_dense<FP8 == 2>(acc[r][n], a[r], b0, b1);
    }
  }
}

// One round of U steps through an x ring of D slots: the x of the first D valid steps is loaded
// before any MMA, and each slot is refilled for the step D later as soon as its step's MMAs are
// issued.  valid(u): step u of the round exists; load(u, slot) / step(u, slot): its x, its MMAs.
template <int U, int D, int NT, typename Valid, typename Load, typename Step>
__device__ __forceinline__ void x_ring_round(Valid valid, Load load, Step step) {
  uint4 xr[D][2][NT];
#pragma unroll
  for (int u = 0; u < D; ++u)
    if (valid(u)) load(u, xr[u]);
#pragma unroll
  for (int u = 0; u < U; ++u) {
    if (valid(u)) step(u, xr[u % D]);
    if (u + D < U && valid(u + D)) load(u + D, xr[u % D]);
  }
}

template <int RT, int NT>
__device__ __forceinline__ void zero_acc(float (&acc)[RT][NT][4]) {
#pragma unroll
  for (int r = 0; r < RT; ++r)
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[r][n][q] = 0.f;
}

// f(index into a [RT*16 rows][NT*8 tokens] buffer, value) for each of this lane's accumulators
template <int RT, int NT, typename F>
__device__ __forceinline__ void each_partial(const float (&acc)[RT][NT][4], int lane, F f) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int r = 0; r < RT; ++r)
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      const int row0 = r * 16 + g, col0 = n * 8 + 2 * t;
      f(row0 * NT * 8 + col0, acc[r][n][0]);
      f(row0 * NT * 8 + col0 + 1, acc[r][n][1]);
      f((row0 + 8) * NT * 8 + col0, acc[r][n][2]);
      f((row0 + 8) * NT * 8 + col0 + 1, acc[r][n][3]);
    }
}
// this warp's partial sums into the CTA's reduction buffer red[RT*16 rows][NT*8 tokens] (zeroed first)
template <int RT, int NT>
__device__ __forceinline__ void add_partials(float* red, const float (&acc)[RT][NT][4], int lane) {
  each_partial<RT, NT>(acc, lane, [&](int i, float v) { atomicAdd(&red[i], v); });
}

// FP8 (the kernels' template argument): 0 bf16 weights, 1 e4m3 weights with x in bf16, 2 e4m3 with x in f16 as
// x * 2^-8 (spense.runtime.xops.f16_x): each pair widened by one cvt, the MMAs in f16, and the scale times 2^8 here
template <int FP8>
__device__ __forceinline__ constexpr float fp8_unscale() { return FP8 == 2 ? 256.f : 1.f; }

// The output row (and FP8 scale) of this thread's first element in store_rows, read when the kernel
// starts, so that the epilogue does not wait on a global load after the reduction.  o = -1: none.
struct RowOut { int o; float s; };
template <int RT, int NT, int FP8>
__device__ __forceinline__ RowOut first_row_out(int b, const int* __restrict__ out_row,
                                                const float* __restrict__ wscale, int M) {
  constexpr int ROWS = RT * 16;
  const int i = threadIdx.x;
  RowOut p{-1, 1.f};
  if (i < ROWS * NT * 8 && i % (NT * 8) < M) {
    p.o = __ldg(out_row + b * ROWS + i / (NT * 8));
    if (FP8 && p.o >= 0) p.s = __ldg(wscale + p.o);  // x fp8_unscale at the store: no wait for it here
  }
  return p;
}

// after the reduction: y[tok, out_row[row]] = val(i) for i = (row, tok) (x the row's FP8 scale), every
// thread; pre: the thread's first element's row, from first_row_out (pre.o == -2: not read ahead)
template <int RT, int NT, int FP8, typename Val>
__device__ __forceinline__ void store_rows_of(Val val, int b, const int* __restrict__ out_row,
                                              const float* __restrict__ wscale, __nv_bfloat16* __restrict__ y,
                                              int ldy, int M, RowOut pre = RowOut{-2, 1.f}) {
  constexpr int ROWS = RT * 16;
  for (int i = threadIdx.x; i < ROWS * NT * 8; i += blockDim.x) {
    const int row = i / (NT * 8), tok = i % (NT * 8);
    if (tok < M) {
      const bool ahead = i == (int)threadIdx.x && pre.o != -2;
      const int o = ahead ? pre.o : out_row[b * ROWS + row];
      if (o >= 0) {
        float v = val(i);
        if (FP8) v *= (ahead ? pre.s : __ldg(wscale + o)) * fp8_unscale<FP8>();
        y[(size_t)tok * ldy + o] = __float2bfloat16(v);
      }
    }
  }
}
// DET's end of a row block: each warp stores its partial sums in its own slice of red ([warps][RT*16 rows][NT*8
// tokens]), one barrier, then every output is the sum over the warps in warp order (the same bits on every run)
template <int RT, int NT, int FP8>
__device__ __forceinline__ void det_sum_store(float* red, const float (&acc)[RT][NT][4], int warp, int lane, int W,
                                              int b, const int* __restrict__ out_row,
                                              const float* __restrict__ wscale, __nv_bfloat16* __restrict__ y,
                                              int ldy, int M, RowOut pre) {
  constexpr int SLICE = RT * 16 * NT * 8;
  float* mine = red + warp * SLICE;
  each_partial<RT, NT>(acc, lane, [&](int i, float v) { mine[i] = v; });
  __syncthreads();
  store_rows_of<RT, NT, FP8>([&](int i) {
    float v = 0.f;
    for (int w = 0; w < W; ++w) v += red[w * SLICE + i];
    return v;
  }, b, out_row, wscale, y, ldy, M, pre);
}
// ... of the reduction buffer red[RT*16 rows][NT*8 tokens]
template <int RT, int NT, int FP8>
__device__ __forceinline__ void store_rows(const float* red, int b, const int* __restrict__ out_row,
                                           const float* __restrict__ wscale, __nv_bfloat16* __restrict__ y,
                                           int ldy, int M, RowOut pre = RowOut{-2, 1.f}) {
  store_rows_of<RT, NT, FP8>([&](int i) { return red[i]; }, b, out_row, wscale, y, ldy, M, pre);
}
