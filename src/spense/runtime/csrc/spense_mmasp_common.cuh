// Device helpers shared by the Spense decode kernels (spense_mmasp.cu): the sparse / dense MMAs,
// streaming loads, e4m3 -> bf16 fragment expansion, x loads.  No torch headers, so the kernels also
// build standalone (nvcc -arch=sm_90 -Xptxas -v, benchmarks/mmasp_build_check.cu).
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

__device__ __forceinline__ void mma_sp(float* c, const uint4& a, const uint32_t* b, uint32_t e, int sel) {
  if (sel == 0) {
    asm("mma.sp.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
  } else {
    asm("mma.sp.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x1;\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
  }
}

__device__ __forceinline__ void mma_dense(float* c, const uint4& a, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
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

// two consecutive bf16 of token `tok` at x column k (k even) -> one b32 register
__device__ __forceinline__ uint32_t load_x2(const __nv_bfloat16* __restrict__ x, int ldx, int tok, int M,
                                            int k, int kx) {
  if (tok >= M || k >= kx) return 0u;
  return __ldg(reinterpret_cast<const uint32_t*>(x + (size_t)tok * ldx + k));
}


// B fragments (x, n = 8 tokens) of one MMA.  With xf (x in fragment order, built on the host by
// spense.runtime.mmasp.x_fragments: [K/32 chunk][NT][lane][4 x bf16 pair]) a lane's whole fragment of a
// 32-K chunk is one coalesced 16-byte load (a warp reads 512 contiguous bytes), instead of four
// 4-byte loads spread over 8 token rows: at M >= 8 those scattered loads, not the weight stream,
// bound the kernel's L1 throughput.  xf == nullptr: straight from x.
template <int NT>
__device__ __forceinline__ void load_b32(uint32_t bf[4], const uint4* __restrict__ xf,
                                         const __nv_bfloat16* __restrict__ x, int ldx, int M, int kx, int n,
                                         int lane, int k0) {
  if (xf != nullptr) {
    const uint4 v = __ldg(xf + ((size_t)(k0 >> 5) * NT + n) * 32 + lane);
    bf[0] = v.x; bf[1] = v.y; bf[2] = v.z; bf[3] = v.w;
  } else {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int i = 0; i < 4; ++i) bf[i] = load_x2(x, ldx, n * 8 + g, M, k0 + 2 * t + 8 * i, kx);
  }
}
// the two registers of an m16n8k16 B fragment at k0 (a multiple of 16)
template <int NT>
__device__ __forceinline__ void load_b16(uint32_t& b0, uint32_t& b1, const uint4* __restrict__ xf,
                                         const __nv_bfloat16* __restrict__ x, int ldx, int M, int kx, int n,
                                         int lane, int k0) {
  if (xf != nullptr) {
    const uint4 v = __ldg(xf + ((size_t)(k0 >> 5) * NT + n) * 32 + lane);
    const bool hi = (k0 >> 4) & 1;
    b0 = hi ? v.z : v.x;
    b1 = hi ? v.w : v.y;
  } else {
    const int g = lane >> 2, t = lane & 3;
    b0 = load_x2(x, ldx, n * 8 + g, M, k0 + 2 * t, kx);
    b1 = load_x2(x, ldx, n * 8 + g, M, k0 + 2 * t + 8, kx);
  }
}
