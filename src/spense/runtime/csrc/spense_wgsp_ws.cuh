// The Spense prefill GEMM on sparse warpgroup MMA, warp-specialized, fed by the Tensor Memory Accelerator
// (sm_90a).  The same product and weight layout as spense_wgsp_kernel (spense_wgsp.cuh), organised the way
// Hopper GEMMs keep their tensor cores busy:
// - a CTA holds 8 TPC row tiles of one kind (128 TPC output rows) and WG_N tokens, in three warpgroups:
//   warpgroup 0 produces, warpgroups 1 and 2 consume, each on TPC blocks of 64 rows (4 row tiles, one per
//   warp) with TPC x 64 fp32 accumulators per thread.  TPC = 2 halves the x bytes per MMA against TPC = 1
//   (the x tile is shared by twice the rows): 1.1-1.3x faster in the harness (e2e v16);
// - one producer thread fills a ring of S shared-memory slots, each 64-K step's operands landing on the slot's
//   `full` mbarrier as transaction bytes of TMA loads (WgMaps): the x tile (WG_N tokens x the step's 64
//   columns, 128-byte swizzled as the wgmma descriptor reads it; tokens past M are zeros) and the step's A
//   fragments of all the CTA's row tiles in one box, as stored (sparse: 1 KB of values and 128 B of metadata
//   per tile, two boxes; dense: 2 KB per tile).  Three loads per step at most: per-tile bulk copies (33 per
//   sparse step) cost more than the step's MMAs (e2e v16).  The producer's other warps give their registers
//   to the consumers (setmaxnreg);
// - a consumer waits for `full`, reads its A fragments from the slot into registers (one conflict-free
//   16-byte load per lane and fragment), issues the step's wgmmas (per 64-row block: two wgmma.sp
//   m64n128k32 or four wgmma m64n128k16), commits, and waits until only this step's group is pending, so
//   that one step's MMAs run while the next step's are issued; then each warp frees the previous step's slot
//   (one arrival on its `empty` mbarrier);
// - A registers alternate between two sets, so that none is rewritten while the wgmma reading it runs.
#pragma once
#include <cuda.h>  // CUtensorMap and its enums (types only: the encoder comes from the runtime's driver entry point)

#include <type_traits>

#include "spense_wgsp.cuh"

constexpr int WS_STAGES = 4;                     // ring slots
// rows of x a decode form (64 tokens per tile, M <= 64) loads per step: M rounded up to eights.  The tile's
// other rows are zeroed once; loading them as out-of-bounds rows was slower than loading real ones (e2e v17)
__host__ __device__ constexpr int wsd_xrows(int M) { return M >= 64 ? 64 : (M + 7) / 8 * 8; }
constexpr int WS_MAXQ = 1024;                    // 64-K steps per row tile at most (K <= 65536)
// A per slot: 8 TPC row tiles x 2 KB (a dense step; a sparse one takes 1152 B per tile); a slot: x tile, then A
__host__ __device__ constexpr int ws_a_bytes(int tpc) { return 8 * tpc * 2048; }
__host__ __device__ constexpr int ws_slot(int tpc, int nt = WG_N) { return nt * 128 + ws_a_bytes(tpc); }
// A prefill ring (128 or 256 tokens) of more than WS_STAGES slots (harness only, benchmarks/wgsp_ss_check.cu) holds
// sparse steps only: slots of the x tile and 1152 B a row tile (1 KB of kept values, 128 B of metadata words) instead
// of a dense step's 2 KB, so that more steps are in flight in the same shared memory (6 slots of 34 KB at TPC = 2);
// its launcher refuses layers with dense steps.  (The decode forms' rings, 64 tokens, keep whole slots.)
__host__ __device__ constexpr bool ws_sparse_ring(int stages, int nt) { return stages > WS_STAGES && nt >= WG_N; }
__host__ __device__ constexpr int ws_ring_slot(int stages, int tpc, int nt = WG_N) {
  return ws_sparse_ring(stages, nt) ? nt * 128 + 8 * tpc * 1152 : ws_slot(tpc, nt);
}
// the ring, its full and empty mbarriers, the steps' first columns of x (WS_MAXQ ints; the persistent form: those
// of each kind of row tile, twice that), the alignment
constexpr int ws_smem(int stages, int tpc, int nt = WG_N, bool ps = false) {
  return stages * ws_ring_slot(stages, tpc, nt) + 2 * stages * 8 + (ps ? 8 : 4) * WS_MAXQ + 1024;
}

