// Spense decode kernel: 2:4 sparse region through the sparse tensor-core instruction
// mma.sp.m16n8k32 (bf16 in, fp32 accumulate), dense region through mma.m16n8k16, one launch.
//
// Weights are the A operand (16 output rows x 32 K per sparse MMA), the M <= 64 tokens the B
// operand (n = 8 tokens per MMA).  All weight bytes are pre-arranged at load time
// (spense/runtime/mmasp.py: to_kernel_layout) in exactly the order the warps read them, so every
// thread issues one 16-byte load per MMA for values and one 4-byte load per 64 K for metadata.
//
// Grid: one CTA per block of RT*16 weight rows ("row block").  The W warps of a CTA split the K
// steps (64 dense K each) of that row block, reduce through shared memory and write the outputs in
// place (y[m, out_row[r]]), so there is no second pass and no atomics in global memory.
// Row blocks [0, Bs) belong to the sparse region (Ss sparse steps, then SdA dense steps: the dense
// columns of axis="cols"); row blocks [Bs, Bs+Bd) hold dense rows (axis="rows", SdB dense steps).
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <cuda_bf16.h>
#include <stdint.h>

#ifndef SPENSE_META_L2
#define SPENSE_META_L2 1
#endif

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

// two consecutive bf16 of token `tok` at logical k (k even) -> one b32 register
template <bool GATHER>
__device__ __forceinline__ uint32_t load_x2(const __nv_bfloat16* __restrict__ x, int ldx, int tok, int M,
                                            const int* __restrict__ idx, int k, int kx) {
  if (tok >= M) return 0u;
  if (GATHER) {
    int2 c = __ldg(reinterpret_cast<const int2*>(idx + k));
    __nv_bfloat16 lo = x[(size_t)tok * ldx + c.x];
    __nv_bfloat16 hi = x[(size_t)tok * ldx + c.y];
    return (uint32_t)__bfloat16_as_ushort(lo) | ((uint32_t)__bfloat16_as_ushort(hi) << 16);
  } else {
    if (k >= kx) return 0u;
    return __ldg(reinterpret_cast<const uint32_t*>(x + (size_t)tok * ldx + k));
  }
}

