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
// --use_fast_math flush to zero); the epilogue multiplies by wscale[n] = scale[n].  Activations stay bf16.
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
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
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

template <int RT, int NT, bool FP8, int U>
__global__ void __launch_bounds__(512) spense_mmasp_kernel(
    const uint4* __restrict__ sv, const uint32_t* __restrict__ sm, const uint4* __restrict__ dv,
    const __nv_bfloat16* __restrict__ x, int ldx, int M, int kx,
    const int* __restrict__ sblk, const int* __restrict__ dblk,
    const int* __restrict__ out_row, const float* __restrict__ wscale,
    __nv_bfloat16* __restrict__ y, int ldy, int Bs, int Bd, int Ss, int SdA, int SdB) {
  constexpr int ROWS = RT * 16;
  constexpr int VS = FP8 ? 32 : 64;   // uint4 per (row tile, sparse step)
  constexpr int VD = FP8 ? 64 : 128;  // uint4 per (row tile, dense step)
  constexpr int NVS = FP8 ? 1 : 2;    // uint4 per lane per sparse step
  constexpr int NVD = FP8 ? 2 : 4;    // uint4 per lane per dense step
  __shared__ float red[ROWS * NT * 8];
  const int W = blockDim.x >> 5;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int bi = blockIdx.x;
  const int b = bi < Bd ? Bs + bi : bi - Bd;

  for (int i = threadIdx.x; i < ROWS * NT * 8; i += blockDim.x) red[i] = 0.f;

  float acc[RT][NT][4];
#pragma unroll
  for (int r = 0; r < RT; ++r)
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[r][n][q] = 0.f;

  int nsp, nde;
  const uint4* dbase;
  if (b < Bs) {
    nsp = Ss; nde = SdA;
    dbase = dv + (size_t)b * RT * SdA * VD;
  } else {
    nsp = 0; nde = SdB;
    dbase = dv + ((size_t)Bs * RT * SdA + (size_t)(b - Bs) * RT * SdB) * VD;
  }

  // ---------------- sparse steps (64 K = 2 mma.sp per row tile) ----------------
  if (nsp) {
    const uint4* vbase = sv + (size_t)b * RT * Ss * VS;      // [RT][Ss][VS]
    const uint32_t* mbase = sm + (size_t)b * RT * Ss * 32;   // [RT][Ss][32] u32
    for (int s0 = warp; s0 < nsp; s0 += W * U) {
      uint4 va[U][RT][NVS];
      uint32_t me[U][RT];
      int xb[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int s = s0 + u * W;
        if (s < nsp) {
          xb[u] = __ldg(sblk + s);
#pragma unroll
          for (int r = 0; r < RT; ++r) {
            const uint4* p = vbase + ((size_t)r * Ss + s) * VS + lane;
#pragma unroll
            for (int v = 0; v < NVS; ++v) va[u][r][v] = ldg_stream(p + 32 * v);
            me[u][r] = ldg_stream32(mbase + ((size_t)r * Ss + s) * 32 + lane);
          }
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int s = s0 + u * W;
        if (s < nsp) {
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const int k0 = xb[u] + j * 32;
            uint4 a[RT];
#pragma unroll
            for (int r = 0; r < RT; ++r) {
              if (FP8) a[r] = j == 0 ? e4m3x8_frag(va[u][r][0].x, va[u][r][0].y)
                                     : e4m3x8_frag(va[u][r][0].z, va[u][r][0].w);
              else a[r] = va[u][r][FP8 ? 0 : j];
            }
#pragma unroll
            for (int n = 0; n < NT; ++n) {
              uint32_t bf[4];
#pragma unroll
              for (int i = 0; i < 4; ++i) bf[i] = load_x2(x, ldx, n * 8 + g, M, k0 + 2 * t + 8 * i, kx);
#pragma unroll
              for (int r = 0; r < RT; ++r) mma_sp(acc[r][n], a[r], bf, me[u][r], j);
            }
          }
        }
      }
    }
  }
  // ---------------- dense steps (64 K = 4 mma.m16n8k16 per row tile) ----------------
  if (nde) {
    for (int s0 = warp; s0 < nde; s0 += W * U) {
      uint4 da[U][RT][NVD];
      int xb[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int s = s0 + u * W;
        if (s < nde) {
          xb[u] = __ldg(dblk + s);
#pragma unroll
          for (int r = 0; r < RT; ++r) {
            const uint4* p = dbase + ((size_t)r * nde + s) * VD + lane;
#pragma unroll
            for (int j = 0; j < NVD; ++j) da[u][r][j] = ldg_stream(p + 32 * j);
          }
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int s = s0 + u * W;
        if (s < nde) {
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int k0 = xb[u] + j * 16;
            uint4 a[RT];
#pragma unroll
            for (int r = 0; r < RT; ++r) {
              if (FP8) {
                const uint4& q = da[u][r][j >> 1];
                a[r] = (j & 1) == 0 ? e4m3x8_frag(q.x, q.y) : e4m3x8_frag(q.z, q.w);
              } else {
                a[r] = da[u][r][FP8 ? 0 : j];
              }
            }
#pragma unroll
            for (int n = 0; n < NT; ++n) {
              uint32_t b0 = load_x2(x, ldx, n * 8 + g, M, k0 + 2 * t, kx);
              uint32_t b1 = load_x2(x, ldx, n * 8 + g, M, k0 + 2 * t + 8, kx);
#pragma unroll
              for (int r = 0; r < RT; ++r) mma_dense(acc[r][n], a[r], b0, b1);
            }
          }
        }
      }
    }
  }
  __syncthreads();
  // ---------------- reduce over warps, write in place ----------------
#pragma unroll
  for (int r = 0; r < RT; ++r)
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      const int row0 = r * 16 + g, col0 = n * 8 + 2 * t;
      atomicAdd(&red[(row0)*NT * 8 + col0], acc[r][n][0]);
      atomicAdd(&red[(row0)*NT * 8 + col0 + 1], acc[r][n][1]);
      atomicAdd(&red[(row0 + 8) * NT * 8 + col0], acc[r][n][2]);
      atomicAdd(&red[(row0 + 8) * NT * 8 + col0 + 1], acc[r][n][3]);
    }
  __syncthreads();
  for (int i = threadIdx.x; i < ROWS * NT * 8; i += blockDim.x) {
    const int row = i / (NT * 8), tok = i % (NT * 8);
    if (tok < M) {
      const int o = out_row[b * ROWS + row];
      if (o >= 0) {
        float v = red[i];
        if (FP8) v *= __ldg(wscale + o);
        y[(size_t)tok * ldy + o] = __float2bfloat16(v);
      }
    }
  }
}