// the bytes [xb, xt) of the x tile at the start of each of the `slots` ring slots (`slot` bytes apart), which no
// load writes in a decode form (x's rows past M's eights): zeros, visible to the async proxy (the wgmmas).  All
// 384 threads of the CTA; a __syncthreads must follow before the tiles are read
__device__ __forceinline__ void wsd_zero_x_rows(uint8_t* ring, int slots, int slot, int xt, int xb) {
  if (xb >= xt) return;
  for (int o = threadIdx.x * 16; o < slots * (xt - xb); o += 384 * 16)
    *reinterpret_cast<uint4*>(ring + (o / (xt - xb)) * slot + xb + o % (xt - xb)) = make_uint4(0, 0, 0, 0);
  fence_proxy_async();
}

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" :: "r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" :: "r"(bar) : "memory");
}
// one arrival that also expects `bytes` of transactions (the copies completing on bar) in this phase
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, int bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" :: "r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, int parity) {
  asm volatile(
      "{\n.reg .pred P;\nWAIT_%=:\nmbarrier.try_wait.parity.shared::cta.b64 P, [%0], %1;\n@!P bra WAIT_%=;\n}\n"
      :: "r"(bar), "r"(parity) : "memory");
}
// a tensor map (a kernel parameter) into the TMA unit's descriptor cache
__device__ __forceinline__ void tma_prefetch(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" :: "l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
// TMA: the box at (c0, r0) of the 2-D tensor map into shared memory at dst, completing on bar
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int c0, int r0, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
      :: "r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(r0), "r"(bar) : "memory");
}
// ... and the box at (c0, c1, c2) of a 3-D tensor map
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2,
                                            uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
      "[%5];\n"
      :: "r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar) : "memory");
}

