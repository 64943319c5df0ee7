// What ptxas makes of sparse e4m3 tensor-core instructions on sm_90a (issue 9 names "a native e4m3 mma.sp (m16n8k64)"
// as a way in). Build only, no GPU needed:
//   nvcc -gencode=arch=compute_90a,code=sm_90a -c benchmarks/sass_probe_e4m3_mmasp.cu -o /tmp/p.o && cuobjdump -sass /tmp/p.o
// Result (nvcc 13.0, 2026-12-02; benchmarks/results/wgsd_2026-12-02/be_sass_probe):
// - `probe` (mma.sp m16n8k64 e4m3): two f16 sparse MMAs (HMMA.SP.16832.F32) after 16 F2FP.F16.E4M3.UNPACK_B
//   conversions (8 for A, 8 for B) and 12 SHFLs: Hopper has no FP8 mma.sync, ptxas emulates it;
// - `probe_wgmma` (wgmma.mma_async.sp m64n16k64 e4m3, A in registers, B through a descriptor): one QGMMA.SP.64, native.
#include <cstdint>

__global__ void probe(const uint4* a, const uint4* b, const uint32_t* e, float4* d) {
  const uint4 A = a[threadIdx.x], B = b[threadIdx.x];  // A: 16x32 kept e4m3 (of 16x64), B: 64x8 e4m3
  const uint32_t E = e[threadIdx.x];                    // 2:4 metadata
  float c0 = 0.f, c1 = 0.f, c2 = 0.f, c3 = 0.f;
  asm volatile("mma.sp::ordered_metadata.sync.aligned.m16n8k64.row.col.f32.e4m3.e4m3.f32 "
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
               : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
               : "r"(A.x), "r"(A.y), "r"(A.z), "r"(A.w), "r"(B.x), "r"(B.y), "r"(B.z), "r"(B.w), "r"(E));
  d[threadIdx.x] = make_float4(c0, c1, c2, c3);
}

__global__ void probe_wgmma(const uint4* a, uint64_t bdesc, const uint32_t* e, float* d) {
  const uint4 A = a[threadIdx.x];  // a warpgroup's 64x32 kept e4m3 (of 64x64): 16 bytes a thread
  const uint32_t E = e[threadIdx.x];
  float c[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};  // 64x16 f32 over 128 threads
  asm volatile("wgmma.fence.sync.aligned;\n");
  asm volatile("wgmma.mma_async.sp.sync.aligned.m64n16k64.f32.e4m3.e4m3 "
               "{%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9,%10,%11}, %12, %13, 0, 1, 1, 1;\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]), "+f"(c[4]), "+f"(c[5]), "+f"(c[6]), "+f"(c[7])
               : "r"(A.x), "r"(A.y), "r"(A.z), "r"(A.w), "l"(bdesc), "r"(E));
  asm volatile("wgmma.commit_group.sync.aligned;\nwgmma.wait_group.sync.aligned 0;\n");
  for (int i = 0; i < 8; ++i) d[threadIdx.x * 8 + i] = c[i];
}