#define LAUNCH(RT_, NT_, F_)                                                                        \
  spense_mmasp_kernel<RT_, NT_, F_, (F_ ? 8 : 4)><<<grid, threads, 0, stream>>>(                    \
      (const uint4*)sv.data_ptr(), (const uint32_t*)sm.data_ptr(), (const uint4*)dv.data_ptr(),     \
      (const __nv_bfloat16*)x.data_ptr(), (int)x.stride(0), M, (int)x.size(1),                      \
      sblk.data_ptr<int>(), dblk.data_ptr<int>(), out_row.data_ptr<int>(),                          \
      wscale.data_ptr<float>(), (__nv_bfloat16*)y.data_ptr(), (int)y.stride(0),                     \
      (int)Bs, (int)Bd, (int)Ss, (int)SdA, (int)SdB)

#define DISPATCH_NT(RT_, F_)                         \
  switch (NT) {                                      \
    case 1: LAUNCH(RT_, 1, F_); break;               \
    case 2: LAUNCH(RT_, 2, F_); break;               \
    case 4: LAUNCH(RT_, 4, F_); break;               \
    default: LAUNCH(RT_, 8, F_); break;              \
  }

void spense_mmasp(torch::Tensor sv, torch::Tensor sm, torch::Tensor dv, torch::Tensor x,
                  torch::Tensor sblk, torch::Tensor dblk, torch::Tensor out_row, torch::Tensor wscale,
                  torch::Tensor y, int64_t Bs, int64_t Bd, int64_t Ss, int64_t SdA, int64_t SdB,
                  int64_t RT, int64_t warps, bool fp8) {
  TORCH_CHECK(x.is_cuda() && x.scalar_type() == at::kBFloat16 && x.stride(1) == 1, "x: bf16 cuda, row-major");
  TORCH_CHECK(x.stride(0) % 2 == 0 && (reinterpret_cast<uintptr_t>(x.data_ptr()) & 3) == 0, "x: 4-byte aligned rows");
  TORCH_CHECK(y.scalar_type() == at::kBFloat16 && y.stride(1) == 1, "y: bf16 row-major");
  TORCH_CHECK(sblk.scalar_type() == at::kInt && dblk.scalar_type() == at::kInt && out_row.scalar_type() == at::kInt,
              "block tables / out_row: int32");
  TORCH_CHECK(wscale.scalar_type() == at::kFloat, "wscale: float32");
  TORCH_CHECK(warps >= 1 && warps <= 16, "warps in 1..16");
  const int M = (int)x.size(0);
  TORCH_CHECK(M >= 1 && M <= 64, "mmasp kernel handles 1 <= M <= 64");
  if (Bs + Bd == 0) return;
  const int NT = M <= 8 ? 1 : M <= 16 ? 2 : M <= 32 ? 4 : 8;
  dim3 grid((unsigned)(Bs + Bd)), threads((unsigned)(32 * warps));
  auto stream = at::cuda::getCurrentCUDAStream();
  if (fp8) {
    if (RT == 1) { DISPATCH_NT(1, true) } else { DISPATCH_NT(2, true) }
  } else {
    if (RT == 1) { DISPATCH_NT(1, false) } else { DISPATCH_NT(2, false) }
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("spense_mmasp", &spense_mmasp, "Spense 2:4+dense decode GEMM (mma.sp; bf16 or e4m3 weights)");
}