// The same box multicast to the CTAs of the cluster in `mask`, at the same shared-memory offsets and completing
// on the same mbarrier offset in each
__device__ __forceinline__ void tma_load_3d_mc(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2,
                                               uint32_t bar, uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster "
      "[%0], [%1, {%2, %3, %4}], [%5], %6;\n"
      :: "r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar), "h"(mask)
      : "memory");
}
__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
// one arrival on the mbarrier at CTA-relative address bar of cluster CTA `rank` (as CUTLASS's ClusterBarrier:
// the default .release.cta; at cluster scope ptxas puts GPU-wide fences before every arrival, and the
// consumer publishes no data with it: its reads of the slot are done)
__device__ __forceinline__ void mbar_arrive_cluster(uint32_t bar, uint32_t rank) {
  asm volatile(
      "{\n.reg .b32 r;\nmapa.shared::cluster.u32 r, %0, %1;\n"
      "mbarrier.arrive.shared::cluster.b64 _, [r];\n}\n" :: "r"(bar), "r"(rank) : "memory");
}
// the cluster barrier in two halves, so that work can go between them
__device__ __forceinline__ void cluster_arrive() {
  asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void cluster_wait() { asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory"); }
// the float at CTA-relative shared address addr of cluster CTA `rank`
__device__ __forceinline__ float ld_cluster_f32(uint32_t addr, uint32_t rank) {
  float v;
  asm volatile("{\n.reg .b32 r;\nmapa.shared::cluster.u32 r, %1, %2;\nld.shared::cluster.f32 %0, [r];\n}\n"
               : "=f"(v) : "r"(addr), "r"(rank) : "memory");
  return v;
}

// the TMA tensor maps of one launch: x (WG_N tokens x 64 columns per box, 128-byte swizzled) and the weight
// layout as 32-bit words, one box per step for all the CTA's row tiles: sparse values [Bs][Ss][256] (box
// 256 x 1 x TILES), metadata [Bs][Ss][32] (32 x 1 x TILES), dense fragments of the sparse-row tiles
// [Bs][2 SdA][256] and of the dense-row tiles [Bd][2 SdB][256] (256 x 2 x TILES: a step is two rows of 1 KB).
// In clusters of CL CTAs the weight boxes hold TILES / CL row tiles: each CTA loads its share for all.
struct WgMaps {
  CUtensorMap x, v, m, da, db;
};
// x's map and those of the regions a CTA reads (sparse values and metadata, dense fragments of the sparse-row
// tiles, of the dense-row tiles) into the descriptor cache, while its barriers and columns are set up
__device__ __forceinline__ void tma_prefetch_maps(const WgMaps& maps, bool vm, bool da, bool db) {
  tma_prefetch(&maps.x);
  if (vm) {
    tma_prefetch(&maps.v);
    tma_prefetch(&maps.m);
  }
  if (da) tma_prefetch(&maps.da);
  if (db) tma_prefetch(&maps.db);
}

// CL: CTAs per cluster along the token tiles (1 or 2).  With 2, the two CTAs of a cluster share their row
// block: each loads half of every step's A box and multicasts it to both (A's bytes from L2 per CTA halved;
// x stays per CTA), a slot is refilled only once both CTAs' consumers have freed it (`empty` counts the
// consumer warps of both), and the CTAs leave together (no arrival may reach a CTA that has exited).
// Correct on the H200 but no faster (0.94-1.0x of CL = 1: the limit is on the SM's side, not L2's;
// benchmarks/results/wgsd_2026-12-01), so SPENSE_WGSP_CLUSTER stays off.
// NT, KS: the decode form (M <= NT = 64 tokens, one token tile): the K steps split over a cluster of KS CTAs
// along grid x (rank r: its share of the sparse steps, then of the dense ones), each rank's fp32 partial sums
// added through distributed shared memory in rank order (the same bits on every run), each rank storing its
// share of the outputs.  So a layer of few row blocks still streams its weights from every SM (launch_wgsd,
// spense_wgsd.cuh; measured there).
// PS: persistent (the plain prefill form only): a grid of at most one CTA per SM walks the tiles (token tiles
// fastest, as the plain grid's x), the ring's slots and phases running on from tile to tile, so that the producer
// loads a tile's first steps while the consumers store the one before, and no CTA is launched, set up or filled
// per tile.  The consumers free a tile's last slot before their stores.  tb: the first row tile of the launch (the
// tail split's second launch, launch_wgsp_ws; else 0).
// SSA (the prefill forms; a trial): the wgmmas read A from the slot through a descriptor (wgmma_sp_ss,
// wgmma_dense_ss) instead of from registers, so that no load of A into registers stands before a step's wgmmas (the
// top stall of the plain form, docs/runtime.md section 11).  The weights then come in the SS layout (ss_layout in
// benchmarks/wgsp_ss_check.cu), the same boxes in the same places.  Measured 1.005-1.13x of the plain form; not in the
// runtime, whose decode kernels read the fragment order (docs/runtime.md section 11)
template <int S, int TPC, int CL = 1, int NT = WG_N, int KS = 1, bool PS = false, bool SSA = false>
__global__ void __launch_bounds__(384, 1) spense_wgsp_ws_kernel(
    const __grid_constant__ WgMaps maps, int M, const int* __restrict__ sblk, const int* __restrict__ dblk,
    const int* __restrict__ out_row, __nv_bfloat16* __restrict__ y, int ldy, int Bs, int Ss, int SdA, int SdB,
    int Bd, int tb) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma, TMA and setmaxnreg: sm_90a only (an empty kernel elsewhere)
  static_assert(CL == 1 || CL == 2, "clusters of one or two CTAs");
  static_assert(KS == 1 || (CL == 1 && NT == 64 && TPC * NT / 2 * 256 * 4 <= S * ws_slot(TPC, NT)), "K split");
  static_assert(!PS || (CL == 1 && KS == 1 && NT == WG_N), "persistent: the plain prefill form only");
  static_assert(!SSA || (CL == 1 && KS == 1 && NT >= WG_N), "A from shared memory: the prefill forms only");
  constexpr int TILES = 8 * TPC, XT = NT * 128, SLOT = ws_ring_slot(S, TPC, NT), SHARE = TILES / CL;  // XT: x bytes
  const int XB = NT == 64 ? wsd_xrows(M) * 128 : XT;  // the bytes of x loaded per step (the decode form: M's)
  extern __shared__ uint8_t ws_raw[];
  uint8_t* ring = ws_raw + wg_align1024(ws_raw);  // indexed from the shared array: loads stay ld.shared
  const uint32_t full0 = smem_addr(ring + S * SLOT), empty0 = full0 + S * 8;
  int* cols_s = reinterpret_cast<int*>(ring + S * SLOT + 2 * S * 8);  // step q's first column of x
  int* cols_d = PS ? cols_s + WS_MAXQ : cols_s;  // the persistent form: the dense-row tiles' own
  // the warpgroup index, warp-uniform as far as the compiler can tell (a shuffle from lane 0)
  const int wg = __shfl_sync(0xffffffffu, (int)(threadIdx.x >> 7), 0), tid = threadIdx.x & 127;
  const int ntok = (M + NT - 1) / NT, works = PS ? ntok * ((Bs + Bd) / TILES) : 1;  // the persistent form's tiles
  // the tile of work item w (the CTA's own where not persistent): its first row tile and token, its kind, its steps
  // (local index i: ns sparse steps from s_lo, then dense ones from d_lo, nl in all), their columns
  int tile0 = 0, tok0 = 0, nsp = 0, nde = 0, s_lo = 0, ns = 0, d_lo = 0, nl = 0;
  bool sp_rows = false;
  const int* cols = cols_s;
  auto geo = [&](int w) {
    tile0 = PS ? TILES * (w / ntok) : tb + TILES * blockIdx.y;
    tok0 = PS ? (w % ntok) * NT : KS == 1 ? blockIdx.x * NT : 0;
    sp_rows = tile0 < Bs;
    nsp = sp_rows ? Ss : 0, nde = sp_rows ? SdA : SdB, ns = nsp, nl = nsp + nde;
    cols = sp_rows ? cols_s : cols_d;
    if constexpr (KS > 1) {
      const int rk = blockIdx.x;
      s_lo = nsp * rk / KS;
      ns = nsp * (rk + 1) / KS - s_lo;
      d_lo = nde * rk / KS;
      nl = ns + nde * (rk + 1) / KS - d_lo;
    }
  };
  const int w0 = PS ? (int)blockIdx.x : 0, dw = PS ? (int)gridDim.x : 1;
  geo(w0);
  if (threadIdx.x == 0) {
    // the tensor maps this CTA reads into the descriptor cache, while the barriers and columns are set up
    if constexpr (PS) tma_prefetch_maps(maps, Bs > 0 && Ss > 0, Bs > 0 && SdA > 0, Bd > 0 && SdB > 0);
    else tma_prefetch_maps(maps, sp_rows && Ss > 0, sp_rows && SdA > 0, !sp_rows && SdB > 0);
    for (int s = 0; s < S; ++s) {
      mbar_init(full0 + 8 * s, 1);   // the producer's arrival with its transaction bytes
      mbar_init(empty0 + 8 * s, 8 * CL);  // every consumer warp (of every CTA of the cluster)
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");  // visible to the async proxy
  }
  if constexpr (PS) {
    for (int q = threadIdx.x; Bs > 0 && q < Ss + SdA; q += 384) cols_s[q] = wg_col(q, Ss, sblk, dblk);
    for (int q = threadIdx.x; Bd > 0 && q < SdB; q += 384) cols_d[q] = wg_col(q, 0, sblk, dblk);
  } else {
    for (int q = threadIdx.x; q < nsp + nde; q += 384) cols_s[q] = wg_col(q, nsp, sblk, dblk);
  }
  if constexpr (NT == 64) wsd_zero_x_rows(ring, S, SLOT, XT, XB);
  __syncthreads();
  if constexpr (CL > 1) {  // every CTA's barriers initialised before any multicast or remote arrival
    cluster_arrive();
    cluster_wait();
  }
  const uint32_t rank = CL > 1 ? cluster_rank() : 0;

  if (wg == 0) {  // ---------------- producer: one thread (with CL > 1 its warpgroup waits at the end) ----------------
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (CL == 1 && KS == 1 && tid != 0) return;
    // A's boxes: this CTA's share of the row tiles, into its place in every CTA of the cluster
    auto load_a = [&](uint32_t dst, const CUtensorMap* map, int c1, int t, uint32_t fb) {
      if constexpr (CL == 1) tma_load_3d(dst, map, 0, c1, t, fb);
      else tma_load_3d_mc(dst, map, 0, c1, t, fb, (uint16_t)((1u << CL) - 1));
    };
    const int share0 = (int)rank * SHARE;  // the first local row tile of this CTA's share
    // x is the kernel before's output: read only once that one has completed (a no-op unless launched dependent,
    // run_wgsp_ws's pdl: the entry above then overlaps the kernel before's end).  Every global store of the CTA
    // follows: the consumers' behind slots loaded after it, and with clusters behind this warp's barriers
    if (tid == 0) pdl_wait();
    unsigned g0 = 0;  // the ring's steps before this tile's (the persistent form's earlier tiles)
    for (int w = w0; w < works; w += dw, g0 += nl) {
      if (w != w0) geo(w);
      for (int i = 0; tid == 0 && i < nl; ++i) {
        const unsigned g = g0 + i;  // the ring's step
        const int s = (int)(g % S), q = KS == 1 ? i : (i < ns ? s_lo + i : nsp + d_lo + (i - ns));  // q: the layer's
        if (g >= S) mbar_wait(empty0 + 8 * s, (int)((g / S) - 1) & 1);
        const uint32_t slot = smem_addr(ring + s * SLOT), ab = slot + XT, fb = full0 + 8 * s;
        mbar_arrive_expect_tx(fb, XB + TILES * (i < ns ? 1024 + 128 : 2048));  // the whole step, all shares
        tma_load_2d(slot, &maps.x, cols[q], tok0, fb);
        if (i < ns) {  // [TILES][1 KB] values, then [TILES][128 B] metadata words
          load_a(ab + share0 * 1024, &maps.v, q, tile0 + share0, fb);
          load_a(ab + TILES * 1024 + share0 * 128, &maps.m, q, tile0 + share0, fb);
        } else if (sp_rows) {  // [TILES][2 KB]
          load_a(ab + share0 * 2048, &maps.da, 2 * (q - nsp), tile0 + share0, fb);
        } else {
          load_a(ab + share0 * 2048, &maps.db, 2 * q, tile0 + share0 - Bs, fb);
        }
      }
    }
    if constexpr (CL > 1 || KS > 1) {
      __syncwarp();
#pragma unroll
      for (int b = 0; b < (CL > 1) + 2 * (KS > 1); ++b) {  // the consumers' cluster barriers below
        cluster_arrive();
        cluster_wait();
      }
    }
    return;  // the consumers wait for every slot's bytes (full), so none is in flight when the CTA exits
  }

  // ---------------- consumers: warpgroup c = wg - 1 on the 64-row blocks c TPC .. c TPC + TPC - 1 ----------------
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
  const int warp = tid >> 5, lane = tid & 31, lt0 = 4 * TPC * (wg - 1) + warp;  // local tile of block m: lt0 + 4 m
  float acc[TPC][NT / 2];
  WgA a[2][TPC];
  auto fence_all = [&]() {
#pragma unroll
    for (int m = 0; m < TPC; ++m) wg_fence_acc(acc[m]);
  };
  unsigned g0 = 0;  // the ring's steps before this tile's (the persistent form's earlier tiles)
  // local step q's A for this warp from its slot, then its wgmmas on register set f; the sparse and the dense
  // steps run in loops of their own, so that no wgmma sits on a branch (ptxas serializes wgmmas behind the
  // fences it injects on divergent paths: C7520)
  auto step = [&](auto sparse_tag, int q, WgA (&f)[TPC]) {
    constexpr bool SPARSE = decltype(sparse_tag)::value;
    const unsigned g = g0 + q;
    const int s = (int)(g % S);
    mbar_wait(full0 + 8 * s, (int)(g / S) & 1);
    const uint4* as = reinterpret_cast<const uint4*>(ring + s * SLOT + XT);
    const uint64_t d0 = wg_desc(smem_addr(ring + s * SLOT));
#pragma unroll
    for (int m = 0; m < TPC; ++m) {
      const int lt = lt0 + 4 * m;
      if constexpr (SSA) {
        if constexpr (SPARSE) f[m].e = reinterpret_cast<const uint32_t*>(as + TILES * 64)[lt * 32 + lane];
      } else if constexpr (SPARSE) {
        f[m].v[0] = as[lt * 64 + lane];
        f[m].v[1] = as[lt * 64 + 32 + lane];
        f[m].e = reinterpret_cast<const uint32_t*>(as + TILES * 64)[lt * 32 + lane];
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) f[m].v[j] = as[lt * 128 + 32 * j + lane];
      }
    }
    fence_all();
    wg_fence();
    // the persistent form's tiles start their sums with the first wgmma (the tile before's are stored), where
    // zeros written by other instructions would serialize the wgmmas (C7515)
    [[maybe_unused]] const int sd = q != 0;
    // SSA: block m's A, 4 row tiles from local tile lt0 - warp + 4 m: a sparse step's values 1 KB a tile (core
    // matrices 128 B apart along K, 8-row groups 512 B apart), a dense step's 2 KB (1024 B apart)
    const uint32_t a_ss = smem_addr(as) + (uint32_t)(lt0 - warp) * (SPARSE ? 1024 : 2048);
#pragma unroll
    for (int m = 0; m < TPC; ++m) {
      if constexpr (SSA) {
        if constexpr (SPARSE) {
          const uint64_t da = wg_desc_a(a_ss + 4096 * m, 128, 512);
          if constexpr (PS) wgmma_sp_ss<0>(acc[m], da, d0, f[m].e, sd);
          else wgmma_sp_ss<0>(acc[m], da, d0, f[m].e);
          wgmma_sp_ss<1>(acc[m], da + 16, d0 + 4, f[m].e);  // + 256 bytes of A, 64 of x: K 32..63 of the step
        } else {
          const uint64_t da = wg_desc_a(a_ss + 8192 * m, 128, 1024);
          if constexpr (PS) wgmma_dense_ss(acc[m], da, d0, sd);
          else wgmma_dense_ss(acc[m], da, d0);
#pragma unroll
          for (int j = 1; j < 4; ++j) wgmma_dense_ss(acc[m], da + 16 * j, d0 + 2 * j);  // + 256 / 32 bytes per 16 K
        }
      } else if constexpr (SPARSE) {
        if constexpr (PS) wgmma_sp<0>(acc[m], f[m].v[0], d0, f[m].e, sd);
        else wgmma_sp<0>(acc[m], f[m].v[0], d0, f[m].e);
        wgmma_sp<1>(acc[m], f[m].v[1], d0 + 4, f[m].e);  // + 64 bytes: K 32..63 of the step
      } else {
        if constexpr (PS) wgmma_dense(acc[m], f[m].v[0], d0, sd);
        else wgmma_dense(acc[m], f[m].v[0], d0);
#pragma unroll
        for (int j = 1; j < 4; ++j) wgmma_dense(acc[m], f[m].v[j], d0 + 2 * j);  // + 32 bytes per 16 K
      }
    }
    wg_commit();
    wg_wait<1>();  // step q - 1's MMAs are done: its slot and its A set are free
    fence_all();
    if constexpr (CL == 1) {
      if (q > 0 && lane == 0) mbar_arrive(empty0 + 8 * ((g - 1) % S));
    } else {
      if (q > 0 && lane < CL) mbar_arrive_cluster(empty0 + 8 * ((g - 1) % S), lane);  // lane r frees it in CTA r
    }
  };
  using SP = std::true_type;
  using DE = std::false_type;
#pragma unroll
  for (int m = 0; m < TPC; ++m)
#pragma unroll
    for (int i = 0; i < NT / 2; ++i) acc[m][i] = 0.f;
  // with a K split a rank may have no steps: pin the zeros here, or ptxas sinks them into the paths around the
  // wgmmas and serializes those (C7515)
  if constexpr (KS > 1) fence_all();
  for (int w = w0; w < works; w += dw, g0 += nl) {
    if (w != w0) geo(w);
    int q = 0;
    for (; q + 1 < ns; q += 2) {
      step(SP{}, q, a[0]);
      step(SP{}, q + 1, a[1]);
    }
    if (q < ns) {  // an odd count: drain, so that the dense steps start again on set 0
      step(SP{}, q, a[0]);
      ++q;
      wg_wait<0>();
      fence_all();
    }
    for (; q + 1 < nl; q += 2) {
      step(DE{}, q, a[0]);
      step(DE{}, q + 1, a[1]);
    }
    if (q < nl) step(DE{}, q, a[0]);
    wg_wait<0>();
    fence_all();
    if constexpr (PS) {  // the tile's last slot, free before the stores: the producer refills it meanwhile
      if (nl > 0 && lane == 0) mbar_arrive(empty0 + 8 * ((g0 + nl - 1) % S));
    }
    if constexpr (CL > 1) cluster_arrive();  // after this warp's last remote arrival, before its stores
    if constexpr (KS > 1) {
      // the K split's partial sums: into this rank's ring (every load has landed, and after the barrier both
      // consumer warpgroups are done reading it), then this rank's registers j = rank (mod KS) summed over the
      // ranks in order
      asm volatile("bar.sync 1, 256;\n" ::: "memory");
      float* red = reinterpret_cast<float*>(ring);  // [TPC][NT / 2][256 consumer threads]
      const int ct = threadIdx.x - 128;
#pragma unroll
      for (int m = 0; m < TPC; ++m)
#pragma unroll
        for (int j = 0; j < NT / 2; ++j) red[(m * (NT / 2) + j) * 256 + ct] = acc[m][j];
      cluster_arrive();
      cluster_wait();
      // every remote load of a row block issued before the first sum (one round trip, not NT / 2 of them)
      constexpr int JN = NT / 2 / KS;
      const int g = lane >> 2, c = lane & 3, rk = (int)blockIdx.x;
#pragma unroll
      for (int m = 0; m < TPC; ++m) {
        const int t16 = (tile0 + lt0 + 4 * m) * 16;
        const int o0 = __ldg(out_row + t16 + g), o1 = __ldg(out_row + t16 + g + 8);
        float part[JN][KS];
#pragma unroll
        for (int jj = 0; jj < JN; ++jj)
#pragma unroll
          for (int r = 0; r < KS; ++r)  // register j holds tokens 8 (j >> 2) ..: none past M is read
            part[jj][r] = 8 * ((rk + jj * KS) >> 2) < M
                              ? ld_cluster_f32(smem_addr(red + (m * (NT / 2) + rk + jj * KS) * 256 + ct), r) : 0.f;
#pragma unroll
        for (int jj = 0; jj < JN; ++jj) {
          if (8 * ((rk + jj * KS) >> 2) >= M) continue;
          float v = 0.f;
#pragma unroll
          for (int r = 0; r < KS; ++r) v += part[jj][r];  // in rank order: the same bits on every run
          wg_put(v, rk + jj * KS, o0, o1, tok0, c, y, ldy, M);
        }
      }
    } else {
#pragma unroll
      for (int m = 0; m < TPC; ++m) wg_store(acc[m], tile0 + lt0 + 4 * m, tok0, lane, out_row, y, ldy, M);
    }
    if constexpr (CL > 1 || KS > 1) __syncwarp();  // the stores above branch; the cluster barriers are .aligned
    if constexpr (CL > 1) cluster_wait();
    if constexpr (KS > 1) {  // no rank leaves while another may still read its partial sums
      cluster_arrive();
      cluster_wait();
    }
  }
#endif
}
