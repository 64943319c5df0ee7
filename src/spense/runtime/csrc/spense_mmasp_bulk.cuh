// Spense decode kernel, bulk-copy variant (sm_90): the same weight layout, tables and MMAs as
// spense_mmasp_kernel, but the weight stream reaches the warps through shared memory.
//
// Why: the register variant issues each warp's loads in batches of U steps and waits for them before
// the next batch, so between batches nothing is in flight, and a small linear (Qwen3-8B o_proj: ~6
// steps per warp) is a few memory latencies long whatever its size.  Here one producer warp streams
// the CTA's whole slab (its row block's sparse values + metadata, then its dense steps) through a
// ring of NS shared-memory slots with cp.async.bulk (the copy engine; one instruction per row tile
// and chunk, completion counted in bytes on an mbarrier), so up to NS chunks per CTA are in flight
// from the first cycle and refilled as soon as a slot is consumed.  The WC consumer warps wait on a
// slot's "full" barrier, each takes every WC-th step of the chunk (16-byte ld.shared per lane: the
// same fragments the register variant loads from global memory), and arrive on its "empty" barrier.
//
// Slot layout (SLOT bytes): sparse chunk = values [RT][CSS steps][VS uint4], then metadata
// [RT][CSS][32 u32]; dense chunk = [RT][CSD steps][VD uint4].  A chunk shorter than CSS / CSD keeps
// the same strides.  Every copy is a multiple of 16 bytes from a 16-byte aligned address (a step is
// 512 / 1024 / 2048 bytes, its metadata 128).
#pragma once
#include <mutex>

#include "spense_mmasp_common.cuh"

// The bulk-copy and mbarrier instructions exist from sm_90 on; the extension is also built for
// sm_80-89 GPUs (register kernel only), where these compile to nothing and the kernel traps (the host
// refuses stages > 0 there, and mmasp.py falls back to stages = 0).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define SPENSE_BULK_ARCH 1
#endif

