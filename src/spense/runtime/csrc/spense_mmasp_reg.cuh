// The register variant of the Spense decode kernel (see spense_mmasp.cu for the design).
#pragma once
#include "spense_mmasp_common.cuh"

// The harness's timeline of this kernel's CTAs (benchmarks/mmasp_bulk_check.cu built with -DSPENSE_MMASP_TRACE; the
// extension never defines it, so its kernels are unchanged): six words a CTA, thread 0's reading of the GPU's
// nanosecond clock at entry (0), after the wait for x (1), after its first round of MMAs (2; 0 on a CTA of dense
// steps alone), after its last MMA (3), at the end, after the store (4), and the SM (5).
#ifdef SPENSE_MMASP_TRACE
__device__ unsigned long long* g_mmasp_trace = nullptr;
__device__ __forceinline__ void mmasp_trace(int slot) {
  if (g_mmasp_trace != nullptr && threadIdx.x == 0) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    g_mmasp_trace[6 * blockIdx.x + slot] = t;
    if (slot == 0) {
      unsigned sm_id;
      asm volatile("mov.u32 %0, %%smid;" : "=r"(sm_id));
      g_mmasp_trace[6 * blockIdx.x + 5] = sm_id;
    }
  }
}
#else
__device__ __forceinline__ void mmasp_trace(int) {}
#endif

// K steps per round and warp that the extension builds, bf16 and FP8 alike (FP8 took 8 before the x
// ring, at 125 registers; with the ring, 4 take 82 and bf16 99: -Xptxas -v, NT = 1, no spills)
constexpr int REG_U = 4;
constexpr int REG_DET_W = 16;  // the most warps of the DET instantiation (its shared memory: one slice each)
// the most warps of the DET instantiations bound to 256 threads: EARLY e4m3 at RT = NT = 1 (3 CTAs a SM, below) and the
// persistent form (spense_mmasp_persist.cuh); the launcher takes them up to this many warps only
constexpr int DET_W256 = 8;
// the most warps of the DET instantiation at RT row tiles and NT token tiles: REG_DET_W, fewer where their slices would
// take more than 32 KB of static shared memory (the harness's NT up to 8; the extension's RT, NT <= 2 take 16)
__host__ __device__ constexpr int det_w(int RT, int NT) {
  return 8192 / (RT * 16 * NT * 8) < REG_DET_W ? 8192 / (RT * 16 * NT * 8) : REG_DET_W;
}

