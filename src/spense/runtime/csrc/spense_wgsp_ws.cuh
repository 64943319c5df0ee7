// The Spense prefill GEMM on sparse warpgroup MMA, warp-specialized (sm_90a; written after e2e v15,
// harness only: benchmarks/wgsp_check.cu, not yet run on a GPU).  The same product and weight layout as
// spense_wgsp_kernel (spense_wgsp.cuh), organised the way Hopper GEMMs keep their tensor cores busy:
// - a CTA holds 8 row tiles of one kind (128 output rows) and WG_N tokens, in three warpgroups: warpgroup
//   0 produces, warpgroups 1 and 2 consume (4 row tiles each, one per warp);
// - the producer copies each 64-K step's operands into a ring of S shared-memory slots by cp.async:
//   the x tile (WG_N tokens x the step's 64 columns, 128-byte swizzled as in spense_wgsp.cuh) and the 8 row
//   tiles' A fragments for the step, as stored (sparse: 64 uint4 of values and 32 metadata words per tile;
//   dense: 128 uint4 per tile).  Each producer thread's copies arrive on the slot's `full` mbarrier when
//   they land (cp.async.mbarrier.arrive.noinc), so no thread waits for its own copies;
// - a consumer waits for `full`, reads its A fragments from the slot into registers (lane-major: one
//   conflict-free 16-byte load per lane and fragment), issues the step's wgmmas (two wgmma.sp m64n128k32
//   or four wgmma m64n128k16), commits, and waits until only this step's group is pending, so that one
//   step's MMAs run while the next step's are prepared; then it frees the previous step's slot (its
//   `empty` mbarrier, one arrival per consumer thread) for the producer;
// - A registers alternate between two sets, so that none is rewritten while the wgmma reading it runs.
#pragma once
#include <type_traits>

#include "spense_wgsp.cuh"

constexpr int WS_STAGES = 4;                     // ring slots of the extension's instantiation (harness: 6 too)
constexpr int WS_A = 8 * 128 * 16;                // bytes of A per slot: 8 tiles x 2 KB (dense; sparse uses 9 KB)
constexpr int WS_SLOT = WG_TILE + WS_A;           // x tile then A
constexpr int WS_MAXQ = 1024;                    // 64-K steps per row tile at most (K <= 65536)
// the ring, its full and empty mbarriers, the steps' first columns of x (WS_MAXQ ints), the alignment
constexpr int ws_smem(int stages) { return stages * WS_SLOT + 2 * stages * 8 + 4 * WS_MAXQ + 1024; }

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" :: "r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" :: "r"(bar) : "memory");
}
// arrives on `bar` once all of this thread's earlier cp.async have landed (the count set at init includes it)
__device__ __forceinline__ void mbar_arrive_cp_async(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" :: "r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, int parity) {
  asm volatile(
      "{\n.reg .pred P;\nWAIT_%=:\nmbarrier.try_wait.parity.shared::cta.b64 P, [%0], %1;\n@!P bra WAIT_%=;\n}\n"
      :: "r"(bar), "r"(parity) : "memory");
}

