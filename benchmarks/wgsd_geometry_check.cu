// The stream-K decode form's split of a layer (SkGeo, src/spense/runtime/csrc/spense_wgsd.cuh), checked on the
// host over many layer shapes and grids, as the kernel walks it: every (row block, K step) streamed by exactly
// one CTA, the one cta_of names; no CTA without steps; a split block's participants the CTAs from cta_of of its
// first step to cta_of of its last; each participant's part in the slot the last arrival reads (0 where the
// block is the CTA's first, 1 where it is its last), no slot written twice; every participant after the first
// has the block as its first; for bf16 and e4m3 steps alike.  No GPU needed (tests/test_wgsp_stream_k.py builds and
// runs it):
//   nvcc -std=c++17 -I src/spense/runtime/csrc benchmarks/wgsd_geometry_check.cu -o /tmp/wgsd_geometry
//   /tmp/wgsd_geometry
// prints "cases N fails 0" and exits 0, or names the first failures and exits 1.
#include <cstdio>
#include <map>
#include <vector>

#include "spense_wgsd.cuh"

static int fails = 0;
static void fail(const char* what, int Bs, int Bd, int Ss, int SdA, int SdB, int G, int c, int b) {
  if (++fails <= 10) printf("FAIL %s: Bs %d Bd %d Ss %d SdA %d SdB %d G %d cta %d block %d\n", what, Bs, Bd, Ss, SdA,
                            SdB, G, c, b);
}

int main() {
  int cases = 0, clusters = 0, pairs = 0;  // cases where bit 8192 launches clusters (wsd_cluster_k); of two CTAs
  // over more than one block
  for (bool fp8 : {false, true})
    for (int Bs : {0, 8, 16, 64, 256, 384, 1536, 3072, 3200})
      for (int Bd : {0, 8, 64, 128})
        for (int Kq : {1, 3, 16, 64, 192, 400})  // K / 64
          for (int quarter : {0, 1, 4})              // dense steps of the sparse-row blocks: quarter / 4 of K
            for (int want : {0, 1, 2, 7, 64, 80, 96, 120, 128, 132}) {
              if (Bs + Bd == 0) continue;
              const int Ss = Bs ? Kq * 3 / 4 + (Kq < 4) : 0, SdA = Bs ? quarter * Kq / 4 : 0, SdB = Bd ? Kq : 0;
              const int G = wsd_sk_grid(SkGeo(Bs, Bd, Ss, SdA, SdB, 1, fp8), want);
              const SkGeo g(Bs, Bd, Ss, SdA, SdB, G, fp8);
              ++cases;
              const int nb = g.nbs + g.nbd;
              std::vector<std::vector<int>> owner(nb);
              for (int b = 0; b < nb; ++b) owner[b].assign(g.steps(b), -1);
              std::map<std::pair<int, int>, int> slot_of;  // (cta, slot) -> block
              for (int c = 0; c < G; ++c) {
                int b0, q0, b1, q1, n = 0;
                g.locate(g.u0(c), b0, q0);
                g.locate(g.u0(c + 1), b1, q1);
                for (int b = b0, q = q0; b < b1 || (b == b1 && q < q1); ++b, q = 0) {  // the kernel's walk
                  const int qe = b == b1 ? q1 : g.steps(b);
                  for (int k = q; k < qe; ++k, ++n) {
                    if (owner[b][k] != -1) fail("step streamed twice", Bs, Bd, Ss, SdA, SdB, G, c, b);
                    owner[b][k] = c;
                    if (g.cta_of(g.start(b, k)) != c) fail("cta_of", Bs, Bd, Ss, SdA, SdB, G, c, b);
                  }
                  const int cf = g.cta_of(g.start(b, 0)), cl = g.cta_of(g.start(b, g.steps(b) - 1));
                  if (c < cf || c > cl) fail("participant range", Bs, Bd, Ss, SdA, SdB, G, c, b);
                  if (cf == cl) continue;
                  const int slot = b == b0 ? 0 : 1;  // as the kernel writes it
                  if (slot_of.count({c, slot})) fail("slot written twice", Bs, Bd, Ss, SdA, SdB, G, c, b);
                  slot_of[{c, slot}] = b;
                  if (c > cf && slot != 0) fail("a later participant's slot", Bs, Bd, Ss, SdA, SdB, G, c, b);
                }
                if (n == 0) fail("a CTA without steps", Bs, Bd, Ss, SdA, SdB, G, c, -1);
              }
              if (const int k = wsd_cluster_k(g)) {  // variant bit 8192: clusters of k CTAs
                ++clusters;
                pairs += k == 2 && G != 2 * nb;
                if (G % k != 0) fail("cluster size", Bs, Bd, Ss, SdA, SdB, G, -1, -1);
                std::vector<int> split_of(G, 0), last_of(G, -1);  // each CTA's split blocks; its walk's last block
                for (int c = 0; c < G; ++c) {
                  int b0, q0, b1, q1;
                  g.locate(g.u0(c), b0, q0);
                  g.locate(g.u0(c + 1), b1, q1);
                  const int bl = q1 > 0 ? b1 : b1 - 1;
                  last_of[c] = q0 != 0 ? b0 : bl;  // the kernel's walk: last to first where b0 is split (rev)
                }
                for (int b = 0; b < nb; ++b) {  // a split block's CTAs: ranks 0 .. of one cluster, its last block
                  const int cf = g.cta_of(g.start(b, 0)), cl = g.cta_of(g.start(b, g.steps(b) - 1));
                  if (cf == cl) continue;
                  if (cf % k != 0 || cl / k != cf / k) fail("cluster's ranks", Bs, Bd, Ss, SdA, SdB, G, cf, b);
                  for (int c = cf; c <= cl; ++c) {
                    ++split_of[c];
                    if (last_of[c] != b) fail("split block not walked last", Bs, Bd, Ss, SdA, SdB, G, c, b);
                  }
                }
                for (int c = 0; c < G; ++c)  // one cluster epilogue (its two barriers) per CTA, or none in all
                  if (split_of[c] > 1 || split_of[c] != split_of[c - c % k])
                    fail("cluster barriers", Bs, Bd, Ss, SdA, SdB, G, c, -1);
              }
              for (int b = 0; b < nb; ++b) {
                for (int k = 0; k < g.steps(b); ++k)
                  if (owner[b][k] < 0) fail("step never streamed", Bs, Bd, Ss, SdA, SdB, G, -1, b);
                const int cf = g.cta_of(g.start(b, 0)), cl = g.cta_of(g.start(b, g.steps(b) - 1));
                for (int c = cf; cf != cl && c <= cl; ++c) {  // the slots the last arrival reads
                  int bc, qc;
                  g.locate(g.u0(c), bc, qc);
                  const auto it = slot_of.find({c, bc == b ? 0 : 1});
                  if (it == slot_of.end() || it->second != b) fail("slot read", Bs, Bd, Ss, SdA, SdB, G, c, b);
                }
              }
            }
  printf("cases %d clusters %d pairs %d fails %d\n", cases, clusters, pairs, fails);
  return fails != 0;
}
