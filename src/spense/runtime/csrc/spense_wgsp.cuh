// The Spense prefill GEMM on Hopper's sparse warpgroup MMA (wgmma.mma_async.sp, sm_90a).  Written after
// e2e v15 (harness: benchmarks/wgsp_check.cu); SpenseLinear's prefill path since e2e v16 (docs/runtime.md §11).
//
//   y[t][o] = sum_k W[o][k] x[t][k]      for many tokens t (prefill: M >= 64)
//
// read from the decode kernel's own layout (spense.runtime.mmasp.to_kernel_layout: per 16-row tile and
// 64-K step the mma.sp A fragments and metadata words, lane-major), so prefill needs no second copy of
// the weights (issue 9: a composed cuSPARSELt + dense layer would need one):
// - a CTA is one warpgroup (4 warps) on 4 consecutive row tiles of one kind (64 output rows) and WG_N
//   tokens; warp w owns row tile 4 blk + w and loads its A fragments straight into registers: per warp,
//   wgmma's register A fragment and its sparse metadata are those of mma.sp m16n8k32 / mma m16n8k16
//   (PTX ISA 9.7.15.6.2; CUTLASS GMMA::ALayout_64x32 and ELayout_64x32), so the kernel layout serves as is;
// - per 64-K step, the WG_N tokens' 64 columns of x (sblk / dblk: the step's first column) go through a
//   ring of WG_STAGES shared-memory tiles by cp.async, 128-byte swizzled: B = x^T is K-major, element
//   (n, k) of a tile at n*128 + ((k/8 ^ n%8) * 16) + (k%8)*2 (PTX ISA 9.7.15.5.1.2, canonical K-major
//   layout with 128B swizzle: SBO 1024 B, LBO unused);
// - a sparse step is two wgmma.mma_async.sp m64nWG_Nk32 (sparsity selector j = the step's 32-K half,
//   the descriptor advanced by 64 bytes), a dense step four wgmma.mma_async m64nWG_Nk16 (by 32 bytes),
//   all accumulating into WG_N / 2 fp32 registers per thread;
// - row tiles come in the decode kernel's two kinds: [0, Bs) with Ss sparse then SdA dense steps, and
//   [Bs, Bs + Bd) with SdB dense steps (Bs and Bd multiples of 4, else launch_wgsp refuses).
// bf16 weights only.  D's fragment: warp w, lane 4g + c, register j holds row 16w + g + 8((j >> 1) & 1),
// token 8(j >> 2) + 2c + (j & 1) (CUTLASS CLayout_64xN).
#pragma once
#include "spense_mmasp_common.cuh"

constexpr int WG_N = 128;               // tokens per CTA
constexpr int WG_STAGES = 4;            // x tiles in flight
constexpr int WG_TILE = WG_N * 128;     // bytes per x tile: WG_N tokens x 64 bf16
constexpr int WG_SMEM = WG_STAGES * WG_TILE + 1024;  // + the 1024-byte alignment of the swizzle pattern

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }
// bytes from p (shared) to the next 1024-byte boundary of the shared window (the swizzle pattern's base);
// added to the shared array itself, so that the compiler keeps its address space
__device__ __forceinline__ int wg_align1024(const void* p) { return (int)((1024 - (smem_addr(p) & 1023)) & 1023); }
// 16-byte cp.async global -> shared; src_bytes < 16 fills the rest with zeros (0: all zeros)
__device__ __forceinline__ void cp_async16_fill(uint32_t s, const void* g, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(s), "l"(g), "r"(src_bytes) : "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory"); }
// cp.async writes shared memory through the generic proxy; wgmma reads it through the async proxy
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(N) : "memory"); }