template <int RT, int NT, bool GATHER, int U>
__global__ void __launch_bounds__(512) spense_mmasp_kernel(
    const uint4* __restrict__ sv, const uint32_t* __restrict__ sm, const uint4* __restrict__ dv,
    const __nv_bfloat16* __restrict__ x, int ldx, int M, int kx, int kx_d, int xoff_d,
    const int* __restrict__ sidx, const int* __restrict__ didx,
    const int* __restrict__ out_row, __nv_bfloat16* __restrict__ y, int ldy,
    int Bs, int Ss, int SdA, int SdB) {
  constexpr int ROWS = RT * 16;
  __shared__ float red[ROWS * NT * 8];
  const int W = blockDim.x >> 5;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int b = blockIdx.x;

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
    dbase = dv + (size_t)b * RT * SdA * 128;
  } else {
    nsp = 0; nde = SdB;
    dbase = dv + ((size_t)Bs * RT * SdA + (size_t)(b - Bs) * RT * SdB) * 128;
  }
  const int* xi_d = GATHER ? didx : nullptr;

  // ---------------- sparse steps (64 dense K = 2 mma.sp per row tile) ----------------
  if (nsp) {
    const uint4* vbase = sv + (size_t)b * RT * Ss * 64;      // [RT][Ss][2][32] uint4
    const uint32_t* mbase = sm + (size_t)b * RT * Ss * 32;   // [RT][Ss][32] u32
    for (int s0 = warp; s0 < nsp; s0 += W * U) {
      uint4 va[U][RT][2];
      uint32_t me[U][RT];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int s = s0 + u * W;
        if (s < nsp) {
#pragma unroll
          for (int r = 0; r < RT; ++r) {
            const uint4* p = vbase + ((size_t)r * Ss + s) * 64 + lane;
            va[u][r][0] = ldg_stream(p);
            va[u][r][1] = ldg_stream(p + 32);
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
            const int k0 = s * 64 + j * 32;
#pragma unroll
            for (int n = 0; n < NT; ++n) {
              uint32_t bf[4];
#pragma unroll
              for (int i = 0; i < 4; ++i)
                bf[i] = load_x2<GATHER>(x, ldx, n * 8 + g, M, sidx, k0 + 2 * t + 8 * i, kx);
#pragma unroll
              for (int r = 0; r < RT; ++r) mma_sp(acc[r][n], va[u][r][j], bf, me[u][r], j);
            }
          }
        }
      }
    }
  }
  // ---------------- dense steps (64 K = 4 mma.m16n8k16 per row tile) ----------------
  if (nde) {
    for (int s0 = warp; s0 < nde; s0 += W * U) {
      uint4 da[U][RT][4];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int s = s0 + u * W;
        if (s < nde) {
#pragma unroll
          for (int r = 0; r < RT; ++r) {
            const uint4* p = dbase + ((size_t)r * nde + s) * 128 + lane;
#pragma unroll
            for (int j = 0; j < 4; ++j) da[u][r][j] = ldg_stream(p + 32 * j);
          }
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int s = s0 + u * W;
        if (s < nde) {
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int k0 = s * 64 + j * 16;
#pragma unroll
            for (int n = 0; n < NT; ++n) {
              uint32_t b0 = load_x2<GATHER>(x + xoff_d, ldx, n * 8 + g, M, xi_d, k0 + 2 * t, kx_d);
              uint32_t b1 = load_x2<GATHER>(x + xoff_d, ldx, n * 8 + g, M, xi_d, k0 + 2 * t + 8, kx_d);
#pragma unroll
              for (int r = 0; r < RT; ++r) mma_dense(acc[r][n], da[u][r][j], b0, b1);
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
      if (o >= 0) y[(size_t)tok * ldy + o] = __float2bfloat16(red[i]);
    }
  }
}

#define LAUNCH(RT_, NT_, G_)                                                                      \
  spense_mmasp_kernel<RT_, NT_, G_, 4><<<grid, threads, 0, stream>>>(                             \
      (const uint4*)sv.data_ptr(), (const uint32_t*)sm.data_ptr(), (const uint4*)dv.data_ptr(),   \
      (const __nv_bfloat16*)x.data_ptr(), (int)x.stride(0), M, kx, kx_d, xoff_d, sidx.data_ptr<int>(),          \
      didx.data_ptr<int>(), out_row.data_ptr<int>(), (__nv_bfloat16*)y.data_ptr(), (int)y.stride(0), \
      Bs, Ss, SdA, SdB)

#define DISPATCH_NT(RT_, G_)                         \
  switch (NT) {                                      \
    case 1: LAUNCH(RT_, 1, G_); break;               \
    case 2: LAUNCH(RT_, 2, G_); break;               \
    case 4: LAUNCH(RT_, 4, G_); break;               \
    default: LAUNCH(RT_, 8, G_); break;              \
  }

void spense_mmasp(torch::Tensor sv, torch::Tensor sm, torch::Tensor dv, torch::Tensor x,
                  torch::Tensor sidx, torch::Tensor didx, torch::Tensor out_row, torch::Tensor y,
                  int64_t kx, int64_t kx_d, int64_t xoff_d, int64_t Bs, int64_t Bd, int64_t Ss, int64_t SdA, int64_t SdB,
                  int64_t RT, int64_t warps, bool gather) {
  TORCH_CHECK(x.is_cuda() && x.scalar_type() == at::kBFloat16 && x.stride(1) == 1, "x: bf16 cuda, row-major");
  TORCH_CHECK(y.scalar_type() == at::kBFloat16 && y.stride(1) == 1, "y: bf16 row-major");
  const int M = (int)x.size(0);
  TORCH_CHECK(M >= 1 && M <= 64, "mmasp kernel handles 1 <= M <= 64");
  const int NT = M <= 8 ? 1 : M <= 16 ? 2 : M <= 32 ? 4 : 8;
  dim3 grid((unsigned)(Bs + Bd)), threads((unsigned)(32 * warps));
  auto stream = at::cuda::getCurrentCUDAStream();
  if (gather) {
    if (RT == 1) { DISPATCH_NT(1, true) } else { DISPATCH_NT(2, true) }
  } else {
    if (RT == 1) { DISPATCH_NT(1, false) } else { DISPATCH_NT(2, false) }
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("spense_mmasp", &spense_mmasp, "Spense 2:4+dense decode GEMM (mma.sp)");
}