// XM: x read through its fragments (xf, X_FRAGS) or straight (X_DIRECT): one instantiation each.
// U: K steps in flight per warp and round (the extension builds REG_U); a larger U
// (benchmarks/mmasp_bulk_check.cu) caps the CTA at 256 threads, so that its buffers fit in registers
// (but FP8 at 8 steps without the ring, XD = 0, the extension's kernel before it, keeps 512).
// PF: software pipelining of the sparse steps: round r+1's weights are loaded before round r is
// computed (two register buffers, so also at most 256 threads), and the first dense round is asked
// into L2 during the last sparse one; without it a round's loads wait for the previous round's math.
// MINB > 1 (harness only: benchmarks/mmasp_bulk_check.cu, "reg_xf_occ"): CTAs of at most 128 threads with
// MINB of them resident per SM, i.e. at most 65536 / (128 MINB) registers per thread (64 at MINB = 8,
// against 96 unbounded), to test whether more weight streams in flight per SM beat the spills.  MINB = 0:
// no residency bound (an explicit bound of 1 would let ptxas take 104 registers instead of 96).  MINB = 1: CTAs
// of at most DET_W256 warps, one resident a SM at least, so up to 255 registers a thread instead of the 128 that
// 512 threads allow: the bf16 kernels at RT = 2 spill 232-388 bytes a thread under 512 (stores, -Xptxas -v,
// NT <= 2, every form; the in-order sum on fragments 236 / 388) and none under 256 (SPENSE_MMASP_RT2_256,
// spense_mmasp.cu: launch_reg).
// XD: the x ring.  A round's x fragments are loaded ahead of its MMAs (load_xstep), those of DS steps
// at once (DD in dense rounds: half as many in bf16, whose dense weights take twice the registers),
// each refilled for the step DS later as soon as its MMAs are issued; lanes past M load nothing.
// The extension builds XD = 2 (bf16: 2 sparse steps, 1 dense; FP8: 2 and 2); on the H200 harness it
// ran as fast as XD = 4 or faster, with fewer registers (100 / 82 then against 122 / 98 at NT = 1).
// Without it (XD = 0, harness only: "reg_xf_x0") each step loaded its x inside its MMAs, which ptxas
// serialized behind the previous step's MMAs wherever registers were short (every dense round; FP8's
// sparse rounds): one L2 round trip per step, after the weights had arrived.
// ROLES (harness only, "reg_xf_roles"; written after e2e v13; 0.96-1.15x the time of the plain order, slower on o
// and down at 8 warps, where it was meant to win: docs/runtime.md §12, det_0c0db23): in a CTA with both kinds
// of steps, warps [0, WS) walk the sparse steps and warps [WS, W) the dense ones, WS chosen for the
// fewest rounds of the slower kind, where that beats every warp walking both kinds one after the other
// (at 25 % dense: o and down at 8 warps, 3 -> 2 and 7 -> 6 rounds per warp; no change at 4 warps).
// DET (the extension's default at M <= 16 and at most REG_DET_W warps, spense_mmasp.cu: launch_reg;
// "reg_xf_det" in the harness, at 0.84-1.01x the time of the atomics at M = 1 and 8): the
// warps' partial sums meet without atomics: each warp stores its own slice, one barrier, then every
// output is the sum over the warps in order, so the result is the same from run to run (the default
// adds them with shared-memory float atomics, a compare-and-swap loop each on sm_90, in the order the
// warps arrive), and the buffer needs no zeroing nor the barrier after it.
// The rounds of the register kernels (this one and spense_mmasp_persist.cuh), U steps each: step u of the round
// at s0 is s0 + u * stride, and exists while below the row block's count of that kind of step.
// One sparse round's weights into registers: values (va), metadata (me) and x block indices (xb).  CLAMP (EARLY
// & 16; the extension's DET kernels where SPENSE_MMASP_CLAMP says, the harness's "clamp", "det_h_rt_c"): every step of
// the round loaded, a step past the last one loading the last one again (its registers unused: the round's math
// skips such steps), so that no load waits behind a branch; without it ptxas branches around each step's loads in
// the bf16 kernels at NT >= 2 or RT = 2 and e4m3 at RT >= 2 (results wgsd_2026-12-02 README, fifteenth stop).
// Needs nsp >= 1.
template <int RT, int U, int NVS, int VS, bool CLAMP = false, bool SSL = false>
__device__ __forceinline__ void load_sparse_round(uint4 (&va)[U][RT][NVS], uint32_t (&me)[U][RT], int (&xb)[U],
                                                  const uint4* vbase, const uint32_t* mbase, int Ss, int nsp, int s0,
                                                  int stride, const int* __restrict__ sblk, int lane) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int s = CLAMP ? min(s0 + u * stride, nsp - 1) : s0 + u * stride;
    if (CLAMP || s < nsp) {
      xb[u] = __ldg(sblk + s);
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        const uint4* p = vbase + ((size_t)r * Ss + s) * VS + lane;
#pragma unroll
        for (int v = 0; v < NVS; ++v) va[u][r][v] = SSL ? ldg_ss_frag<NVS>(p - lane, v, lane) : ldg_stream(p + 32 * v);
        me[u][r] = ldg_stream32(mbase + ((size_t)r * Ss + s) * 32 + lane);
      }
    }
  }
}
// EARLY & 2: ask for a round's weights into L2 (no registers), the round after the one whose MMAs come next.  Its
// addresses took e4m3 at NT = 1 from 80 to 84-86 registers (ptxas -v), i.e. 2 CTAs of 8 warps a SM instead of 3
// (registers go by 8 a thread): an EARLY e4m3 DET kernel at RT = NT = 1 is bound to 3 CTAs of DET_W256 warps.
// (Two more bits ran in the harness and were removed, results wgsd_2026-12-02 folder ay: 4, the first round of the
// CTA that follows on the same SM into L2, 0.97-1.16x the time of EARLY = 3; 8, every later round of the warp into
// L2 at the start, 1.01-1.56x at M <= 8.)
template <int RT, int U, int NVS, int VS>
__device__ __forceinline__ void prefetch_sparse_round(const uint4* vbase, const uint32_t* mbase, int Ss, int nsp,
                                                      int s0, int stride, int lane) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int s = s0 + u * stride;
    if (s < nsp) {
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        const uint4* p = vbase + ((size_t)r * Ss + s) * VS + lane;
#pragma unroll
        for (int v = 0; v < NVS; ++v) prefetch_l2(p + 32 * v);
        prefetch_l2(mbase + ((size_t)r * Ss + s) * 32 + lane);
      }
    }
  }
}
template <int RT, int U, int NVD, int VD>
__device__ __forceinline__ void prefetch_dense_round(const uint4* dbase, int nde, int s0, int stride, int lane) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int s = s0 + u * stride;
#pragma unroll
    for (int r = 0; r < RT; ++r)
      if (s < nde)
