// The register kernel's persistent form (SPENSE_MMASP_PERSIST, read in spense_mmasp_switches.cuh: persist_mode;
// launched by spense_mmasp.cu: launch_reg): as the DET instantiation of spense_mmasp_kernel (spense_mmasp_reg.cuh: U =
// REG_U steps a round, the x ring, the warps' sums met in warp order), but each CTA walks the row blocks bi =
// blockIdx.x, blockIdx.x + gridDim.x, ... of a grid of at most (SMs x resident CTAs), and asks for its next block's
// first round of weights into L2 right after its current block's last MMAs are issued, before the cross-warp sum and
// the store (so that its loads after the store are L2 hits); its first block's first round too goes to L2 before the
// wait for x, where the one-block kernel loads it into registers.  Built for e4m3 weights only (FP8 1, 2).  Why: in the
// one-block-a-CTA kernel every CTA ends with a barrier, the sum and the store, during which its warps have no weight
// bytes in flight, and a new CTA starts with a DRAM round trip before its first MMA; with e4m3 weights a CTA moves half
// the bytes of a bf16 one in the same number of steps, so those gaps are twice the share of its time (e2e v12's fit:
// e4m3 2.8 TB/s against bf16 4.1 on the same shapes; results ak: 8B.gate_up at M = 1 24.0 us, 3.0 TB/s of its bytes,
// against the FP8 dense baseline's 3.6 TB/s of its own). Its cost: the loop over blocks takes ptxas from 76-80
// registers (the one-block kernel, e4m3, RT = 1) to 122-128, i.e. 4 CTAs of 4 warps per SM instead of 6 (a bound of 3
// CTAs of 8 warps spills 100-160 bytes); neither holding the next round in registers nor hiding the block-invariant
// addresses from ptxas changed it. Measured (results al, am): walking several blocks a CTA lost on every shape where it
// happens; on grids that fit in one wave (one block a CTA: 8B.o and 8B.down) this form ran 6-10 % faster per layer, but
// the 8B FP8 decode step did not gain from it there (2.927 ms at B = 1 against 2.903 without): off by default.
#pragma once
#include "spense_mmasp_reg.cuh"

template <int RT, int NT, int FP8, int XM>
__global__ void __launch_bounds__(DET_W256 * 32)
spense_mmasp_persist_kernel(
    const uint4* __restrict__ sv, const uint32_t* __restrict__ sm, const uint4* __restrict__ dv,
    const __nv_bfloat16* __restrict__ x, const uint4* __restrict__ xf, int ldx, int M, int kx,
    const int* __restrict__ sblk, const int* __restrict__ dblk,
    const int* __restrict__ out_row, const float* __restrict__ wscale,
    __nv_bfloat16* __restrict__ y, int ldy, int Bs, int Bd, int Ss, int SdA, int SdB, int pdl) {
  constexpr int U = REG_U;
  constexpr int ROWS = RT * 16;
  using St = RegSteps<NT, FP8, U, XM, 2>;  // (U = 4 > XE: its ring clamps change nothing here)
  constexpr int VS = St::VS, VD = St::VD, NVS = St::NVS, NVD = St::NVD, XE = St::XE, DS = St::DS, DD = St::DD;
  __shared__ float red[DET_W256 * ROWS * NT * 8];
  const int W = blockDim.x >> 5;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (W > DET_W256) __trap();
  const int nblk = Bs + Bd;

  // a row block's geometry: its index, steps of each kind, and where its weights start
  struct Blk { int b, nsp, nde; const uint4* dbase; const uint4* vbase; const uint32_t* mbase; };
  auto block_at = [&](int bi) {
    Blk k;
    k.b = bi < Bd ? Bs + bi : bi - Bd;
    if (k.b < Bs) {
      k.nsp = Ss; k.nde = SdA;
      k.dbase = dv + (size_t)k.b * RT * SdA * VD;
    } else {
      k.nsp = 0; k.nde = SdB;
      k.dbase = dv + ((size_t)Bs * RT * SdA + (size_t)(k.b - Bs) * RT * SdB) * VD;
    }
    k.vbase = sv + (size_t)k.b * RT * Ss * VS;
    k.mbase = sm + (size_t)k.b * RT * Ss * 32;
    return k;
  };
  // a block's first round into L2: its sparse steps, or its dense ones where it has none
  auto prefetch_first = [&](const Blk& k) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int s = warp + u * W;
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        if (s < k.nsp) {
#pragma unroll
          for (int v = 0; v < NVS; ++v) prefetch_l2(k.vbase + ((size_t)r * Ss + s) * VS + lane + 32 * v);
          prefetch_l2(k.mbase + ((size_t)r * Ss + s) * 32 + lane);
        } else if (k.nsp == 0 && s < k.nde) {
#pragma unroll
          for (int j = 0; j < NVD; ++j) prefetch_l2(k.dbase + ((size_t)r * k.nde + s) * VD + lane + 32 * j);
        }
      }
    }
  };

  if ((int)blockIdx.x >= nblk) return;
  // the first round of weights asked for before the wait for x (never written by the kernel before this one)
  prefetch_first(block_at(blockIdx.x));
  if (pdl) {
    pdl_wait();
    if (pdl == 2) pdl_trigger();
  }
  for (int bi = blockIdx.x; bi < nblk; bi += gridDim.x) {
    const Blk k = block_at(bi);
    const RowOut pre = first_row_out<RT, NT, FP8>(k.b, out_row, wscale, M);
    float acc[RT][NT][4];
    zero_acc<RT, NT>(acc);
    for (int s0 = warp; s0 < k.nsp; s0 += W * U) {
      uint4 va[U][RT][NVS];
      uint32_t me[U][RT];
      int xb[U] = {};
      load_sparse_round<RT, U, NVS, VS>(va, me, xb, k.vbase, k.mbase, Ss, k.nsp, s0, W, sblk, lane);
      sparse_round_math<RT, NT, FP8, U, NVS, XE, DS, XM>(acc, va, me, xb, s0, W, k.nsp, xf, x, ldx, M, kx, lane);
    }
    for (int s0 = warp; s0 < k.nde; s0 += W * U)
      dense_round<RT, NT, FP8, U, NVD, VD, XE, DD, XM>(acc, k.dbase, k.nde, s0, W, dblk, xf, x, ldx, M, kx, lane);
    // the next block's first round asked into L2 during this block's sum and store, so that its first loads
    // are L2 hits (held in registers instead, it took ~45 more registers a thread through the sum)
    const bool more = bi + (int)gridDim.x < nblk;
    if (more) {
      prefetch_first(block_at(bi + gridDim.x));
    } else if (pdl == 1) {
      pdl_trigger();
    }
    det_sum_store<RT, NT, FP8>(red, acc, warp, lane, W, k.b, out_row, wscale, y, ldy, M, pre);
    if (more) __syncthreads();  // every thread has read red before the next block's partials are written
  }
}