// shared-memory matrix descriptor of a K-major tile with 128-byte swizzle, based on a 1024-byte boundary:
// start address >> 4 in bits 0-13, LBO (unused with this swizzle, 1) in 16-29, SBO = 1024 B (8 rows of
// 128 B) >> 4 in 32-45, base offset 0 in 49-51, swizzle mode 1 (128 B) in 62-63.  Advancing K within the
// 128-byte row adds bytes / 16 to the start field.
__device__ __forceinline__ uint64_t wg_desc(uint32_t saddr) {
  return (uint64_t)((saddr & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) |
         ((uint64_t)1 << 62);
}

// the 64 fp32 accumulator operands of an m64n128 wgmma, read and written (%0 .. %63)
#define WG_ACC64(d) \
      "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
      "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
      "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
      "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
      "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
      "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
      "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
// ... and their PTX operand numbers, as one string
#define WG_REGS64 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"

// D (64 x 128, fp32) += A (64 x 32, 2:4 sparse: 16 kept values per row, registers) B (32 x 128, shared); sd = 0:
// D = A B (D's old values ignored)
template <int SEL>
__device__ __forceinline__ void wgmma_sp(float (&d)[64], const uint4& a, uint64_t desc, uint32_t e, int sd = 1) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %70, 0;\n"
      "wgmma.mma_async.sp.sync.aligned.m64n128k32.f32.bf16.bf16 "
      "{" WG_REGS64 "}, "
      "{%64, %65, %66, %67}, %68, %69, %71, "
      "p, 1, 1, 0;\n}\n"
      : WG_ACC64(d)
      : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(desc), "r"(e), "r"(sd), "n"(SEL));
}
// D (64 x 128, fp32) += A (64 x 16, registers) B (16 x 128, shared); sd as wgmma_sp's
__device__ __forceinline__ void wgmma_dense(float (&d)[64], const uint4& a, uint64_t desc, int sd = 1) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{" WG_REGS64 "}, "
      "{%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
      : WG_ACC64(d)
      : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(desc), "r"(sd));
}
// the 128 fp32 accumulator operands of an m64n256 wgmma (prefill on CTAs of 8 row tiles and 256 tokens, which read
// each step's A box for twice the tokens of the 128-token form; its functions by WG_MMA_SMALL below)
#define WG_ACC128(d) WG_ACC64(d), WG_ACC64((d + 64))
#define WG_REGS128 \
  WG_REGS64 ", %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
  "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
  "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
  "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
// the same for 64 tokens (m64n64: 32 fp32 accumulators per thread; the decode form of the kernel)
#define WG_ACC32(d) \
      "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
      "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
      "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
template <int SEL>
__device__ __forceinline__ void wgmma_sp(float (&d)[32], const uint4& a, uint64_t desc, uint32_t e) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %38, 0;\n"
      "wgmma.mma_async.sp.sync.aligned.m64n64k32.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "{%32, %33, %34, %35}, %36, %37, %39, p, 1, 1, 0;\n}\n"
      : WG_ACC32(d)
      : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(desc), "r"(e), "r"(1), "n"(SEL));
}
__device__ __forceinline__ void wgmma_dense(float (&d)[32], const uint4& a, uint64_t desc) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "{%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
      : WG_ACC32(d)
      : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(desc), "r"(1));
}
// ... for 32 and 16 tokens (m64n32, m64n16: 16 and 8 fp32 accumulators per thread; the decode form at M <= 32,
// 16), one macro for both: NA accumulators ACC(d), their operands REGS ("%0, .., %NA-1"), then A's four, the
// descriptor, (sparse: the metadata,) the scale-d source and (sparse: the selector) as PTX operand numbers
#define WG_ACC16(d) \
      "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
#define WG_ACC8(d) \
      "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
