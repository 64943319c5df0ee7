// Where sparse e4m3 wgmma (wgmma.mma_async.sp m64n16k64 .e4m3.e4m3, sm_90a: one native QGMMA.SP, see
// sass_probe_e4m3_mmasp.cu) takes its A register bytes and its metadata nibbles from: the layout a decode form
// with x quantized to e4m3 would pack the weights for (docs/runtime.md section 13, thirteenth stop; results README
// wgsd_2026-12-02, Next 4).  Measured, not assumed: one wgmma per probe, one CTA (a warpgroup) per probe.
//
//   B (x, shared, K-major, 128-byte swizzle as spense_wgsp.cuh's tiles): B[k][n] = 2^(k/16) if k % 16 == n, else 0,
//   for k < 64 (e4m3 1, 2, 4, 8: exact), so an output D[r][n] = v names k = 16 log2(v) + n.
// - A probes (2048): every thread's metadata 0x44444444 (each 4-column group keeps its columns 0 and 1), one A byte
//   (thread p / 16, byte p % 16 of its four registers) = 1.0, the rest 0: D's one non-zero entry gives the (row, k) of
//   that byte.  Checked against the hypothesis that the per-warp fragment is mma.sp m16n8k64's: register r, byte b of
//   lane l (g = l / 4, t = l % 4) of warp w holds row 16 w + g + 8 (r & 1), kept column 16 (r >> 1) + 4 t + b.
// - metadata probes (1024 + a baseline): every A byte 1.0, metadata 0x44444444 but one nibble (thread p / 8, nibble
//   p % 8) = 0xE (columns 2 and 3 kept): the entries of D that move give the (row, 4-column group) of that nibble.
// Build here (no GPU needed) and run on the device:
//   nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -I src/spense/runtime/csrc \
//        benchmarks/wgsd_e4m3_probe.cu -o /tmp/wgsd_e4m3_probe && /tmp/wgsd_e4m3_probe
#include <cmath>
#include <cstdio>
#include <vector>

#include "spense_wgsp.cuh"

constexpr int THREADS = 128, NTOK = 16, TILE = NTOK * 128;  // x tile: 16 tokens x 128 bytes (k < 64 used)
constexpr int A_PROBES = THREADS * 16, E_PROBES = THREADS * 8;

__device__ __forceinline__ void wgmma_sp_e4m3(float (&d)[8], const uint32_t (&a)[4], uint64_t desc, uint32_t e) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %14, 0;\n"  // scale-d false: D = A B, d's old values unread
      "wgmma.mma_async.sp.sync.aligned.m64n16k64.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11}, %12, %13, 0, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(e), "r"(0));
}

