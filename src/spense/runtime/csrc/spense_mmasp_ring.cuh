// The register kernel with each warp's weights through a ring of its own in shared memory (SPENSE_MMASP_RING;
// spense_mmasp.cu: ring_mode, launch_reg).  Same row blocks, same steps per warp in the same order, the same MMAs
// (sparse_step_x / dense_step_x) and the same in-order sum (det_sum_store) as the DET instantiation of
// spense_mmasp_kernel: the same bits.
//
// Why: the register kernel loads a round of U = 4 steps into registers, waits for them, computes, and only then
// loads the next round, so a warp has at most one round in flight and none during its math; more steps a round
// cost registers, hence resident warps (spense_mmasp_reg.cuh: PF, reg_xf_u2; spense_mmasp_persist.cuh).  Here
// every lane copies its own bytes of each step into the warp's ring with cp.async (16-byte copies of the values,
// a 4-byte one of the metadata word), S - 1 steps ahead of the step it computes, and reads them back with plain
// shared loads: each lane reads only what it copied itself, so cp.async.wait_group is the only wait (no barrier,
// no mbarrier, no producer warp), and the bytes in flight cost shared memory instead of registers.  A step's
// slot is a dense step's bytes (RT * NVD uint4 a lane), which a sparse step's values and metadata fit in.
// The first S - 1 steps are asked for before the wait for x (pdl_wait): weights and tables are written when the
// layer is loaded, never by the kernel before.  x goes through a ring of XR steps in registers, as in the
// register kernel, each step's x columns read from the block tables (L1 hits after the first CTA of an SM).
//
// Shared memory: W warps x S slots x RT * NVD x 512 bytes (e4m3, RT = 1: 1 KB a slot; bf16: 2 KB), dynamic.
#pragma once
#include "spense_mmasp_reg.cuh"

// 4-byte asynchronous copy global -> shared (through L1: .ca is the only form of this size), and a wait that
// leaves at most N of this thread's newest copy groups pending
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" :: "r"(s), "l"(gmem) : "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait_n() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory"); }

// uint4 a lane per ring slot: one dense step of RT row tiles
template <int RT, int FP8>
__host__ __device__ constexpr int ring_slot_q() { return RT * (FP8 ? 2 : 4); }
// dynamic shared memory of one CTA of `warps` warps with S slots each
template <int RT, int FP8, int S>
constexpr size_t ring_smem_bytes(int warps) { return (size_t)warps * S * ring_slot_q<RT, FP8>() * 32 * 16; }

