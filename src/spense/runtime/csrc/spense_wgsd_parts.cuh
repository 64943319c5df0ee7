// The stream-K decode form's split of a layer over its CTAs (SkGeo, also walked on the host by
// benchmarks/wgsd_geometry_check.cu) and the helpers of its epilogue: the partial sums added in CTA order,
// the FP8 rows' scales, the trace clock.  Included by spense_wgsd.cuh.
#pragma once
#include <cuda_runtime.h>

constexpr int WSD_PART = 32 * 256;  // floats of one partial sum: 32 accumulators x 256 consumer threads

// Where the stream-K form's steps lie.  Work is counted in units of 1 KB of weights: a sparse step of a block
// (8 row tiles x 1152 B) costs 9, a dense step (8 x 2 KB) 16; with e4m3 weights (fp8) 5 (8 x 640 B) and 8 (8 x
// 1 KB).  Blocks in order: nbs sparse-row blocks (Ss sparse then SdA dense steps: cs units each), then nbd
// dense-row blocks (SdB dense steps: cd units).  CTA c of G streams the steps that start in units
// [u0(c), u0(c + 1)), u0(c) = floor(c T / G).
struct SkGeo {
  int nbs, nbd, Ss, SdA, SdB, G;
  long long us, ud, cs, cd, T;  // units of a sparse step and of a dense one; of a sparse-row and a dense-row block
  __host__ __device__ SkGeo(int Bs, int Bd, int ss, int sda, int sdb, int g, bool fp8 = false)
      : nbs(Bs / 8), nbd(Bd / 8), Ss(ss), SdA(sda), SdB(sdb), G(g), us(fp8 ? 5 : 9), ud(fp8 ? 8 : 16),
        cs(us * ss + ud * sda), cd(ud * sdb), T((long long)(Bs / 8) * cs + (long long)(Bd / 8) * cd) {}
  __host__ __device__ int steps(int b) const { return b < nbs ? Ss + SdA : SdB; }
  __host__ __device__ long long u0(int c) const { return (long long)c * T / G; }
  // the unit where step q of block b starts
  __host__ __device__ long long start(int b, int q) const {
    if (b < nbs) return b * cs + (q <= Ss ? us * q : us * Ss + ud * (q - Ss));
    return nbs * cs + (b - nbs) * cd + ud * q;
  }
  // the CTA whose units hold unit s: the largest c with u0(c) <= s
  __host__ __device__ int cta_of(long long s) const { return (int)(((s + 1) * G + T - 1) / T) - 1; }
  // the first step starting at or after unit u, as (block b, step q); (nbs + nbd, 0) past the end
  __host__ __device__ void locate(long long u, int& b, int& q) const {
    if (u >= T) {
      b = nbs + nbd;
      q = 0;
      return;
    }
    long long r;
    if (u < nbs * cs) {
      b = (int)(u / cs);
      r = u - b * cs;
      q = r <= us * Ss ? (int)((r + us - 1) / us) : Ss + (int)((r - us * Ss + ud - 1) / ud);
    } else {
      b = nbs + (int)((u - nbs * cs) / cd);
      r = u - nbs * cs - (b - nbs) * cd;
      q = (int)((r + ud - 1) / ud);
    }
    if (q >= steps(b)) {
      ++b;
      q = 0;
    }
  }
};

// acc = the partial sums of CTAs c_first..c_last added in CTA order (p0: c_first's part; the others' block is
// their first: slot 0), this thread's NJ live registers (tokens below 8 NJ / 4), their loads R parts at a time
// before any sum, so that a block split over P CTAs waits for ceil(P / R) round trips to L2, not P
// (LEAN: half the parts at a time, for the variant of fewer registers, EXP bit 8)
template <int NJ, bool LEAN = false, int NA>
__device__ __forceinline__ void wsd_sum_parts(float (&acc)[NA], const float* ws, const float* p0, int c_first,
                                              int c_last, int ct) {
  static_assert(NJ <= NA, "live registers");
  constexpr int R = (NJ <= 16 ? 8 : 4) / (LEAN ? 2 : 1);
#pragma unroll
  for (int j = 0; j < NA; ++j) acc[j] = 0.f;
  for (int c = c_first; c <= c_last; c += R) {
    float u[R][NJ];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int cr = min(c + r, c_last);  // past the end: the last part again, never added
      const float* p = cr == c_first ? p0 : ws + (size_t)cr * 2 * WSD_PART + ct;
#pragma unroll
      for (int j = 0; j < NJ; ++j) u[r][j] = __ldcg(p + j * 256);
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (c + r <= c_last) {
#pragma unroll
        for (int j = 0; j < NJ; ++j) acc[j] += u[r][j];
      }
  }
}