// SFX: the functions' suffix, none for wgmma_sp / wgmma_dense (bf16 A and B), _h for wgmma_sp_h / wgmma_dense_h
// (f16: e4m3 weights taken as f16 with x in f16, variant bit 2048 of the stream-K form); TY their PTX type
#define WG_MMA_SMALL(NA, NTOK, ACC, REGS, A, D, SP_E, SP_P, SP_SEL, DE_P, SFX, TY)                            \
  template <int SEL>                                                                                          \
  __device__ __forceinline__ void wgmma_sp##SFX(float(&d)[NA], const uint4& a, uint64_t desc, uint32_t e) {   \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " SP_P ", 0;\n"                                          \
                 "wgmma.mma_async.sp.sync.aligned.m64n" #NTOK "k32.f32." #TY "." #TY " {" REGS "}, {" A "}, " D \
                 ", " SP_E ", " SP_SEL ", p, 1, 1, 0;\n}\n"                                                    \
                 : ACC(d)                                                                                     \
                 : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(desc), "r"(e), "r"(1), "n"(SEL));             \
  }                                                                                                           \
  __device__ __forceinline__ void wgmma_dense##SFX(float(&d)[NA], const uint4& a, uint64_t desc) {            \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " DE_P ", 0;\n"                                          \
                 "wgmma.mma_async.sync.aligned.m64n" #NTOK "k16.f32." #TY "." #TY " {" REGS "}, {" A "}, " D   \
                 ", p, 1, 1, 0;\n}\n"                                                                         \
                 : ACC(d)                                                                                     \
                 : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(desc), "r"(1));                                \
  }
WG_MMA_SMALL(16, 32, WG_ACC16, "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15",
             "%16, %17, %18, %19", "%20", "%21", "%22", "%23", "%21", , bf16)
WG_MMA_SMALL(8, 16, WG_ACC8, "%0, %1, %2, %3, %4, %5, %6, %7", "%8, %9, %10, %11", "%12", "%13", "%14", "%15", "%13", ,
             bf16)
WG_MMA_SMALL(8, 16, WG_ACC8, "%0, %1, %2, %3, %4, %5, %6, %7", "%8, %9, %10, %11", "%12", "%13", "%14", "%15", "%13",
             _h, f16)
WG_MMA_SMALL(16, 32, WG_ACC16, "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15",
             "%16, %17, %18, %19", "%20", "%21", "%22", "%23", "%21", _h, f16)
// ... and for 256 tokens (m64n256, WG_ACC128 above: prefill on CTAs of 8 row tiles and 256 tokens)
WG_MMA_SMALL(128, 256, WG_ACC128, WG_REGS128, "%128, %129, %130, %131", "%132", "%133", "%134", "%135", "%133", , bf16)
// The SS forms (A read by the wgmma from shared memory too, through a descriptor; the prefill trial form SSA of
// spense_wgsp_ws_kernel): A's descriptor, a K-major tile without swizzle in core matrices of 8 rows x 16 bytes
// (128 contiguous bytes each): start >> 4 in bits 0-13, LBO (the bytes between core matrices adjacent in K) in
// 16-29, SBO (between core matrices adjacent in M, 8 rows apart) in 32-45, layout type 0 (no swizzle) in 62-63
// (PTX ISA 9.7.15.5.1, CUTLASS GmmaDescriptor: ((8, m), (T, 2)) : ((1T, SBO), (1, LBO)) in 16-byte units T).  On
// the device the strides in each other's fields gave wrong sums (rel. 1.32-1.33; benchmarks/results/wgsd_2026-12-06 dl)
__device__ __forceinline__ uint64_t wg_desc_a(uint32_t saddr, int lbo, int sbo) {
  return (uint64_t)((saddr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(sbo >> 4) << 32);
}
// D (64 x NTOK, fp32) += A (64 x 32, 2:4 sparse: its 64 x 16 kept values in shared memory, descriptor da) B (32 x
// NTOK, shared, db), metadata e in a register as wgmma_sp's; and the dense D += A (64 x 16, shared) B (16 x NTOK).
// NA accumulators ACC(d), their operands REGS, then the PTX operand numbers of da, db, e, the scale-d source sd (0:
// D = A B, the accumulators' old values ignored) and sel
#define WG_MMA_SS(NA, NTOK, ACC, REGS, DA, DB, E, P, SEL, DE_P)                                                \
  template <int S_>                                                                                          \
  __device__ __forceinline__ void wgmma_sp_ss(float(&d)[NA], uint64_t da, uint64_t db, uint32_t e,           \
                                              int sd = 1) {                                                  \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " P ", 0;\n"                                              \
                 "wgmma.mma_async.sp.sync.aligned.m64n" #NTOK "k32.f32.bf16.bf16 {" REGS "}, " DA ", " DB ", " E \
                 ", " SEL ", p, 1, 1, 0, 0;\n}\n"                                                               \
                 : ACC(d)                                                                                    \
                 : "l"(da), "l"(db), "r"(e), "r"(sd), "n"(S_));                                              \
  }                                                                                                          \
  __device__ __forceinline__ void wgmma_dense_ss(float(&d)[NA], uint64_t da, uint64_t db, int sd = 1) {      \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " DE_P ", 0;\n"                                           \
                 "wgmma.mma_async.sync.aligned.m64n" #NTOK "k16.f32.bf16.bf16 {" REGS "}, " DA ", " DB          \
                 ", p, 1, 1, 0, 0;\n}\n"                                                                        \
                 : ACC(d)                                                                                    \
                 : "l"(da), "l"(db), "r"(sd));                                                               \
  }