template <int RT, int NT, int FP8, int XM, int S>
__global__ void __launch_bounds__(REG_DET_W * 32)
spense_mmasp_ring_kernel(
    const uint4* __restrict__ sv, const uint32_t* __restrict__ sm, const uint4* __restrict__ dv,
    const __nv_bfloat16* __restrict__ x, const uint4* __restrict__ xf, int ldx, int M, int kx,
    const int* __restrict__ sblk, const int* __restrict__ dblk,
    const int* __restrict__ out_row, const float* __restrict__ wscale,
    __nv_bfloat16* __restrict__ y, int ldy, int Bs, int Bd, int Ss, int SdA, int SdB, int pdl) {
  static_assert(S >= 2, "a ring of at least two slots");
  constexpr int ROWS = RT * 16;
  constexpr int VS = FP8 ? 32 : 64;   // uint4 per (row tile, sparse step)
  constexpr int VD = FP8 ? 64 : 128;  // uint4 per (row tile, dense step)
  constexpr int NVS = FP8 ? 1 : 2;    // uint4 per lane per sparse step
  constexpr int NVD = FP8 ? 2 : 4;    // uint4 per lane per dense step
  constexpr int Q = ring_slot_q<RT, FP8>();  // a slot: [Q][32 lanes] uint4; sparse: values at q < RT * NVS,
  static_assert(RT * NVS < Q && RT <= 4, "the metadata words fit the slot's next uint4 row");  // metadata next
  extern __shared__ uint4 ring_all[];
  __shared__ float red[REG_DET_W * ROWS * NT * 8];
  const int W = blockDim.x >> 5;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (W > REG_DET_W) __trap();
  const int bi = blockIdx.x;
  const int b = bi < Bd ? Bs + bi : bi - Bd;
  int nsp, nde;
  const uint4* dbase;
  if (b < Bs) {
    nsp = Ss; nde = SdA;
    dbase = dv + (size_t)b * RT * SdA * VD;
  } else {
    nsp = 0; nde = SdB;
    dbase = dv + ((size_t)Bs * RT * SdA + (size_t)(b - Bs) * RT * SdB) * VD;
  }
  const uint4* vbase = sv + (size_t)b * RT * Ss * VS;     // [RT][Ss][VS]
  const uint32_t* mbase = sm + (size_t)b * RT * Ss * 32;  // [RT][Ss][32] u32
  // this warp's steps: i < ns the sparse step warp + i W, then the dense step warp + (i - ns) W
  const int ns = nsp > warp ? (nsp - warp + W - 1) / W : 0;
  const int nd = nde > warp ? (nde - warp + W - 1) / W : 0;
  const int T = ns + nd;
  uint4* ring = ring_all + (size_t)warp * S * Q * 32;
  // step i's bytes of this lane into slot i % S, as one copy group (empty past the last step, so that the
  // groups count steps)
  auto issue = [&](int i) {
    if (i < T) {
      uint4* slot = ring + (i % S) * Q * 32 + lane;
      if (i < ns) {
        const int s = warp + i * W;
#pragma unroll
        for (int r = 0; r < RT; ++r) {
#pragma unroll
          for (int v = 0; v < NVS; ++v) cp_async16(slot + (r * NVS + v) * 32, vbase + ((size_t)r * Ss + s) * VS + lane + 32 * v);
          cp_async4(reinterpret_cast<uint32_t*>(slot - lane + RT * NVS * 32) + r * 32 + lane,
                    mbase + ((size_t)r * Ss + s) * 32 + lane);
        }
      } else {
        const int d = warp + (i - ns) * W;
#pragma unroll
        for (int r = 0; r < RT; ++r)
#pragma unroll
          for (int j = 0; j < NVD; ++j) cp_async16(slot + (r * NVD + j) * 32, dbase + ((size_t)r * nde + d) * VD + lane + 32 * j);
      }
    }
    cp_async_commit();
  };
  const RowOut pre = first_row_out<RT, NT, FP8>(b, out_row, wscale, M);
#pragma unroll 1
  for (int i = 0; i < S - 1; ++i) issue(i);
  if (pdl) {
    pdl_wait();
    if (pdl == 2) pdl_trigger();
  }
  auto xcol = [&](int i) { return i < ns ? __ldg(sblk + warp + i * W) : __ldg(dblk + warp + (i - ns) * W); };
  float acc[RT][NT][4];
  zero_acc<RT, NT>(acc);
  // x of steps i and i + 1 in registers (two slots, so that their index is known at compile time)
  uint4 xr0[2][NT], xr1[2][NT];
  if (T > 0) load_xstep<NT, XM>(xr0, xf, x, ldx, M, kx, lane, xcol(0));
  if (T > 1) load_xstep<NT, XM>(xr1, xf, x, ldx, M, kx, lane, xcol(1));
  // step i: its bytes from the ring (the group of step i done: at most S - 1 newer ones pending), its MMAs,
  // then its x slot refilled for step i + 2.  Slot (i - 1) % S, refilled first, was read into registers by
  // step i - 1, whose MMAs have consumed them.
  auto step = [&](int i, uint4 (&xr)[2][NT]) {
    issue(i + S - 1);
    cp_async_wait_n<S - 1>();
    const uint4* slot = ring + (i % S) * Q * 32 + lane;
    if (i < ns) {
      uint4 va[RT][NVS];
      uint32_t me[RT];
#pragma unroll
      for (int r = 0; r < RT; ++r) {
#pragma unroll
        for (int v = 0; v < NVS; ++v) va[r][v] = slot[(r * NVS + v) * 32];
        me[r] = reinterpret_cast<const uint32_t*>(slot - lane + RT * NVS * 32)[r * 32 + lane];
      }
      sparse_step_x<RT, NT, FP8, NVS>(acc, va, me, xr);
    } else {
      uint4 da[RT][NVD];
#pragma unroll
      for (int r = 0; r < RT; ++r)
#pragma unroll
        for (int j = 0; j < NVD; ++j) da[r][j] = slot[(r * NVD + j) * 32];
      dense_step_x<RT, NT, FP8, NVD>(acc, da, xr);
    }
    if (i + 2 < T) load_xstep<NT, XM>(xr, xf, x, ldx, M, kx, lane, xcol(i + 2));
  };
#pragma unroll 1
  for (int i = 0; i < T; i += 2) {
    step(i, xr0);
    if (i + 1 < T) step(i + 1, xr1);
  }
  if (pdl == 1) pdl_trigger();
  det_sum_store<RT, NT, FP8>(red, acc, warp, lane, W, b, out_row, wscale, y, ldy, M, pre);
}
