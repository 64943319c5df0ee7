// The decode forms (M <= 64 tokens) of the Spense GEMM on sparse warpgroup MMA (sm_90a), on the decode
// kernels' weight layout: 8 row tiles (128 output rows) and 64 tokens per work block, the operands fed by TMA
// into a ring of WSD_STAGES slots, as spense_wgsp_ws_kernel does for prefill.  At M <= 64 the MMAs are few and
// the kernel's time is the time to stream the weights, so what matters is that every SM streams all the time.
// Two ways to spread a layer of few row blocks over the SMs:
// - launch_wgsd: the K steps of each row block split over a cluster of KS CTAs, partial sums added through
//   distributed shared memory (spense_wgsp_ws_kernel with KS > 1);
// - launch_wgsd_sk (stream-K): one persistent CTA per SM, each streaming an equal share of the whole layer's
//   weight bytes, a contiguous run of (row block, K step) pairs that may start and end inside a row block.
//   The ring runs on across row blocks, so the producer fetches the next block's steps while the consumers
//   store the last one's sums.  A block split between CTAs is finished by whichever of them arrives last
//   (an atomic count per block, never a wait), which adds the partial sums in CTA order: the same bits on
//   every run.  It also serves e4m3 weights (FP8), and by default takes token tiles of 16 or 32 where M fits
//   (smaller ring slots, more of them).
#pragma once
#include <tuple>

#include "spense_wgsp_ws_launch.cuh"  // spense_wgsp_ws_kernel, its maps and launchers
#include "spense_wgsd_parts.cuh"  // SkGeo (the stream-K split) and the epilogue's helpers

constexpr int WSD_STAGES = 8;  // ring slots of the decode forms (8 x 24 KB: more weight bytes in flight)
// bytes of a ring slot of the stream-K form: an x tile of nt tokens, then 8 row tiles' A of a dense step
__host__ __device__ constexpr int wsd_slot(int nt, bool fp8) { return nt * 128 + 8 * (fp8 ? 1024 : 2048); }

// the maps of the pair form (variant bit 512, e4m3): today's, and the same regions in boxes of two K steps
struct WgMapsPair : WgMaps {
  CUtensorMap v2, m2, da2, db2;
};
template <int EXP>
using WgMapsFor = std::conditional_t<(EXP & 512) != 0, WgMapsPair, WgMaps>;