WG_MMA_SS(64, 128, WG_ACC64, WG_REGS64, "%64", "%65", "%66", "%67", "%68", "%66")
WG_MMA_SS(128, 256, WG_ACC128, WG_REGS128, "%128", "%129", "%130", "%131", "%132", "%130")
// keeps the compiler from moving reads of the accumulators above the wgmma wait
template <int NA>
__device__ __forceinline__ void wg_fence_acc(float (&d)[NA]) {
#pragma unroll
  for (int i = 0; i < NA; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// the epilogue, straight from a warp's accumulators: register j of lane 4g + c holds row g + 8((j >> 1) & 1)
// of the warp's row tile (output rows o0 and o1 = out_row of rows g and g + 8; -1: padding) and token
// tok0 + 8(j >> 2) + 2c + (j & 1)
__device__ __forceinline__ void wg_put(float v, int j, int o0, int o1, int tok0, int c,
                                       __nv_bfloat16* __restrict__ y, int ldy, int M) {
  const int o = ((j >> 1) & 1) ? o1 : o0;
  const int tok = tok0 + 8 * (j >> 2) + 2 * c + (j & 1);
  if (tok < M && o >= 0) y[(size_t)tok * ldy + o] = __float2bfloat16(v);
}
// the two output rows (o0, o1) this lane stores of row tile `tile`: loaded ahead of the epilogue, they keep a
// round trip to memory off its path
__device__ __forceinline__ int2 wg_rows(const int* __restrict__ out_row, int tile, int lane) {
  return make_int2(__ldg(out_row + tile * 16 + (lane >> 2)), __ldg(out_row + tile * 16 + (lane >> 2) + 8));
}
template <int NA>
__device__ __forceinline__ void wg_store_rows(const float (&acc)[NA], int2 o, int tok0, int lane,
                                              __nv_bfloat16* __restrict__ y, int ldy, int M) {
#pragma unroll
  for (int j = 0; j < NA; ++j) wg_put(acc[j], j, o.x, o.y, tok0, lane & 3, y, ldy, M);
}
template <int NA>
__device__ __forceinline__ void wg_store(const float (&acc)[NA], int tile, int tok0, int lane,
                                         const int* __restrict__ out_row, __nv_bfloat16* __restrict__ y, int ldy,
                                         int M) {
  wg_store_rows(acc, wg_rows(out_row, tile, lane), tok0, lane, y, ldy, M);
}

// whether a prefill kernel with CTAs of `tiles` row tiles applies: row tiles of each kind in multiples of it,
// K a multiple of 64, x, its rows and the weights 16-byte aligned
inline bool wg_fits(int tiles, const uint4* sv, const uint32_t* sm, const uint4* dv, const __nv_bfloat16* x,
                    int ldx, int K, int M, int Bs, int Bd) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(sv) |
                         reinterpret_cast<uintptr_t>(sm) | reinterpret_cast<uintptr_t>(dv);
  return !(Bs % tiles || Bd % tiles || ldx % 8 || K % 64 || M < 1 || Bs + Bd == 0 || (addr & 15));
}
// raises `kernel`'s dynamic shared-memory limit to smem, once per device below 32 (the bits of set_on,
// the caller's static)
template <typename Kernel>
inline cudaError_t wg_smem_limit(Kernel kernel, int smem, unsigned& set_on) {
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess || (dev < 32 && (set_on >> dev & 1u))) return e;
  e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e == cudaSuccess && dev < 32) set_on |= 1u << dev;
  return e;
}