#ifdef SPENSE_BULK_ARCH
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(smem_u32(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(smem_u32(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(smem_u32(bar)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  uint32_t done;
  do {
    asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                 " selp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done) : "r"(smem_u32(bar)), "r"(parity) : "memory");
  } while (!done);
}
// global -> shared, `bytes` (multiple of 16) counted on `bar` (the CTA's own shared memory)
__device__ __forceinline__ void bulk_g2s(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
               :: "r"(smem_u32(dst)), "l"(src), "r"(bytes), "r"(smem_u32(bar)) : "memory");
}
#endif  // SPENSE_BULK_ARCH

constexpr int BULK_MAX_STAGES = 16;
constexpr int BULK_MAX_WARPS = 8;  // consumer warps (+ 1 producer): <= 288 threads, up to 224 registers

template <bool FP8> struct BulkGeom {
  static constexpr int VS = FP8 ? 32 : 64;    // uint4 per (row tile, sparse step)
  static constexpr int VD = FP8 ? 64 : 128;   // uint4 per (row tile, dense step)
  static constexpr int NVS = FP8 ? 1 : 2;     // uint4 per lane per sparse step
  static constexpr int NVD = FP8 ? 2 : 4;     // uint4 per lane per dense step
  static constexpr int CSS = FP8 ? 16 : 8;    // sparse steps per chunk
  static constexpr int CSD = FP8 ? 8 : 4;     // dense steps per chunk
  static constexpr int SCHUNK = CSS * (VS * 16 + 128);  // bytes per row tile, sparse chunk
  static constexpr int DCHUNK = CSD * VD * 16;          // bytes per row tile, dense chunk
  static constexpr int TILE = SCHUNK > DCHUNK ? SCHUNK : DCHUNK;
};

template <int RT, int NT, bool FP8>
__global__ void __launch_bounds__(32 * (BULK_MAX_WARPS + 1)) spense_mmasp_bulk_kernel(
    const uint4* __restrict__ sv, const uint32_t* __restrict__ sm, const uint4* __restrict__ dv,
    const __nv_bfloat16* __restrict__ x, const uint4* __restrict__ xf, int ldx, int M, int kx,
    const int* __restrict__ sblk, const int* __restrict__ dblk,
    const int* __restrict__ out_row, const float* __restrict__ wscale,
    __nv_bfloat16* __restrict__ y, int ldy, int Bs, int Bd, int Ss, int SdA, int SdB, int NS) {
#ifdef SPENSE_BULK_ARCH
  using G = BulkGeom<FP8>;
  constexpr int ROWS = RT * 16;
  constexpr int SLOT = RT * G::TILE;
  extern __shared__ __align__(128) uint8_t ring[];
  __shared__ __align__(8) uint64_t full[BULK_MAX_STAGES], empty[BULK_MAX_STAGES];
  __shared__ float red[ROWS * NT * 8];
  const int WC = (blockDim.x >> 5) - 1;  // consumer warps; warp WC is the producer
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int bi = blockIdx.x;
  const int b = bi < Bd ? Bs + bi : bi - Bd;

  for (int i = threadIdx.x; i < ROWS * NT * 8; i += blockDim.x) red[i] = 0.f;
  if (threadIdx.x == 0) {
    for (int i = 0; i < NS; ++i) {
      mbar_init(&full[i], 1);
      mbar_init(&empty[i], WC);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  int nsp, nde;
  const uint4* dbase;
  if (b < Bs) {
    nsp = Ss; nde = SdA;
    dbase = dv + (size_t)b * RT * SdA * G::VD;
  } else {
    nsp = 0; nde = SdB;
    dbase = dv + ((size_t)Bs * RT * SdA + (size_t)(b - Bs) * RT * SdB) * G::VD;
  }
  const uint4* vbase = sv + (size_t)b * RT * Ss * G::VS;     // [RT][Ss][VS]
  const uint32_t* mbase = sm + (size_t)b * RT * Ss * 32;     // [RT][Ss][32]
  const int nsc = (nsp + G::CSS - 1) / G::CSS, ndc = (nde + G::CSD - 1) / G::CSD, NC = nsc + ndc;

  if (warp == WC) {  // ---------------- producer ----------------
    if (lane == 0) {
      for (int c = 0; c < NC; ++c) {
        const int slot = c % NS;
        const uint32_t ph = (uint32_t)(c / NS) & 1u;
        if (c >= NS) {  // its previous chunk consumed (generic-proxy reads done before the refill)
          mbar_wait(&empty[slot], ph ^ 1u);
          asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
        }
        uint8_t* dst = ring + (size_t)slot * SLOT;
        if (c < nsc) {
          const int s0 = c * G::CSS, n = min(G::CSS, nsp - s0);
          mbar_expect_tx(&full[slot], (uint32_t)(RT * n * (G::VS * 16 + 128)));
#pragma unroll
          for (int r = 0; r < RT; ++r) {
            bulk_g2s(dst + r * G::CSS * G::VS * 16, vbase + ((size_t)r * Ss + s0) * G::VS,
                     (uint32_t)(n * G::VS * 16), &full[slot]);
            bulk_g2s(dst + RT * G::CSS * G::VS * 16 + r * G::CSS * 128, mbase + ((size_t)r * Ss + s0) * 32,
                     (uint32_t)(n * 128), &full[slot]);
          }
        } else {
          const int s0 = (c - nsc) * G::CSD, n = min(G::CSD, nde - s0);
          mbar_expect_tx(&full[slot], (uint32_t)(RT * n * G::VD * 16));
#pragma unroll
          for (int r = 0; r < RT; ++r)
            bulk_g2s(dst + r * G::CSD * G::VD * 16, dbase + ((size_t)r * nde + s0) * G::VD,
                     (uint32_t)(n * G::VD * 16), &full[slot]);
        }
      }
    }
  } else {  // ---------------- consumers ----------------
    float acc[RT][NT][4];
    zero_acc<RT, NT>(acc);

    for (int c = 0; c < NC; ++c) {
      const int slot = c % NS;
      mbar_wait(&full[slot], (uint32_t)(c / NS) & 1u);
      const uint8_t* src = ring + (size_t)slot * SLOT;
      if (c < nsc) {
        const int s0 = c * G::CSS, n = min(G::CSS, nsp - s0);
        for (int sl = warp; sl < n; sl += WC) {
          const int xb = __ldg(sblk + s0 + sl);
          uint4 va[RT][G::NVS];
          uint32_t me[RT];
#pragma unroll
          for (int r = 0; r < RT; ++r) {
            const uint4* p = reinterpret_cast<const uint4*>(src + (r * G::CSS + sl) * G::VS * 16) + lane;
#pragma unroll
            for (int v = 0; v < G::NVS; ++v) va[r][v] = p[32 * v];
            me[r] = reinterpret_cast<const uint32_t*>(src + RT * G::CSS * G::VS * 16 + (r * G::CSS + sl) * 128)[lane];
          }
          sparse_step<RT, NT, FP8, G::NVS, X_RUNTIME>(acc, va, me, xb, xf, x, ldx, M, kx, lane);
        }
      } else {
        const int s0 = (c - nsc) * G::CSD, n = min(G::CSD, nde - s0);
        for (int sl = warp; sl < n; sl += WC) {
          const int xb = __ldg(dblk + s0 + sl);
          uint4 da[RT][G::NVD];
#pragma unroll
          for (int r = 0; r < RT; ++r) {
            const uint4* p = reinterpret_cast<const uint4*>(src + (r * G::CSD + sl) * G::VD * 16) + lane;
#pragma unroll
            for (int v = 0; v < G::NVD; ++v) da[r][v] = p[32 * v];
          }
          dense_step<RT, NT, FP8, G::NVD, X_RUNTIME>(acc, da, xb, xf, x, ldx, M, kx, lane);
        }
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(&empty[slot]);  // this warp is done with the slot
    }
    add_partials<RT, NT>(red, acc, lane);
  }
  __syncthreads();
  store_rows<RT, NT, FP8>(red, b, out_row, wscale, y, ldy, M);
#else
  __trap();
#endif
}

// dynamic shared memory of a ring of `stages` slots
template <int RT, bool FP8>
constexpr int bulk_smem_bytes(int stages) { return stages * RT * BulkGeom<FP8>::TILE; }

// launch with `warps` consumer warps + 1 producer and a ring of `stages` slots; the error of the
// shared-memory attribute call, if any (the launch's own is left to the caller's check)
template <int RT, int NT, bool FP8>
cudaError_t launch_bulk(dim3 grid, int warps, int stages, cudaStream_t stream, const uint4* sv,
                        const uint32_t* sm, const uint4* dv, const __nv_bfloat16* x, const uint4* xf, int ldx,
                        int M, int kx,
                        const int* sblk, const int* dblk, const int* out_row, const float* wscale,
                        __nv_bfloat16* y, int ldy, int Bs, int Bd, int Ss, int SdA, int SdB) {
  const int smem = bulk_smem_bytes<RT, FP8>(stages);
  // the dynamic shared-memory limit is a per-device function attribute: raised once per device
  static std::mutex mu;
  static int raised[64] = {0};
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  // raised for every new size, not only past 48 KiB of dynamic memory: the limit applies to dynamic +
  // static (reduction buffer, mbarriers), so 45 KiB of ring + 4.3 KiB static already needs it
  {
    std::lock_guard<std::mutex> lock(mu);
    if (dev >= 64 || smem > raised[dev]) {
      e = cudaFuncSetAttribute(spense_mmasp_bulk_kernel<RT, NT, FP8>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               smem);
      if (e != cudaSuccess) return e;
      if (dev < 64) raised[dev] = smem;
    }
  }
  spense_mmasp_bulk_kernel<RT, NT, FP8><<<grid, 32 * (warps + 1), smem, stream>>>(
      sv, sm, dv, x, xf, ldx, M, kx, sblk, dblk, out_row, wscale, y, ldy, Bs, Bd, Ss, SdA, SdB, stages);
  return cudaSuccess;
}