// The stream-K kernel: grid G (at most one CTA per SM), 384 threads as spense_wgsp_ws_kernel (a producer
// warpgroup, two consumer warpgroups of 4 row tiles each).  ws: [G][2][WSD_PART] floats (a CTA's partial sums
// of its first and of its last block), cnt: one zeroed int per block (left zeroed); trace: null, or 4 clocks
// per CTA (entry, its first operands in, its last MMAs done, exit: the harness's timeline).
// EXP: variants written from that timeline (SPENSE_WGSD_EXP, default 1; measured in docs/runtime.md §13),
// each with the bits of variant 0: bit 1, a split block's epilogue in three round trips to L2 (a CTA's part
// stored, one thread's fence and count, then the last arrival's loads of all parts at once: wsd_sum_parts)
// where variant 0 takes two and one per part; bit 2, thread 0 issues the first ring's weight boxes right after
// the barriers' init, before the column tables are read, and the producer waits for the kernel before
// (griddepcontrol.wait: a no-op unless launched dependent, bit 4 of the launch) only before its first x load,
// and lets the kernel after it launch (griddepcontrol.launch_dependents) once its last load is issued; bit 8,
// 128 registers a thread at launch instead of 168, so that another kernel's CTA can share the SM (a dependent
// launch then starts beside the kernel before it instead of after it); bit 32, two steps' wgmmas in flight
// behind a step's commit instead of one (three A register sets); bit 64, four accumulator sets, so that the
// wgmmas of a step and of the step after it do not wait for each other's sums (each step's two or four
// wgmmas on sets of their own, the sets added in order before the epilogue).  Two variants for timing only,
// whose sums are wrong, on tiles of 16 tokens: bit 128, the consumers free each slot as soon as its bytes are
// in, with no MMA (y = 0: the rate of the stream alone); bit 256 (e4m3), the bytes go to the wgmmas as they
// are, not widened (the rate without the widening).  Bit 1024 (with 2): only the first two slots' weight boxes
// go out early, so that step 0's x box is not queued behind a whole ring of weights (results README, Next 2).
// Bit 512 (e4m3, tiles of 16 or 32): ring slots of two K steps (PAIR, below; maps of its own, WgMapsPair).  Bit 2048
// (with 512): x comes in f16 (x * 2^-8, spense.runtime.xops.f16_operand), each e4m3 pair widened to f16 by one
// cvt (exact) instead of five instructions to bf16, the wgmmas in f16, the sums times 2^8 with the row scales.
// Bit 4096 (with 1): a split block's count by one acq_rel atomic, not fence, atomic, fence.  Bit 8192: launched
// in clusters (wsd_cluster_k): of the k CTAs of each row block (whole shares, 2 <= k <= 8), or of two CTAs over
// three blocks (the middle one shared); a split block's parts are added through distributed shared memory,
// with no workspace, count or L2 round trip (CLU, below).  Bit 32768 (not with 2): launched dependent, the
// producer waiting for the kernel before only ahead of its first x load, no early trigger (below).  Bit 65536
// (with 512): each slot's MMAs waited for before the next slot's A is read (DRAIN, below).
// FP8: e4m3 weights (the decode kernels' FP8 layout: a lane's 16 bytes hold two fragments), each fragment
// widened in registers to bf16 holding e4m3 * 2^-120 and multiplied by 2^120 (e4m3x8_frag: exact), so the
// MMAs are those of bf16; the sums times wscale (per output row) in the epilogue.  Half the weight bytes per
// step: a slot's A box is 8 x 512 B of values + 8 x 128 B of metadata (sparse) or 8 x 1 KB (dense).
// NT: tokens per tile (64, 32 or 16; M <= NT): the wgmmas m64nNT, NT / 2 accumulators a thread, an x tile of
// NT rows, so that a slot is smaller and the ring holds more of them (wsd_stages).
template <int S, int EXP = 0, bool FP8 = false, int NT = 64>
__global__ void __launch_bounds__((EXP & 8) != 0 ? 512 : 384, 1) spense_wgsd_sk_kernel(
    const __grid_constant__ WgMapsFor<EXP> maps, int M, const int* __restrict__ sblk, const int* __restrict__ dblk,
    const int* __restrict__ out_row, __nv_bfloat16* __restrict__ y, int ldy, int Bs, int Bd, int Ss, int SdA,
    int SdB, float* __restrict__ ws, int* __restrict__ cnt, unsigned long long* __restrict__ trace,
    const float* __restrict__ wscale) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  // bit 512 (e4m3, tiles of 16 or 32, D = 1): a ring slot holds two K steps of one kind (two x tiles, then an A box
  // [tile][step][bytes] from the maps of two steps), pairing each run's steps from its start, the odd last one
  // alone: half the slots, barrier waits and arrivals per byte, and runs of 1 KB per row tile
  constexpr bool PAIR = (EXP & 512) != 0;
  static_assert(!PAIR || (FP8 && NT <= 32 && (EXP & 32) == 0), "the pair form: e4m3, tiles of 16 or 32, D = 1");
  constexpr bool F16 = (EXP & 2048) != 0;  // x in f16 (times 2^-8), e4m3 widened to f16: the pair form only
  static_assert(!F16 || PAIR, "x in f16: the pair form only");
  // bit 8192 (launched in clusters of the CTAs that share each split row block, launch_wgsd_sk): a block's parts
  // added through distributed shared memory instead of the workspace; the consumers take the epilogue's two
  // cluster barriers, the producer's threads have exited by then (a cluster barrier waits for the non-exited
  // threads only; their taking it too spilled the producer's 24 registers)
  constexpr bool CLU = (EXP & 8192) != 0;
  constexpr int XT = NT * 128, SLOT = (PAIR ? 2 : 1) * wsd_slot(NT, FP8), AOFF = (PAIR ? 2 : 1) * XT;
  constexpr int VB = FP8 ? 512 : 1024, DB = FP8 ? 1024 : 2048;  // a row tile's bytes per sparse / dense step
  const int XB = wsd_xrows(M) * 128;  // x bytes loaded per step: M's rows (the others zeroed once)
  extern __shared__ uint8_t ws_raw[];
  uint8_t* ring = ws_raw + wg_align1024(ws_raw);
  const uint32_t full0 = smem_addr(ring + S * SLOT), empty0 = full0 + S * 8;
  int* cols_s = reinterpret_cast<int*>(ring + S * SLOT + 2 * S * 8);  // a sparse-row block's step q: x column
  int* cols_d = cols_s + WS_MAXQ;                                      // a dense-row block's
  int* last = cols_d + WS_MAXQ;                                        // this CTA finishes the block (epilogue)
  const int wg = __shfl_sync(0xffffffffu, (int)(threadIdx.x >> 7), 0), tid = threadIdx.x & 127;
  const SkGeo geo(Bs, Bd, Ss, SdA, SdB, (int)gridDim.x, FP8);
  const int cta = (int)blockIdx.x;
  if (trace != nullptr && threadIdx.x == 0) trace[4 * cta] = wsd_clock();
  int b0, q0, b1, q1;  // this CTA's steps: from (b0, q0) up to, not including, (b1, q1)
  geo.locate(geo.u0(cta), b0, q0);
  geo.locate(geo.u0(cta + 1), b1, q1);
  // the CTA walks its blocks b0 .. bl (the last with steps), under bit 8192 last to first where its first block
  // is split (a cluster's rank 1 of two over three blocks, wsd_cluster_k: the block it shares comes last, as
  // for rank 0, so that both take the cluster's epilogue once every load of theirs has landed)
  const int bl = q1 > 0 && (b1 > b0 || q1 > q0) ? b1 : b1 - 1;  // (a CTA without steps walks none)
  const bool rev = CLU && q0 != 0;
  if (threadIdx.x == 0) {
    tma_prefetch_maps(maps, Bs > 0 && Ss > 0, Bs > 0 && SdA > 0, Bd > 0 && SdB > 0);
    for (int s = 0; s < S; ++s) {
      mbar_init(full0 + 8 * s, 1);
      mbar_init(empty0 + 8 * s, 8);  // every consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  // step i (block b, step q)'s transaction bytes, and its weight box into ring slot i % S
  auto expect = [&](int i, int b, int q) {
    mbar_arrive_expect_tx(full0 + 8 * (i % S), XB + 8 * (b < geo.nbs && q < Ss ? VB + 128 : DB));
  };
  constexpr int DR = FP8 ? 1 : 2;  // rows of the dense maps per step (rows of 1 KB)
  auto load_a = [&](int i, int b, int q) {
    const uint32_t ab = smem_addr(ring + (i % S) * SLOT) + AOFF, fb = full0 + 8 * (i % S);
    if (b < geo.nbs && q < Ss) {
      tma_load_3d(ab, &maps.v, 0, q, 8 * b, fb);
      tma_load_3d(ab + 8 * VB, &maps.m, 0, q, 8 * b, fb);
    } else if (b < geo.nbs) {
      tma_load_3d(ab, &maps.da, 0, DR * (q - Ss), 8 * b, fb);
    } else {
      tma_load_3d(ab, &maps.db, 0, DR * q, 8 * b - Bs, fb);
    }
  };
  // bit 2: the first EARLY slots' weight boxes (and their transaction counts) issued by the producer thread at
  // once, in the walk's order, before the column tables the x loads need are read; it also waits for the kernel
  // before ahead of the first x load and lets the next one launch after its last load (PDL).  (The same boxes
  // without the dependent launch, also in the pair form, were bit 16384: the fill 1.0-2.75 us longer on the 8B
  // shapes, benchmarks/results/wgsd_2026-12-04 m, so removed.)
  constexpr bool PRE = (EXP & 2) != 0;
  static_assert(!PRE || (!PAIR && (EXP & 32768) == 0), "bit 2: not in the pair form, not with bit 32768");
  constexpr int EARLY = (EXP & 1024) != 0 ? (S < 2 ? S : 2) : S;  // slots whose weight boxes go out early
  if constexpr (PRE) {
    if (threadIdx.x == 0) {
      int i = 0;
      for (int r = b0; i < EARLY && r <= bl; ++r) {
        const int b = rev ? b0 + bl - r : r, qe = b == b1 ? q1 : geo.steps(b);
        for (int q = b == b0 ? q0 : 0; i < EARLY && q < qe; ++q, ++i) {
          expect(i, b, q);
          load_a(i, b, q);
        }
      }
    }
  }
  if (Bs > 0)
    for (int q = threadIdx.x; q < Ss + SdA; q += 384) cols_s[q] = wg_col(q, Ss, sblk, dblk);
  if (Bd > 0)
    for (int q = threadIdx.x; q < SdB; q += 384) cols_d[q] = wg_col(q, 0, sblk, dblk);
  wsd_zero_x_rows(ring, S, SLOT, XT, XB);  // the rows of every slot's x tile that no load writes
  if constexpr (PAIR) wsd_zero_x_rows(ring + XT, S, SLOT, XT, XB);  // and of its second
  __syncthreads();

  if (wg == 0) {  // ---------------- producer: one thread walks this CTA's steps ----------------
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (tid != 0) return;
    // bit 32768: launched dependent, the CTA's entry (tensor maps, barriers, column tables) overlapping the kernel
    // before; x (its output) read only after it has completed.  No early trigger: the kernel after this one
    // launches at its exit, so no later launch can reach the workspace while this one uses it
    if constexpr ((EXP & 32768) != 0) pdl_wait();
    if constexpr (PAIR) {  // slots of two steps of one kind (the odd last step of a run's part alone)
      int i = 0;  // ring index: this CTA's slot count so far
      for (int r = b0; r <= bl; ++r) {
        const int b = rev ? b0 + bl - r : r;
        const bool sp_rows = b < geo.nbs;
        const int qe = b == b1 ? q1 : geo.steps(b), nsp = sp_rows ? Ss : 0;
        int q = b == b0 ? q0 : 0;
        while (q < qe) {
          const bool sparse = q < nsp;
          const int n = q + 1 < (sparse ? min(qe, nsp) : qe) ? 2 : 1, s = i % S;
          if (i >= S) mbar_wait(empty0 + 8 * s, ((i / S) - 1) & 1);
          const uint32_t sb = smem_addr(ring + s * SLOT), fb = full0 + 8 * s, ab = sb + AOFF;
          mbar_arrive_expect_tx(fb, n * (XB + 8 * (sparse ? VB + 128 : DB)));
          for (int j = 0; j < n; ++j)
            tma_load_2d(sb + j * XT, &maps.x, sp_rows ? cols_s[q + j] : cols_d[q + j], 0, fb);
          if (sparse) {
            tma_load_3d(ab, n == 2 ? &maps.v2 : &maps.v, 0, q, 8 * b, fb);
            tma_load_3d(ab + 8 * n * VB, n == 2 ? &maps.m2 : &maps.m, 0, q, 8 * b, fb);
          } else if (sp_rows) {
            tma_load_3d(ab, n == 2 ? &maps.da2 : &maps.da, 0, q - Ss, 8 * b, fb);
          } else {
            tma_load_3d(ab, n == 2 ? &maps.db2 : &maps.db, 0, q, 8 * b - Bs, fb);
          }
          ++i;
          q += n;
        }
      }
      return;
    }
    int i = 0;  // ring index: this CTA's step count so far
    for (int r = b0; r <= bl; ++r) {
      const int b = rev ? b0 + bl - r : r;
      const bool sp_rows = b < geo.nbs;
      const int qe = b == b1 ? q1 : geo.steps(b);
      for (int q = b == b0 ? q0 : 0; q < qe; ++q, ++i) {
        const int s = i % S;
        if (i >= S) mbar_wait(empty0 + 8 * s, ((i / S) - 1) & 1);
        if constexpr (PRE) {
          const bool early = i < EARLY;  // its weight box is on its way already
          if (i == 0) pdl_wait();    // x: written by the kernel before
          if (!early) expect(i, b, q);
          tma_load_2d(smem_addr(ring + s * SLOT), &maps.x, sp_rows ? cols_s[q] : cols_d[q], 0, full0 + 8 * s);
          if (!early) load_a(i, b, q);
        } else {
          expect(i, b, q);
          tma_load_2d(smem_addr(ring + s * SLOT), &maps.x, sp_rows ? cols_s[q] : cols_d[q], 0, full0 + 8 * s);
          load_a(i, b, q);
        }
      }
    }
    if constexpr ((EXP & 2) != 0) pdl_trigger();  // after its wait: the kernel after this one may launch
    return;  // the consumers wait for every slot's bytes, so none is in flight when the CTA exits
  }

  // ---------------- consumers: warpgroup wg - 1 on row tiles 4 (wg - 1) .. + 3 of each block ----------------
  // bit 8: 128 registers a thread at launch (the bound of 512 threads), 49,152 of the SM's 65,536, so that a CTA
  // of a short kernel fits beside this one; the consumers then take what the producer gave back (176)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"((EXP & 8) != 0 ? 176 : 240) : "memory");
  const int warp = tid >> 5, lane = tid & 31, lt = 4 * (wg - 1) + warp, ct = threadIdx.x - 128;
  constexpr int D = (EXP & 32) != 0 ? 2 : 1;  // wgmma groups a step leaves in flight (bit 32: two)
  constexpr bool NO_MMA = (EXP & 128) != 0, NO_WIDEN = FP8 && (EXP & 256) != 0;  // timing only (above)
  // accumulator sets (bit 64: four chains of wgmmas, not one; one on tiles of 64 with bit 32, where more would
  // not leave the registers of three A sets: two spilled in e4m3)
  constexpr int C = (EXP & 64) == 0 || (NT == 64 && D == 2) ? 1 : 4;
  float accs[C][NT / 2];
  float(&acc)[NT / 2] = accs[0];  // the sums: set 0, the others added into it after a run's last step
  auto fence_all = [&]() {
#pragma unroll
    for (int c = 0; c < C; ++c) wg_fence_acc(accs[c]);
  };
  WgA a[D + 1];  // A register sets: a step's set is rewritten D + 1 steps later, once its wgmmas are done
  int free_from = 0;  // ring slots of steps below this index are freed
  // this warp's A of one step into f: step t of the box ([tile][step][bytes]; lt for boxes of one step), values
  // from `as`, sparse metadata from `meta` uint4s after it; e4m3 widened to bf16 (NO_WIDEN: as it is)
  auto frags = [&](auto sparse_tag, WgA& f, const uint4* as, int meta, int t) {
    if constexpr (decltype(sparse_tag)::value) {
      if constexpr (NO_WIDEN) {  // timing only: the bytes as they are
        f.v[0] = f.v[1] = as[t * 32 + lane];
      } else if constexpr (F16) {  // one uint4 of e4m3 bytes: both fragments, in f16
        const uint4 r = as[t * 32 + lane];
        f.v[0] = e4m3x8_frag_h(r.x, r.y);
        f.v[1] = e4m3x8_frag_h(r.z, r.w);
      } else if constexpr (FP8) {  // one uint4 of e4m3 bytes: both fragments
        const uint4 r = as[t * 32 + lane];
        f.v[0] = e4m3x8_frag(r.x, r.y);
        f.v[1] = e4m3x8_frag(r.z, r.w);
      } else {
        f.v[0] = as[t * 64 + lane];
        f.v[1] = as[t * 64 + 32 + lane];
      }
      f.e = reinterpret_cast<const uint32_t*>(as + meta)[t * 32 + lane];
    } else if constexpr (NO_WIDEN) {
#pragma unroll
      for (int h = 0; h < 2; ++h) f.v[2 * h] = f.v[2 * h + 1] = as[t * 64 + 32 * h + lane];
    } else if constexpr (FP8) {  // two: fragments 0, 1 and 2, 3 (F16: in f16)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint4 r = as[t * 64 + 32 * h + lane];
        f.v[2 * h] = F16 ? e4m3x8_frag_h(r.x, r.y) : e4m3x8_frag(r.x, r.y);
        f.v[2 * h + 1] = F16 ? e4m3x8_frag_h(r.z, r.w) : e4m3x8_frag(r.z, r.w);
      }
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) f.v[j] = as[t * 128 + 32 * j + lane];
    }
  };
  // one step's wgmmas from A set f on the x tile of descriptor d: sparse on accumulator sets J, J + 1, dense on
  // 0 .. 3 (mod C)
  auto mmas = [&](auto sparse_tag, auto j_tag, const WgA& f, uint64_t d) {
    constexpr int J = decltype(j_tag)::value;
    if constexpr (F16) {  // (tested first and alone: its wgmmas exist for tiles of 16 and 32 only)
      if constexpr (decltype(sparse_tag)::value) {
        wgmma_sp_h<0>(accs[J % C], f.v[0], d, f.e);
        wgmma_sp_h<1>(accs[(J + 1) % C], f.v[1], d + 4, f.e);
      } else {
#pragma unroll
        for (int w = 0; w < 4; ++w) wgmma_dense_h(accs[w % C], f.v[w], d + 2 * w);
      }
    } else if constexpr (decltype(sparse_tag)::value) {
      wgmma_sp<0>(accs[J % C], f.v[0], d, f.e);
      wgmma_sp<1>(accs[(J + 1) % C], f.v[1], d + 4, f.e);
    } else {
#pragma unroll
      for (int w = 0; w < 4; ++w) wgmma_dense(accs[w % C], f.v[w], d + 2 * w);
    }
  };
  // ring step i (its A for this warp from its slot, then its wgmmas on register set f; P: its place in a
  // round of the A sets, which picks its accumulator sets); sparse and dense steps run in loops of their own,
  // so that no wgmma sits on a branch (C7520)
  auto step = [&](auto sparse_tag, auto place, int i, WgA& f) {
    constexpr int P = decltype(place)::value;
    const int s = i % S;
    mbar_wait(full0 + 8 * s, (i / S) & 1);
    if (trace != nullptr && i == 0 && ct == 0) trace[4 * cta + 1] = wsd_clock();  // the first step's operands in
    if constexpr (NO_MMA) {  // timing only: the slot freed at once
      if (lane == 0) mbar_arrive(empty0 + 8 * s);
      return;
    }
    const uint4* as = reinterpret_cast<const uint4*>(ring + s * SLOT + AOFF);
    const uint64_t d0 = wg_desc(smem_addr(ring + s * SLOT));
    frags(sparse_tag, f, as, 8 * (FP8 ? 32 : 64), lt);
    fence_all();
    wg_fence();
    mmas(sparse_tag, std::integral_constant<int, 2 * P>{}, f, d0);
    wg_commit();
    wg_wait<D>();  // step i - D's MMAs are done: its slot and its A set are free
    fence_all();
    if (i - D >= free_from && lane == 0) mbar_arrive(empty0 + 8 * ((i - D) % S));
  };
  // steps i + k .. i + n - 1 of one kind, the A sets in turn (full rounds of D + 1), then the rest on sets
  // 0 .. D - 1; drained after a rest, so that the next run starts again on set 0
  auto steps = [&](auto tag, int i, int& k, int n) {
    using P0 = std::integral_constant<int, 0>;
    using P1 = std::integral_constant<int, 1>;
    for (; k + D < n; k += D + 1) {
      step(tag, P0{}, i + k, a[0]);
      step(tag, P1{}, i + k + 1, a[1]);
      if constexpr (D == 2) step(tag, std::integral_constant<int, 2>{}, i + k + 2, a[D]);
    }
    if (k < n) {
      step(tag, P0{}, i + k, a[0]);
      ++k;
      if (D == 2 && k < n) {
        step(tag, P1{}, i + k, a[1]);
        ++k;
      }
      wg_wait<0>();
      fence_all();
    }
  };
  // the pair form (bit 512): slot i of one or two steps (TWO), the A sets 2 P and 2 P + 1 (place P), each step's
  // wgmmas on accumulator sets of their own; steps k .. n - 1 of one kind in slots of two, the odd last alone,
  // drained after a rest as above
  // bit 65536 (the pair form): each slot's MMAs waited for before the next slot's A is read, so that two A sets
  // are live across the wgmmas instead of four; on tiles of 32 tokens the four-chain pair form otherwise does not
  // fit the consumers' registers and ptxas serializes its wgmmas (C7512).  The same MMAs in the same order; each
  // slot freed as soon as its MMAs are done (one slot more for the producer to fill ahead)
  constexpr bool DRAIN = PAIR && (EXP & 65536) != 0;
  WgA ap[PAIR ? 4 : 1];
  auto pslot = [&](auto sparse_tag, auto two_tag, auto place, int i) {
    constexpr int N = decltype(two_tag)::value ? 2 : 1, P = decltype(place)::value;
    const int s = i % S;
    mbar_wait(full0 + 8 * s, (i / S) & 1);
    if (trace != nullptr && i == 0 && ct == 0) trace[4 * cta + 1] = wsd_clock();
    const uint4* as = reinterpret_cast<const uint4*>(ring + s * SLOT + AOFF);
#pragma unroll
    for (int j = 0; j < N; ++j)  // this warp's row tile's step j in the box
      frags(sparse_tag, ap[(2 * P + j) % (PAIR ? 4 : 1)], as, 8 * N * 32, N * lt + j);
    fence_all();
    wg_fence();
    mmas(sparse_tag, std::integral_constant<int, 0>{}, ap[(2 * P) % (PAIR ? 4 : 1)],
         wg_desc(smem_addr(ring + s * SLOT)));
    if constexpr (N == 2)  // the second step, on the second x tile
      mmas(sparse_tag, std::integral_constant<int, 2>{}, ap[(2 * P + 1) % (PAIR ? 4 : 1)],
           wg_desc(smem_addr(ring + s * SLOT + XT)));
    wg_commit();
    // slot i - 1's MMAs are done: its ring slot and its A sets are free (DRAIN: slot i's too, only its two A sets
    // live across them)
    if constexpr (DRAIN)
      wg_wait<0>();
    else
      wg_wait<1>();
    fence_all();
    const int done = DRAIN ? i : i - 1;
    if (done >= free_from && lane == 0) mbar_arrive(empty0 + 8 * (done % S));
  };
  auto prun = [&](auto tag, int& i, int& k, int n) {
    using T2 = std::true_type;
    using T1 = std::false_type;
    using P0 = std::integral_constant<int, 0>;
    using P1 = std::integral_constant<int, 1>;
    for (; k + 3 < n; k += 4, i += 2) {
      pslot(tag, T2{}, P0{}, i);
      pslot(tag, T2{}, P1{}, i + 1);
    }
    if (k < n) {
      if (k + 1 < n) {
        pslot(tag, T2{}, P0{}, i++);
        k += 2;
        if (k < n) {
          pslot(tag, T1{}, P1{}, i++);
          ++k;
        }
      } else {
        pslot(tag, T1{}, P0{}, i++);
        ++k;
      }
      wg_wait<0>();
      fence_all();
    }
  };
  using SP = std::true_type;
  using DE = std::false_type;
  int i = 0;
  for (int r = b0; r <= bl; ++r) {
    const int b = rev ? b0 + bl - r : r, q = b == b0 ? q0 : 0;
    const int Qb = geo.steps(b), qe = b == b1 ? q1 : Qb, nsp = b < geo.nbs ? Ss : 0;
    const int tile = 8 * b + lt;
    const int2 orow = wg_rows(out_row, tile, lane);  // ahead of the MMAs: off the epilogue's path
    const float2 sc = !FP8 ? make_float2(1.f, 1.f)
                      : F16 ? wsd_row_scales(wscale, orow, 256.f)  // x came times 2^-8
                            : wsd_row_scales(wscale, orow);
    // the block's sums (FP8: times the rows' scales) into y
    auto store = [&]() {
      if constexpr (FP8) wsd_scale(acc, sc);
      wg_store_rows(acc, orow, 0, lane, y, ldy, M);
    };
#pragma unroll
    for (int c = 0; c < C; ++c)
#pragma unroll
      for (int j = 0; j < NT / 2; ++j) accs[c][j] = 0.f;
    fence_all();  // the zeros pinned here, not sunk into the paths around the wgmmas (C7515)
    const int ns = q < nsp ? min(qe, nsp) - q : 0, nl = qe - q;  // sparse steps, all steps of this run
    int k = 0;
    if constexpr (PAIR) {  // i: slots
      prun(SP{}, i, k, ns);
      prun(DE{}, i, k, nl);
    } else {
      steps(SP{}, i, k, ns);
      steps(DE{}, i, k, nl);
      i += nl;
    }
    wg_wait<0>();
    fence_all();
#pragma unroll
    for (int c = 1; c < C; ++c)  // the other chains' sums into set 0, in order
#pragma unroll
      for (int j = 0; j < NT / 2; ++j) acc[j] += accs[c][j];
    if (lane == 0 && !NO_MMA)  // the run's last D slots, now, not at the next steps (NO_MMA, DRAIN: freed already)
      for (int j = max(free_from, i - (DRAIN ? 0 : D)); j < i; ++j) mbar_arrive(empty0 + 8 * (j % S));
    free_from = i;
    if (trace != nullptr && ct == 0) trace[4 * cta + 2] = wsd_clock();  // (the last run's) MMAs done
    // the epilogue: the whole block here, or this CTA's part of it
    const int c_first = geo.cta_of(geo.start(b, 0)), c_last = geo.cta_of(geo.start(b, Qb - 1));
    if (c_first == c_last) {
      store();
      continue;
    }
    if constexpr (CLU) {  // the cluster is this block's CTAs c_first .. c_last, ranks 0 .. k - 1 in that order
      // every CTA's part into its own ring (every load has landed; after the barrier both consumer warpgroups
      // are done reading it); then the warps of row tiles lt = r (mod k) of rank r add the k parts in rank
      // order from zero, as the workspace's sums do (the same bits), and store them; the second cluster
      // barrier: no CTA leaves while another may still read its part
      asm volatile("bar.sync 1, 256;\n" ::: "memory");
      float* red = reinterpret_cast<float*>(ring);  // [NT / 2][256 consumer threads]
#pragma unroll
      for (int j = 0; j < NT / 2; ++j) red[j * 256 + ct] = acc[j];
      wsd_cluster_sync();
      const int kc = c_last - c_first + 1;  // the cluster's CTAs
      if (lt % kc == cta - c_first) {
        wsd_cluster_sum(acc, smem_addr(red + ct), kc);
        store();
      }
      wsd_cluster_sync();
      continue;
    }
    const int slot = b == b0 ? 0 : 1;  // this CTA's first block, or its last
    float* part = ws + ((size_t)cta * 2 + slot) * WSD_PART + ct;
#pragma unroll
    for (int j = 0; j < NT / 2; ++j)  // register j holds tokens 8 (j >> 2) ..: none past M is kept
      if (8 * (j >> 2) < M) __stcg(part + j * 256, acc[j]);
    // the partial sums visible to the GPU before the count says so: every thread's fence (variant 0), or one
    // thread's after the barrier, which orders the others' stores before its release (EXP bit 1, as CUTLASS's
    // semaphore)
    constexpr bool ONE_FENCE = (EXP & 1) != 0;
    if constexpr (!ONE_FENCE) __threadfence();
    asm volatile("bar.sync 1, 256;\n" ::: "memory");
    // bit 4096 (with 1): one acq_rel atomic in place of fence, atomic, fence (CUTLASS's semaphore: the barrier
    // above, then one thread's release; its acquire, then the barrier below, before the others' loads)
    constexpr bool ACQ_REL = ONE_FENCE && (EXP & 4096) != 0;
    if (ct == 0) {
      if constexpr (ONE_FENCE && !ACQ_REL) __threadfence();
      const bool fin = (ACQ_REL ? wsd_atom_add_acq_rel(cnt + b, 1) : atomicAdd(cnt + b, 1)) == c_last - c_first;
      if (fin) {
        cnt[b] = 0;  // every part has arrived: no one else touches the count in this launch
        if constexpr (ONE_FENCE && !ACQ_REL) __threadfence();  // acquire: every part before this CTA's loads
      }
      *last = fin;
    }
    asm volatile("bar.sync 1, 256;\n" ::: "memory");
    constexpr bool LEAN = (EXP & 8) != 0;
    if (*last && (EXP & 1) != 0) {  // the last to arrive adds every part, in CTA order
      // block b is the first block of every participant after c_first (their ranges start inside it: slot 0;
      // benchmarks/wgsd_geometry_check.cu); c_first's slot is 0 only if b is its first block too
      int bf, qf;
      geo.locate(geo.u0(c_first), bf, qf);
      const float* p0 = ws + ((size_t)c_first * 2 + (bf == b ? 0 : 1)) * WSD_PART + ct;
      constexpr int NA = NT / 2;
      switch ((M + 15) >> 4) {  // the live registers: tokens below M rounded up to sixteens
        case 1: wsd_sum_parts<8, LEAN>(acc, ws, p0, c_first, c_last, ct); break;
        case 2: wsd_sum_parts<(16 < NA ? 16 : NA), LEAN>(acc, ws, p0, c_first, c_last, ct); break;
        case 3: wsd_sum_parts<(24 < NA ? 24 : NA), LEAN>(acc, ws, p0, c_first, c_last, ct); break;
        default: wsd_sum_parts<NA, LEAN>(acc, ws, p0, c_first, c_last, ct);
      }
      store();
    } else if (*last) {  // the last to arrive adds every part, in CTA order (into acc: its own part is in ws too)
      __threadfence();
#pragma unroll
      for (int j = 0; j < NT / 2; ++j) acc[j] = 0.f;
      for (int c = c_first; c <= c_last; ++c) {
        int bc, qc;
        geo.locate(geo.u0(c), bc, qc);  // block b is CTA c's first (slot 0) or its last (slot 1)
        const float* p = ws + ((size_t)c * 2 + (bc == b ? 0 : 1)) * WSD_PART + ct;
#pragma unroll
        for (int j = 0; j < NT / 2; ++j) acc[j] += __ldcg(p + j * 256);  // all: loads behind a branch each ran
        // one at a time (M = 64 1.7x slower, e2e v17); the registers of tokens past M are never stored
      }
      store();
    }
  }
  if (trace != nullptr && ct == 0) trace[4 * cta + 3] = wsd_clock();
#endif
}

#include "spense_wgsd_launch.cuh"  // the stream-K form's launchers