// launches a prefill kernel: token tiles vary fastest over the grid, so that the CTAs of a wave share their
// row blocks' weights in L2 and x stays there; cudaErrorInvalidValue where it does not apply (row tiles of
// each kind not in TILES, K not a multiple of 64, x, its rows or the weights not 16-byte aligned): the
// caller falls back
template <int TILES, int THREADS, int SMEM>
inline cudaError_t launch_wg_kernel(
    void (*kernel)(const uint4*, const uint32_t*, const uint4*, const __nv_bfloat16*, int, int, const int*,
                   const int*, const int*, __nv_bfloat16*, int, int, int, int, int, int),
    cudaStream_t stream, const uint4* sv, const uint32_t* sm, const uint4* dv, const __nv_bfloat16* x, int ldx, int K,
    int M, const int* sblk, const int* dblk, const int* out_row, __nv_bfloat16* y, int ldy, int Bs, int Bd, int Ss,
    int SdA, int SdB) {
  if (!wg_fits(TILES, sv, sm, dv, x, ldx, K, M, Bs, Bd)) return cudaErrorInvalidValue;
  static unsigned set_on = 0;  // the devices (below 32) this kernel's shared-memory limit was raised on
  const cudaError_t e = wg_smem_limit(kernel, SMEM, set_on);
  if (e != cudaSuccess) return e;
  const dim3 grid((unsigned)((M + WG_N - 1) / WG_N), (unsigned)((Bs + Bd) / TILES));
  kernel<<<grid, THREADS, SMEM, stream>>>(sv, sm, dv, x, ldx, M, sblk, dblk, out_row, y, ldy, Bs, Bd, Ss, SdA, SdB);
  return cudaGetLastError();
}

// step q's first column of x: from sblk for the nsp sparse steps, then from dblk
__device__ __forceinline__ int wg_col(int q, int nsp, const int* __restrict__ sblk, const int* __restrict__ dblk) {
  return q < nsp ? __ldg(sblk + q) : __ldg(dblk + q - nsp);
}
// x[tok0 .. tok0 + WG_N)[c0 .. c0 + 64) into the shared tile at base, swizzled as the descriptor reads it;
// tokens past M read as zeros.  tid: this thread's index among the 128 that copy the tile.
__device__ __forceinline__ void wg_load_x_tile(uint32_t base, const __nv_bfloat16* __restrict__ x, int ldx, int M,
                                               int tok0, int c0, int tid) {
#pragma unroll
  for (int i = 0; i < WG_N * 8 / 128; ++i) {
    const int ch = tid + 128 * i, n = ch >> 3, kc = ch & 7;
    const bool in = tok0 + n < M;
    cp_async16_fill(base + n * 128 + ((kc ^ (n & 7)) << 4), x + (size_t)(in ? tok0 + n : 0) * ldx + c0 + kc * 8,
                    in ? 16 : 0);
  }
}
// row tile t's dense fragments ([steps][128 uint4]): after the sparse tiles' SdA steps each for a dense-row tile
__device__ __forceinline__ const uint4* wg_dense_base(const uint4* dv, int t, bool sp_rows, int Bs, int SdA, int SdB) {
  return sp_rows ? dv + (size_t)t * SdA * 128 : dv + ((size_t)Bs * SdA + (size_t)(t - Bs) * SdB) * 128;
}

// one 64-K step's A for this warp's row tile: sparse (v[0..1]: the two mma.sp fragments, e: metadata) or
// dense (v[0..3]: the four m16n8k16 fragments)
struct WgA {
  uint4 v[4];
  uint32_t e;
};

