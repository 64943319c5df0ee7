// Random weights in the Spense decode kernels' layout (spense.runtime.mmasp), for the standalone harnesses
// (benchmarks/mmasp_bulk_check.cu, benchmarks/wgsp_check.cu): values uniform in [-1, 1) (bf16) or finite
// e4m3 bytes, metadata words of valid 2:4 index pairs, sparse steps on x's first columns and dense steps
// after them (cols axis: every row tile has Ss sparse then SdA dense steps) or dense row tiles after the
// sparse ones (rows axis: Bd tiles of SdB dense steps), out_row the identity.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

static uint16_t f2bf(float f) { uint32_t u; memcpy(&u, &f, 4); return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16); }
static float bf2f(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }

struct RandLayout {
  int Bs = 0, Bd = 0, Ss = 0, SdA = 0, SdB = 0;
  size_t nsv = 0, nsm = 0, ndv = 0;   // uint4 of sparse values, u32 metadata words, uint4 of dense values
  std::vector<uint32_t> hv, hm;       // values (sparse then dense), metadata
  std::vector<int> sblk, dblk, orow;  // each step's first x column, each row's output row
  size_t bytes() const { return (nsv + ndv) * 16 + nsm * 4; }
};

// rows = 16 RT per block of row tiles; VS / VD = uint4 per (row tile, sparse / dense step)
inline RandLayout rand_layout(int N, int K, double dfrac, char axis, int RT, bool fp8, int VS, int VD,
                              std::mt19937& rng) {
  RandLayout L;
  const int ROWS = RT * 16, steps = K / 64;
  if (axis == 'c') {
    L.SdA = (int)std::lround(dfrac * steps); L.Ss = steps - L.SdA; L.SdB = 0;
    L.Bs = N / ROWS; L.Bd = 0;
  } else {
    L.Ss = steps; L.SdA = 0; L.SdB = steps;
    L.Bd = (int)std::lround(dfrac * N / ROWS); L.Bs = N / ROWS - L.Bd;
  }
  L.nsv = (size_t)L.Bs * RT * L.Ss * VS; L.nsm = (size_t)L.Bs * RT * L.Ss * 32;
  L.ndv = ((size_t)L.Bs * RT * L.SdA + (size_t)L.Bd * RT * L.SdB) * VD;
  L.hv.resize((L.nsv + L.ndv) * 4); L.hm.resize(L.nsm > 0 ? L.nsm : 1);
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  for (auto& w : L.hv) {
    if (fp8) w = rng() & 0x77777777u;  // finite e4m3 bytes
    else w = (uint32_t)f2bf(U(rng)) | ((uint32_t)f2bf(U(rng)) << 16);
  }
  const uint32_t nib[6] = {0x4, 0x8, 0xC, 0x9, 0xD, 0xE};  // valid 2:4 index pairs
  for (auto& w : L.hm) { uint32_t v = 0; for (int i = 0; i < 8; ++i) v |= nib[rng() % 6] << (4 * i); w = v; }
  L.sblk.resize(L.Ss > 0 ? L.Ss : 1); L.dblk.resize(std::max(std::max(L.SdA, L.SdB), 1));
  L.orow.resize((size_t)(L.Bs + L.Bd) * ROWS);
  for (int s = 0; s < L.Ss; ++s) L.sblk[s] = s * 64;
  for (int s = 0; s < (int)L.dblk.size(); ++s) L.dblk[s] = (axis == 'c' ? L.Ss + s : s) * 64;
  for (size_t i = 0; i < L.orow.size(); ++i) L.orow[i] = (int)i;
  return L;
}