// the scales of a lane's two output rows (orow; -1, a padding row: 0)
__device__ __forceinline__ float2 wsd_row_scales(const float* __restrict__ wscale, int2 orow) {
  return make_float2(orow.x >= 0 ? __ldg(wscale + orow.x) : 0.f, orow.y >= 0 ? __ldg(wscale + orow.y) : 0.f);
}
// ... times f (a power of two: exact)
__device__ __forceinline__ float2 wsd_row_scales(const float* __restrict__ wscale, int2 orow, float f) {
  const float2 s = wsd_row_scales(wscale, orow);
  return make_float2(s.x * f, s.y * f);
}
// acc times its rows' scales: register j holds row g + 8 ((j >> 1) & 1) (wg_put)
template <int NA>
__device__ __forceinline__ void wsd_scale(float (&acc)[NA], float2 sc) {
#pragma unroll
  for (int j = 0; j < NA; ++j) acc[j] *= ((j >> 1) & 1) ? sc.y : sc.x;
}

// a cluster barrier: an arrive (release) then a wait (acquire) of every non-exited thread of the cluster
__device__ __forceinline__ void wsd_cluster_sync() {
  asm volatile("barrier.cluster.arrive.release;\n" ::: "memory");
  asm volatile("barrier.cluster.wait.acquire;\n" ::: "memory");
}
// acc = the parts of cluster ranks 0 .. k - 1 at the CTA-relative shared address `red` (this thread's: register
// j at red + 1 KB j), added in rank order from zero; a rank's NA loads issued before its sums (one round trip a
// rank)
template <int NA>
__device__ __forceinline__ void wsd_cluster_sum(float (&acc)[NA], uint32_t red, int k) {
#pragma unroll
  for (int j = 0; j < NA; ++j) acc[j] = 0.f;
  for (int r = 0; r < k; ++r) {
    float u[NA];
#pragma unroll
    for (int j = 0; j < NA; ++j) u[j] = ld_cluster_f32(red + 1024u * j, (uint32_t)r);
#pragma unroll
    for (int j = 0; j < NA; ++j) acc[j] += u[j];
  }
}
// The CTAs of a cluster under variant bit 8192 for the split `g` (over its G CTAs), 0 where it gives none: k where
// every row block has k CTAs of its own, in order, each with at least one step (CTA c's steps all in block c / k),
// 2 <= k <= 8; else 2 where each pair of CTAs 2p, 2p + 1 starts and ends on block bounds, each with at least one
// step (three blocks to two CTAs: the middle one split between them, no other CTA in their blocks; CTA 2p + 1
// walks its blocks last to first, so that the split one is the last of each).  Either way a split block's CTAs
// are ranks 0 .. of one cluster, the block the last each of them walks, and a cluster's CTAs split as many
// blocks (one or none): each takes the cluster's barriers as often
inline int wsd_cluster_k(const SkGeo& g) {
  const int B = g.nbs + g.nbd;
  if (B <= 0) return 0;
  int k = g.G % B == 0 && g.G / B >= 2 && g.G / B <= 8 ? g.G / B : 0;
  for (int c = 0; k && c < g.G; ++c) {
    int b0, q0, b1, q1;
    g.locate(g.u0(c), b0, q0);
    g.locate(g.u0(c + 1), b1, q1);
    if (b0 != c / k || (b1 == b0 && q1 <= q0) || (b1 != b0 && (b1 != b0 + 1 || q1 != 0 || c % k != k - 1)))
      k = 0;
  }
  if (k || g.G % 2 != 0) return k;
  for (int c = 0; c < g.G; c += 2) {  // steps from (b0, 0) to (bm, qm) for CTA c, on to (b2, 0) for c + 1
    int b0, q0, bm, qm, b2, q2;
    g.locate(g.u0(c), b0, q0);
    g.locate(g.u0(c + 1), bm, qm);
    g.locate(g.u0(c + 2), b2, q2);
    if (q0 != 0 || q2 != 0 || bm < b0 || (bm == b0 && qm == 0) || bm >= b2) return 0;
  }
  return 2;
}

// *p += v at GPU scope with acquire and release semantics (one instruction); the old value
__device__ __forceinline__ int wsd_atom_add_acq_rel(int* p, int v) {
  int old;
  asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], %2;\n" : "=r"(old) : "l"(p), "r"(v) : "memory");
  return old;
}

// the GPU's nanosecond clock (the stream-K kernel's optional trace: the harness's timeline of its CTAs)
__device__ __forceinline__ unsigned long long wsd_clock() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  return t;
}
