# call 3: build (bit 4096: acq_rel count); stream-K GPU tests at the default and at 6145; timeline of 2049 vs 6145
# (fp8) and 1 vs 4097 (bf16) at split -1; e2e 8B FP8 B=32: dense, spense (2049), ab (6145).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s); el() { echo $(( $(date +%s)-S )); }
rm -rf /tmp/o /tmp/f; mkdir -p /tmp/o /tmp/f
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > /tmp/o/gpu.txt
TORCH_EXTENSIONS_DIR=/tmp/ext_f timeout 330 python -c "from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/f/spense_mmasp.so')" > /tmp/o/build.txt 2>&1
echo "build rc=$? at $(el) s" >> /tmp/o/gpu.txt
[ -f /tmp/f/spense_mmasp.so ] || { tail -40 /tmp/o/build.txt; cat /tmp/o/gpu.txt; exit 1; }
tar czf $OUT/ext.tgz -C /tmp/f spense_mmasp.so spense_mmasp.so.src
export SPENSE_MMASP_SO=/tmp/f/spense_mmasp.so
timeout 60 python3 -m pytest -q -m gpu tests/test_wgsp_stream_k.py -p no:cacheprovider > /tmp/o/tests.txt 2>&1; echo "tests rc=$? at $(el) s" >> /tmp/o/gpu.txt
SPENSE_WGSD_EXP=6145 timeout 60 python3 -m pytest -q -m gpu tests/test_wgsp_stream_k.py tests/test_wgsp.py -k "stream_k or sk or f16 or variant" -p no:cacheprovider > /tmp/o/tests6145.txt 2>&1; echo "tests6145 rc=$? at $(el) s" >> /tmp/o/gpu.txt
for v in 2049 6145; do SPENSE_WGSD_EXP=$v timeout 40 python3 benchmarks/sk_timeline.py --out /tmp/o/tl$v --shapes 8B.qkv,8B.o,8B.down --ms 16,32 --dtypes fp8 --splits=-1 > /tmp/o/tl$v.txt 2>&1; echo "tl$v rc=$? at $(el) s" >> /tmp/o/gpu.txt; done
for v in 1 4097; do SPENSE_WGSD_EXP=$v timeout 40 python3 benchmarks/sk_timeline.py --out /tmp/o/tlb$v --shapes 8B.o,8B.down --ms 1,32 --dtypes bf16 --splits=-1 > /tmp/o/tlb$v.txt 2>&1; echo "tlb$v rc=$? at $(el) s" >> /tmp/o/gpu.txt; done
L=$(( 590 - $(el) ))
OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$L ONLY="bw dense_fp8 spense_fp8 ab_spense_fp8" AB_SPFP8_ENV="SPENSE_WGSD_EXP=6145" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1; echo "e2e rc=$? at $(el) s" >> /tmp/o/gpu.txt
rm -f /tmp/o/*/*.png
tar czf $OUT/out.tgz -C /tmp/o .
cat /tmp/o/gpu.txt; tail -1 /tmp/o/tests.txt /tmp/o/tests6145.txt
for f in tl2049 tl6145 tlb1 tlb4097; do echo "== $f"; grep -E "^8B" /tmp/o/$f.txt | cut -c1-175; done
cat /tmp/o/e2e/stages.txt | grep -v skipped
python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4), r.get('env',''))
"