#pragma unroll
        for (int j = 0; j < NVD; ++j) prefetch_l2(dbase + ((size_t)r * nde + s) * VD + lane + 32 * j);
  }
}
// The register kernels' step geometry (this one's kernel, spense_mmasp_persist.cuh, the harness's
// benchmarks/spense_mmasp_ks.cuh): uint4 per (row tile, sparse / dense step) VS / VD and per lane NVS / NVD; the x
// ring's depth XE and its slots in sparse and dense rounds DS / DD.  x ring depths: through xf or x_perm at NT <= 2,
// x direct at NT = 1 (lanes of tokens below M load four 4-byte words of their token's row per 32 K); the rest keeps
// XD = 0 (at NT > 2 a whole step's x would take 8 NT registers, and x direct at NT = 2 would take four more per
// fragment and lane).
template <int NT, int FP8, int U, int XM, int XD>
struct RegSteps {
  static constexpr int VS = FP8 ? 32 : 64;
  static constexpr int VD = FP8 ? 64 : 128;
  static constexpr int NVS = FP8 ? 1 : 2;
  static constexpr int NVD = FP8 ? 2 : 4;
  static constexpr int XE = ((XM == X_FRAGS || XM == X_PERM) && NT <= 2) || (XM == X_DIRECT && NT == 1) ? XD : 0;
  static constexpr int DS = XE == 0 ? 0 : XE / NT < 1 ? 1 : XE / NT > U ? U : XE / NT;
  static constexpr int XDD = FP8 ? XE / NT : XE / 2 / NT;  // a bf16 dense step's weights: 16 registers, FP8's 8
  static constexpr int DD = XE == 0 ? 0 : XDD < 1 ? 1 : XDD > U ? U : XDD;
};
// Row block b's steps: sparse (nsp) and dense (nde), and where its dense steps' weights start (blocks [0, Bs):
// Ss sparse steps, then SdA dense; [Bs, Bs + Bd): dense rows, SdB dense steps)
template <int RT, int VD>
__device__ __forceinline__ void row_block_steps(int b, int Bs, int Ss, int SdA, int SdB, const uint4* dv, int& nsp,
                                                int& nde, const uint4*& dbase) {
  if (b < Bs) {
    nsp = Ss; nde = SdA;
    dbase = dv + (size_t)b * RT * SdA * VD;
  } else {
    nsp = 0; nde = SdB;
    dbase = dv + ((size_t)Bs * RT * SdA + (size_t)(b - Bs) * RT * SdB) * VD;
  }
}
// ... its MMAs: through the x ring of DS slots (XE > 0), or each step loading its x inside (XE == 0)
template <int RT, int NT, int FP8, int U, int NVS, int XE, int DS, int XM>
__device__ __forceinline__ void sparse_round_math(float (&acc)[RT][NT][4], const uint4 (&va)[U][RT][NVS],
                                                  const uint32_t (&me)[U][RT], const int (&xb)[U], int s0,
                                                  int stride, int nsp, const uint4* __restrict__ xf,
                                                  const __nv_bfloat16* __restrict__ x, int ldx, int M, int kx,
                                                  int lane) {
  if constexpr (XE == 0) {
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (s0 + u * stride < nsp) sparse_step<RT, NT, FP8, NVS, XM>(acc, va[u], me[u], xb[u], xf, x, ldx, M, kx, lane);
  } else {
    x_ring_round<U, DS, NT>(
        [&](int u) { return s0 + u * stride < nsp; },
        [&](int u, uint4 (&xs)[2][NT]) { load_xstep<NT, XM>(xs, xf, x, ldx, M, kx, lane, xb[u]); },
        [&](int u, const uint4 (&xs)[2][NT]) { sparse_step_x<RT, NT, FP8, NVS>(acc, va[u], me[u], xs); });
  }
}
// One dense round: its weights into registers, then its MMAs (the x ring of DD slots, or XE == 0 as above);
// PFN: the next dense round of this warp asked into L2 between the two
template <int RT, int NT, int FP8, int U, int NVD, int VD, int XE, int DD, int XM, bool PFN = false, bool SSL = false>
__device__ __forceinline__ void dense_round(float (&acc)[RT][NT][4], const uint4* dbase, int nde, int s0, int stride,
                                            const int* __restrict__ dblk, const uint4* __restrict__ xf,
                                            const __nv_bfloat16* __restrict__ x, int ldx, int M, int kx, int lane) {
  uint4 da[U][RT][NVD];
  int xb[U] = {};
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int s = s0 + u * stride;
    if (s < nde) {
      xb[u] = __ldg(dblk + s);
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        const uint4* p = dbase + ((size_t)r * nde + s) * VD + lane;
#pragma unroll
        for (int j = 0; j < NVD; ++j) da[u][r][j] = SSL ? ldg_ss_frag<NVD>(p - lane, j, lane) : ldg_stream(p + 32 * j);
      }
    }
  }
  if constexpr (PFN) prefetch_dense_round<RT, U, NVD, VD>(dbase, nde, s0 + U * stride, stride, lane);
  if constexpr (XE == 0) {
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (s0 + u * stride < nde) dense_step<RT, NT, FP8, NVD, XM>(acc, da[u], xb[u], xf, x, ldx, M, kx, lane);
  } else {
    x_ring_round<U, DD, NT>(
        [&](int u) { return s0 + u * stride < nde; },
        [&](int u, uint4 (&xs)[2][NT]) { load_xstep<NT, XM>(xs, xf, x, ldx, M, kx, lane, xb[u]); },
        [&](int u, const uint4 (&xs)[2][NT]) { dense_step_x<RT, NT, FP8, NVD>(acc, da[u], xs); });
  }
}

