#!/usr/bin/env bash
# thirty-third stop, call 2: the extension with the in-order sum (DET) up to 16 warps; the GPU tests of
# tests/test_mmasp.py (same bits every call now at 12 and 16 warps too); compute-sanitizer memcheck of the DET kernels
# at 12 and 16 warps; then the launch-config sweep on the eight Qwen3 shapes (every config's time logged) for the table
set -u
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); W=$OUT/ag; mkdir -p $W; cp .carry/cmds/i2.sh $W/command.sh
el() { echo $(( $(date +%s) - T0 )); }
s=$(date +%s); timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')" > $W/build.log 2>&1
echo "build rc=$? $(( $(date +%s) - s )) s" >> $W/times.txt
export SPENSE_MMASP_SO=/tmp/spense_mmasp.so
timeout 150 python -m pytest -v -m gpu tests/test_mmasp.py -p no:cacheprovider > $W/mmasp_gpu_tests.txt 2>&1
echo "mmasp gpu tests rc=$? at $(el) s" >> $W/times.txt
cat > /tmp/mc.py <<'PY'
import torch
from spense.format import SpenseLayout, pack
from spense.runtime.mmasp import mmasp_forward, to_kernel_layout
g = torch.Generator().manual_seed(0)
N, K = 256, 1024
lay = SpenseLayout((N, K), "cols", torch.cat([torch.arange(128, 192), torch.arange(512, 704)]), block=64)
w = torch.randn(N, K, generator=g)
s, d = lay.split(w); gg = s.reshape(s.shape[0], -1, 4)
s = (gg * (torch.rand(gg.shape, generator=g).argsort(-1).argsort(-1) < 2)).reshape(s.shape)
for fp8 in (False, True):
    kw = to_kernel_layout(pack(lay.merge(s, d).to("cuda", torch.bfloat16), lay, fp8=fp8), "cuda")
    for M in (1, 8, 16):
        x = torch.randn(M, K, generator=g).to("cuda", torch.bfloat16)
        for RT, warps in ((1, 12), (1, 16), (2, 16)):
            mmasp_forward(kw, x, RT=RT, warps=warps, stages=0)
torch.cuda.synchronize(); print("memcheck calls done")
PY
timeout 200 compute-sanitizer --tool memcheck --error-exitcode 3 python /tmp/mc.py > $W/memcheck.txt 2>&1
echo "memcheck rc=$? at $(el) s" >> $W/times.txt
C=1x4,1x5,1x6,1x7,1x8,1x10,1x12,1x16,2x4,2x8,2x16
t=$(( 430 - $(el) ))
timeout $t python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.down,8B.gate_up,32B.qkv,32B.o,32B.gate_up,32B.down \
  --ms 1,8,16 --ratios 0.25 --axes cols --dtypes bf16 --backends mmasp --cfgs $C --out $W/lbb > $W/lbb.txt 2>&1
echo "lb bf16 rc=$? at $(el) s" >> $W/times.txt
t=$(( 580 - $(el) ))
[ $t -gt 30 ] && timeout $t python3 benchmarks/linear_bench.py --shapes 8B.qkv,8B.o,8B.down,8B.gate_up,32B.qkv,32B.o,32B.gate_up,32B.down \
  --ms 1,8,16 --ratios 0.25 --axes cols --dtypes fp8 --backends mmasp --cfgs $C --out $W/lbf > $W/lbf.txt 2>&1
echo "lb fp8 rc=$? at $(el) s" >> $W/times.txt
cat $W/times.txt; tail -3 $W/mmasp_gpu_tests.txt; grep -E "FAILED|ERROR" $W/mmasp_gpu_tests.txt | head; tail -4 $W/memcheck.txt
for f in $W/lbb.txt $W/lbf.txt; do grep -E "^(8|32)B" $f | cut -c1-220; grep -i "error\|fail" $f | head -5; done
cd $OUT && tar czf ag.tgz ag && rm -rf ag