template <int S>  // ring slots
__global__ void __launch_bounds__(384, 1) spense_wgsp_ws_kernel(
    const uint4* __restrict__ sv, const uint32_t* __restrict__ sm, const uint4* __restrict__ dv,
    const __nv_bfloat16* __restrict__ x, int ldx, int M, const int* __restrict__ sblk,
    const int* __restrict__ dblk, const int* __restrict__ out_row, __nv_bfloat16* __restrict__ y, int ldy,
    int Bs, int Bd, int Ss, int SdA, int SdB) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma and its mbarrier waits: sm_90a only (an empty kernel elsewhere)
  extern __shared__ uint8_t ws_raw[];
  uint8_t* ring = ws_raw + wg_align1024(ws_raw);  // indexed from the shared array: loads stay ld.shared
  const uint32_t full0 = smem_addr(ring + S * WS_SLOT), empty0 = full0 + S * 8;
  int* cols = reinterpret_cast<int*>(ring + S * WS_SLOT + 2 * S * 8);  // step q's first column of x
  // the warpgroup index, warp-uniform as far as the compiler can tell (a shuffle from lane 0)
  const int wg = __shfl_sync(0xffffffffu, (int)(threadIdx.x >> 7), 0), tid = threadIdx.x & 127;
  const int tile0 = 8 * blockIdx.y, tok0 = blockIdx.x * WG_N;
  const bool sp_rows = tile0 < Bs;
  const int nsp = sp_rows ? Ss : 0, nde = sp_rows ? SdA : SdB, Q = nsp + nde;
  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      mbar_init(full0 + 8 * s, 128);   // every producer thread's copies
      mbar_init(empty0 + 8 * s, 256);  // every consumer thread
    }
  }
  // read once here rather than per step by the producer, whose copies would wait on each load
  for (int q = threadIdx.x; q < Q; q += 384) cols[q] = wg_col(q, nsp, sblk, dblk);
  __syncthreads();

  if (wg == 0) {  // ---------------- producer ----------------
    for (int q = 0; q < Q; ++q) {
      const int s = q % S;
      if (q >= S) mbar_wait(empty0 + 8 * s, ((q / S) - 1) & 1);
      uint8_t* slot = ring + s * WS_SLOT;
      wg_load_x_tile(smem_addr(slot), x, ldx, M, tok0, cols[q], tid);
      const uint32_t ab = smem_addr(slot + WG_TILE);
      if (q < nsp) {  // [8 tiles][64 uint4] values, then [8 tiles][8 uint4] metadata words
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int ch = tid + 128 * i, t = ch >> 6, u = ch & 63;
          cp_async16_fill(ab + ch * 16, sv + ((size_t)(tile0 + t) * Ss + q) * 64 + u, 16);
        }
        if (tid < 64) {
          const int t = tid >> 3, u = tid & 7;
          cp_async16_fill(ab + 8 * 64 * 16 + tid * 16,
                          reinterpret_cast<const uint4*>(sm + ((size_t)(tile0 + t) * Ss + q) * 32) + u, 16);
        }
      } else {  // [8 tiles][128 uint4]
        const int qd = q - nsp;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const int ch = tid + 128 * i, t = ch >> 7, u = ch & 127;
          cp_async16_fill(ab + ch * 16, wg_dense_base(dv, tile0 + t, sp_rows, Bs, SdA, SdB) + (size_t)qd * 128 + u, 16);
        }
      }
      mbar_arrive_cp_async(full0 + 8 * s);
    }
    return;  // the consumers wait for every slot's copies (full), so none is in flight when the CTA exits
  }

  // ---------------- consumers: warpgroup 1 on tiles 0-3, 2 on tiles 4-7 ----------------
  const int warp = tid >> 5, lane = tid & 31, ti = 4 * (wg - 1) + warp;
  float acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.f;
  WgA a[2];
  // step q's A for this warp from its slot, then its wgmmas (SPARSE: two wgmma.sp, else four wgmma) on
  // register set f; the sparse and the dense steps run in loops of their own, so that no wgmma sits on a
  // branch (ptxas serializes wgmmas behind the fences it injects on divergent paths: C7520)
  auto step = [&](auto sparse_tag, int q, WgA& f) {
    constexpr bool SPARSE = decltype(sparse_tag)::value;
    const int s = q % S;
    mbar_wait(full0 + 8 * s, (q / S) & 1);
    fence_proxy_async();  // the x tile was written through the generic proxy; wgmma reads it through the async one
    const uint4* as = reinterpret_cast<const uint4*>(ring + s * WS_SLOT + WG_TILE);
    const uint64_t d0 = wg_desc(smem_addr(ring + s * WS_SLOT));
    if constexpr (SPARSE) {
      f.v[0] = as[ti * 64 + lane];
      f.v[1] = as[ti * 64 + 32 + lane];
      f.e = reinterpret_cast<const uint32_t*>(as + 8 * 64)[ti * 32 + lane];
      wg_fence_acc(acc);
      wg_fence();
      wgmma_sp<0>(acc, f.v[0], d0, f.e);
      wgmma_sp<1>(acc, f.v[1], d0 + 4, f.e);
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) f.v[j] = as[ti * 128 + 32 * j + lane];
      wg_fence_acc(acc);
      wg_fence();
#pragma unroll
      for (int j = 0; j < 4; ++j) wgmma_dense(acc, f.v[j], d0 + 2 * j);
    }
    wg_commit();
    wg_wait<1>();  // step q - 1's MMAs are done: its slot and its A set are free
    wg_fence_acc(acc);
    if (q > 0) mbar_arrive(empty0 + 8 * ((q - 1) % S));
  };
  using SP = std::true_type;
  using DE = std::false_type;
  int q = 0;
  for (; q + 1 < nsp; q += 2) {
    step(SP{}, q, a[0]);
    step(SP{}, q + 1, a[1]);
  }
  if (q < nsp) {  // an odd count: drain, so that the dense steps start again on set 0
    step(SP{}, q, a[0]);
    ++q;
    wg_wait<0>();
    wg_fence_acc(acc);
  }
  for (; q + 1 < Q; q += 2) {
    step(DE{}, q, a[0]);
    step(DE{}, q + 1, a[1]);
  }
  if (q < Q) step(DE{}, q, a[0]);
  wg_wait<0>();
  wg_fence_acc(acc);
  wg_store(acc, tile0 + ti, tok0, lane, out_row, y, ldy, M);
#endif
}

// as launch_wgsp, with 8 row tiles per CTA (row tiles of each kind in eights) and S ring slots
template <int S = WS_STAGES>
inline cudaError_t launch_wgsp_ws(cudaStream_t stream, const uint4* sv, const uint32_t* sm, const uint4* dv,
                                  const __nv_bfloat16* x, int ldx, int K, int M, const int* sblk, const int* dblk,
                                  const int* out_row, __nv_bfloat16* y, int ldy, int Bs, int Bd, int Ss, int SdA,
                                  int SdB) {
  if (K / 64 > WS_MAXQ) return cudaErrorInvalidValue;
  return launch_wg_kernel<8, 384, ws_smem(S)>(spense_wgsp_ws_kernel<S>, stream, sv, sm, dv, x, ldx, K, M, sblk, dblk,
                                              out_row, y, ldy, Bs, Bd, Ss, SdA, SdB);
}