// SSL (harness only, benchmarks/mmasp_ss_check.cu; bf16): the weights in the SS layout, each lane's fragment by four
// 4-byte loads (ldg_ss_frag); measured 0.80-1.03x of the fragment order (results wgsd_2026-12-06 dq), so the
// extension never builds it
template <int RT, int NT, int FP8, int U, int XM, bool PF = false, int MINB = 0, int XD = 2, bool ROLES = false,
          bool DET = false, int EARLY = 0, bool SSL = false>
__global__ void __launch_bounds__(MINB > 1 ? 128 : (MINB == 1 || ((EARLY & 3) && DET && FP8 && RT == 1 && NT == 1))
                                  ? DET_W256 * 32 : ((U > (FP8 && XD == 0 ? 8 : REG_U) || PF) ? 256 : 512),
                                  MINB > 1 ? MINB : ((EARLY & 3) && DET && FP8 && RT == 1 && NT == 1) ? 3 : MINB)
spense_mmasp_kernel(
    const uint4* __restrict__ sv, const uint32_t* __restrict__ sm, const uint4* __restrict__ dv,
    const __nv_bfloat16* __restrict__ x, const uint4* __restrict__ xf, int ldx, int M, int kx,
    const int* __restrict__ sblk, const int* __restrict__ dblk,
    const int* __restrict__ out_row, const float* __restrict__ wscale,
    __nv_bfloat16* __restrict__ y, int ldy, int Bs, int Bd, int Ss, int SdA, int SdB, int pdl) {
  constexpr int ROWS = RT * 16;
  using St = RegSteps<NT, FP8, U, XM, XD>;
  constexpr int VS = St::VS, VD = St::VD, NVS = St::NVS, NVD = St::NVD, XE = St::XE, DS = St::DS, DD = St::DD;
  static_assert(!SSL || FP8 == 0, "the SS layout holds bf16 weights");
  __shared__ float red[(DET ? det_w(RT, NT) : 1) * ROWS * NT * 8];  // DET: one slice per warp
  const int W = blockDim.x >> 5;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int bi = blockIdx.x;
  const int b = bi < Bd ? Bs + bi : bi - Bd;
  mmasp_trace(0);

  if constexpr (DET) {
    if (W > det_w(RT, NT)) __trap();
  } else {
    for (int i = threadIdx.x; i < ROWS * NT * 8; i += blockDim.x) red[i] = 0.f;
  }

  float acc[RT][NT][4];
  zero_acc<RT, NT>(acc);
  // out_row and wscale are written when the layer is loaded, never by the kernel launched just before
  // this one, so they may be read before pdl_wait
  // EARLY & 1: read after the first round's loads are issued (FP8: the scale's load waits for the row's, and
  // the warps of threads < ROWS * NT * 8 would wait with it, ~0.5 us of a CTA's start; harness trace)
  RowOut pre{-1, 1.f};
  if constexpr (!(EARLY & 1)) pre = first_row_out<RT, NT, FP8>(b, out_row, wscale, M);

  int nsp, nde;
  const uint4* dbase;
  row_block_steps<RT, VD>(b, Bs, Ss, SdA, SdB, dv, nsp, nde, dbase);
  // the warps on the sparse / dense steps (WS, WD) and this warp's index among them (ws, wd; -1: none)
  int WS = W, WD = W, ws = warp, wd = warp;
  if constexpr (ROLES) {
    if (W > 1 && nsp > 0 && nde > 0) {
      int best = (nsp + W * U - 1) / (W * U) + (nde + W * U - 1) / (W * U), split = 0;
      for (int a = 1; a < W; ++a) {
        const int r = max((nsp + a * U - 1) / (a * U), (nde + (W - a) * U - 1) / ((W - a) * U));
        if (r < best) { best = r; split = a; }
      }
      if (split) {
        WS = split; WD = W - split;
        ws = warp < split ? warp : -1;
        wd = warp >= split ? warp - split : -1;
      }
    }
  }

  // the sparse steps' weights of this warp, one round at a time
  const uint4* vbase = sv + (size_t)b * RT * Ss * VS;      // [RT][Ss][VS]
  const uint32_t* mbase = sm + (size_t)b * RT * Ss * 32;   // [RT][Ss][32] u32
  uint4 va[U][RT][NVS];
  uint32_t me[U][RT];
  int xb[U] = {};  // every step the round computes sets its entry (zeros: no use-before-set warning)
  // one round: the U steps s0, s0 + WS, ... of this warp
  auto load_round = [&](int s0, uint4 (&v_)[U][RT][NVS], uint32_t (&m_)[U][RT], int (&x_)[U]) {
    load_sparse_round<RT, U, NVS, VS, (EARLY & 16) != 0, SSL>(v_, m_, x_, vbase, mbase, Ss, nsp, s0, WS, sblk, lane);
  };
  // launched dependent (pdl_wait): load this warp's first sparse round into registers (weights and block
  // indices are written at load time, never by the kernel before), or, on a CTA of dense steps alone, ask
  // for its first round into L2; then wait for x.  The first round's DRAM round trip overlaps the end of
  // the kernel that writes x and this launch, instead of following them.
  // EARLY & 1 does so also without the dependent launch.
  // EARLY & 3 == 0 keeps this prologue inside `if (pdl)`: written as EARLY's (the same steps, unconditional), it made
  // ptxas put each step of the sparse loop's round loads behind a branch of its own instead of predicating them,
  // and the bf16 kernel up to 41 % slower at M = 1 and 8 (harness; 1-12 % per layer in linear_bench;
  // benchmarks/results/wgsd_2026-12-02 folder bj)
  const bool first_loaded = (pdl || (EARLY & 1)) && nsp > 0 && (!ROLES || ws >= 0);
  if constexpr ((EARLY & 3) == 0) {
    if (pdl) {
      if (first_loaded) load_round(ws, va, me, xb);
      else if (nsp == 0) prefetch_dense_round<RT, U, NVD, VD>(dbase, nde, warp, W, lane);
    }
  } else {
    if (first_loaded) load_round(ws, va, me, xb);
    if ((pdl || (EARLY & 2)) && nsp == 0) prefetch_dense_round<RT, U, NVD, VD>(dbase, nde, warp, W, lane);
    if constexpr (EARLY & 1) pre = first_row_out<RT, NT, FP8>(b, out_row, wscale, M);
  }
  if (pdl) {
    pdl_wait();
    if (pdl == 2) pdl_trigger();  // SPENSE_MMASP_PDL=2: the next kernel may launch now (it waits for y itself)
  }
  mmasp_trace(1);
  // ---------------- sparse steps (64 K = 2 mma.sp per row tile) ----------------
  if (nsp && (!ROLES || ws >= 0)) {
    auto math_round = [&](int s0) {
      sparse_round_math<RT, NT, FP8, U, NVS, XE, DS, XM>(acc, va, me, xb, s0, WS, nsp, xf, x, ldx, M, kx, lane);
    };
    if (PF) {
      if (!first_loaded) load_round(ws, va, me, xb);
      for (int s0 = ws; s0 < nsp; s0 += WS * U) {
        uint4 vn[U][RT][NVS];
        uint32_t mn[U][RT];
        int xn[U];
        const int s1 = s0 + WS * U;
        if (s1 < nsp) {
          load_round(s1, vn, mn, xn);
        } else if (nde) {  // the last sparse round: ask for the first dense round meanwhile
#pragma unroll
          for (int u = 0; u < U; ++u)
#pragma unroll
            for (int r = 0; r < RT; ++r)
              if (warp + u * W < nde)
#pragma unroll
                for (int j = 0; j < NVD; ++j) prefetch_l2(dbase + ((size_t)r * nde + warp + u * W) * VD + lane + 32 * j);
        }
        math_round(s0);
        if (s1 < nsp) {
#pragma unroll
          for (int u = 0; u < U; ++u) {
            xb[u] = xn[u];
#pragma unroll
            for (int r = 0; r < RT; ++r) {
              me[u][r] = mn[u][r];
#pragma unroll
              for (int v = 0; v < NVS; ++v) va[u][r][v] = vn[u][r][v];
            }
          }
        }
      }
    } else {
      for (int s0 = ws; s0 < nsp; s0 += WS * U) {
        if (s0 != ws || !first_loaded) load_round(s0, va, me, xb);
        if constexpr ((EARLY & 2) != 0) {  // the next round, or past the last one the first dense round, into L2
          if (s0 + WS * U < nsp) prefetch_sparse_round<RT, U, NVS, VS>(vbase, mbase, Ss, nsp, s0 + WS * U, WS, lane);
          else if (nde && (!ROLES || wd >= 0)) prefetch_dense_round<RT, U, NVD, VD>(dbase, nde, wd, WD, lane);
        }
        math_round(s0);
        if (s0 == ws) mmasp_trace(2);
      }
    }
  }
  // ---------------- dense steps (64 K = 4 mma.m16n8k16 per row tile) ----------------
  if (nde && (!ROLES || wd >= 0)) {
    for (int s0 = wd; s0 < nde; s0 += WD * U)
      dense_round<RT, NT, FP8, U, NVD, VD, XE, DD, XM, (EARLY & 2) != 0, SSL>(acc, dbase, nde, s0, WD, dblk, xf, x, ldx,
                                                                             M, kx, lane);
  }
  mmasp_trace(3);
  if (pdl == 1) pdl_trigger();
  // ---------------- reduce over warps, write in place ----------------
  if constexpr (DET) {
    det_sum_store<RT, NT, FP8>(red, acc, warp, lane, W, b, out_row, wscale, y, ldy, M, pre);
  } else {
    __syncthreads();
    add_partials<RT, NT>(red, acc, lane);
    __syncthreads();
    store_rows<RT, NT, FP8>(red, b, out_row, wscale, y, ldy, M, pre);
  }
  mmasp_trace(4);
}