// blockIdx.x < A_PROBES: an A probe; else a metadata probe (E_PROBES of them, then the baseline)
__global__ void probe(float* out) {
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* xs = smem + wg_align1024(smem);
  const int tid = threadIdx.x, p = blockIdx.x;
  for (int i = tid; i < TILE; i += THREADS) {
    const int n = i / 128, k = i % 128;
    const uint8_t v = (k < 64 && k % 16 == n) ? (uint8_t)(0x38 + 8 * (k / 16)) : 0;  // e4m3 2^(k/16)
    xs[n * 128 + (((k / 16) ^ (n % 8)) * 16) + k % 16] = v;
  }
  fence_proxy_async();  // the generic-proxy writes made visible to wgmma's async proxy, then the barrier
  __syncthreads();
  uint32_t a[4] = {0u, 0u, 0u, 0u}, e = 0x44444444u;
  if (p < A_PROBES) {
    if (tid == p / 16) a[(p % 16) / 4] = 0x38u << (8 * (p % 4));
  } else {
    for (auto& r : a) r = 0x38383838u;
    const int q = p - A_PROBES;
    if (q < E_PROBES && tid == q / 8) e ^= (0x4u ^ 0xEu) << (4 * (q % 8));
  }
  float d[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  wg_fence();
  wgmma_sp_e4m3(d, a, wg_desc(smem_addr(xs)), e);
  wg_commit();
  wg_wait<0>();
  for (int j = 0; j < 8; ++j) out[((size_t)p * THREADS + tid) * 8 + j] = d[j];
}

// D (64 x 16) of probe p from the threads' registers: warp w, lane 4 g + c, register j holds row
// 16 w + g + 8 ((j >> 1) & 1), token 8 (j >> 2) + 2 c + (j & 1)
static void gather(const std::vector<float>& out, int p, float (&D)[64][NTOK]) {
  for (int tid = 0; tid < THREADS; ++tid) {
    const int w = tid / 32, g = (tid % 32) / 4, c = tid % 4;
    for (int j = 0; j < 8; ++j)
      D[16 * w + g + 8 * ((j >> 1) & 1)][8 * (j >> 2) + 2 * c + (j & 1)] = out[((size_t)p * THREADS + tid) * 8 + j];
  }
}

static int k_of(float v, int n) { return 16 * (int)std::lround(std::log2(std::fabs(v))) + n; }

int main() {
  const int probes = A_PROBES + E_PROBES + 1, smem = TILE + 1024;
  float* dev = nullptr;
  if (cudaMalloc(&dev, (size_t)probes * THREADS * 8 * sizeof(float)) != cudaSuccess) return 1;
  cudaFuncSetAttribute(probe, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  probe<<<probes, THREADS, smem>>>(dev);
  const cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) { printf("launch failed: %s\n", cudaGetErrorString(err)); return 1; }
  std::vector<float> out((size_t)probes * THREADS * 8);
  cudaMemcpy(out.data(), dev, out.size() * sizeof(float), cudaMemcpyDeviceToHost);
  static float D[64][NTOK], D0[64][NTOK];
  // A bytes: (row, k) of each thread's 16 bytes, one line a thread; '*' where the m16n8k64 hypothesis differs
  int match = 0, single = 0;
  printf("## A: thread: byte 0..15 -> row,k ('*': not the hypothesis; NONE / MANY: no / several outputs)\n");
  for (int tid = 0; tid < THREADS; ++tid) {
    printf("t%3d:", tid);
    for (int byte = 0; byte < 16; ++byte) {
      const int p = tid * 16 + byte;
      gather(out, p, D);
      int nz = 0, row = -1, k = -1;
      for (int r = 0; r < 64; ++r)
        for (int n = 0; n < NTOK; ++n)
          if (D[r][n] != 0.f) { ++nz; row = r; k = k_of(D[r][n], n); }
      const int reg = byte / 4, w = tid / 32, l = tid % 32;
      const int hrow = 16 * w + l / 4 + 8 * (reg & 1), hc = 16 * (reg >> 1) + 4 * (l % 4) + byte % 4;
      const int hk = 4 * (hc / 2) + hc % 2;  // metadata 0x4: a group's kept columns are its 0 and 1
      single += nz == 1;
      const bool hyp = nz == 1 && row == hrow && k == hk;
      match += hyp;
      if (nz == 1) printf(" %d,%d%s", row, k, hyp ? "" : "*");
      else printf(" %s", nz ? "MANY" : "NONE");
    }
    printf("\n");
  }
  printf("A: %d of %d probes hit one output, %d as the hypothesis says\n", single, A_PROBES, match);
  // metadata nibbles: (row, 4-column group) of each thread's 8 nibbles, one line a thread
  gather(out, A_PROBES + E_PROBES, D0);
  int found = 0;
  std::vector<int> seen(64 * 16, 0);
  printf("## metadata: thread: nibble 0..7 -> row,group (NONE / MANY: no row / several rows moved)\n");
  for (int tid = 0; tid < THREADS; ++tid) {
    printf("t%3d:", tid);
    for (int nib = 0; nib < 8; ++nib) {
      gather(out, A_PROBES + tid * 8 + nib, D);
      int row = -1, grp = -1, moved = 0, rows = 0, lastr = -1;
      for (int r = 0; r < 64; ++r)
        for (int n = 0; n < NTOK; ++n)
          if (D[r][n] != D0[r][n]) {
            ++moved;
            if (r != lastr) { ++rows; lastr = r; }
            if (D[r][n] < D0[r][n]) { row = r; grp = k_of(D0[r][n] - D[r][n], n) / 4; }
          }
      const bool ok = rows == 1 && row >= 0;
      found += ok;
      if (ok) { seen[row * 16 + grp]++; printf(" %d,%d", row, grp); }
      else printf(" %s", moved ? "MANY" : "NONE");
    }
    printf("\n");
  }
  int covered = 0;
  for (int v : seen) covered += v == 1;
  printf("metadata: %d of %d nibbles move one row; %d of 1024 (row, group) pairs named exactly once\n", found,
         E_PROBES, covered);
  cudaFree(dev);
  return 0;
}