__global__ void __launch_bounds__(128, 1) spense_wgsp_kernel(
    const uint4* __restrict__ sv, const uint32_t* __restrict__ sm, const uint4* __restrict__ dv,
    const __nv_bfloat16* __restrict__ x, int ldx, int M, const int* __restrict__ sblk,
    const int* __restrict__ dblk, const int* __restrict__ out_row, __nv_bfloat16* __restrict__ y, int ldy,
    int Bs, int Bd, int Ss, int SdA, int SdB) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma and its mbarrier waits: sm_90a only (an empty kernel elsewhere)
  extern __shared__ uint8_t wg_raw[];
  uint8_t* ring = wg_raw + wg_align1024(wg_raw);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int tile = 4 * blockIdx.y + warp, tok0 = blockIdx.x * WG_N;
  const bool sp_rows = 4 * (int)blockIdx.y < Bs;
  const int nsp = sp_rows ? Ss : 0, nde = sp_rows ? SdA : SdB, Q = nsp + nde;
  const uint4* vb = sv + (size_t)tile * Ss * 64;   // [tile][Ss][64 uint4]
  const uint32_t* mb = sm + (size_t)tile * Ss * 32;  // [tile][Ss][32 u32]
  const uint4* db = wg_dense_base(dv, tile, sp_rows, Bs, SdA, SdB);
  auto load_tile = [&](int q, int st) {
    wg_load_x_tile(smem_addr(ring + st * WG_TILE), x, ldx, M, tok0, wg_col(q, nsp, sblk, dblk), threadIdx.x);
  };
  auto load_a = [&](int q, WgA& f) {
    if (q < nsp) {
      const uint4* p = vb + (size_t)q * 64 + lane;
      f.v[0] = ldg_stream(p);
      f.v[1] = ldg_stream(p + 32);
      f.e = ldg_stream32(mb + (size_t)q * 32 + lane);
    } else if (q < Q) {
      const uint4* p = db + (size_t)(q - nsp) * 128 + lane;
#pragma unroll
      for (int j = 0; j < 4; ++j) f.v[j] = ldg_stream(p + 32 * j);
    }
  };

  float acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.f;
#pragma unroll
  for (int q = 0; q < WG_STAGES - 1; ++q) {
    if (q < Q) load_tile(q, q);
    cp_async_commit();
  }
  WgA cur, nxt;
  load_a(0, cur);
  for (int q = 0; q < Q; ++q) {
    cp_async_wait<WG_STAGES - 2>();  // this thread's part of tile q has landed
    fence_proxy_async();
    __syncthreads();                 // everyone's part, and every warp is past step q - 1's wgmma
    const int qn = q + WG_STAGES - 1;
    if (qn < Q) load_tile(qn, qn % WG_STAGES);  // into the slot step q - 1 read
    cp_async_commit();
    load_a(q + 1, nxt);
    const uint64_t d0 = wg_desc(smem_addr(ring + (q % WG_STAGES) * WG_TILE));
    wg_fence_acc(acc);  // as CUTLASS's warpgroup_fence_operand: the accumulators stay where the wgmmas left them
    wg_fence();
    if (q < nsp) {
      wgmma_sp<0>(acc, cur.v[0], d0, cur.e);
      wgmma_sp<1>(acc, cur.v[1], d0 + 4, cur.e);  // + 64 bytes: K 32..63 of the step
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) wgmma_dense(acc, cur.v[j], d0 + 2 * j);  // + 32 bytes per 16 K
    }
    wg_commit();
    wg_wait<0>();
    wg_fence_acc(acc);
    cur = nxt;
  }
  wg_store(acc, tile, tok0, lane, out_row, y, ldy, M);
#endif
}

// y (M x ldy) = the Spense layer applied to x (M x K, row stride ldx); the layout as for spense_mmasp_kernel
// with RT = 1, its column blocks (sblk, dblk) whole 64-column blocks of x (no gather); row tiles in fours
inline cudaError_t launch_wgsp(cudaStream_t stream, const uint4* sv, const uint32_t* sm, const uint4* dv,
                               const __nv_bfloat16* x, int ldx, int K, int M, const int* sblk, const int* dblk,
                               const int* out_row, __nv_bfloat16* y, int ldy, int Bs, int Bd, int Ss, int SdA,
                               int SdB) {
  return launch_wg_kernel<4, 128, WG_SMEM>(spense_wgsp_kernel, stream, sv, sm, dv, x, ldx, K, M, sblk, dblk, out_row,
                                           y, ldy, Bs, Bd, Ss, SdA, SdB);
}
