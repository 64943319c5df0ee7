# call 4: the carried extension; e2e 8B at B = 32 with the default 6145: FP8 and BF16 pairs
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
S=$(date +%s); el() { echo $(( $(date +%s)-S )); }
rm -rf /tmp/o /tmp/e; mkdir -p /tmp/o /tmp/e
tar xzf .carry/extz/ext.tgz -C /tmp/e && export SPENSE_MMASP_SO=/tmp/e/spense_mmasp.so
echo "commit ${SPENSE_COMMIT:-unknown} start $(date -u +%FT%TZ)" > /tmp/o/gpu.txt
L=$(( ${CAP:-370} - $(el) ))
OUT=/tmp/o/e2e LAYERS=36 BATCHES=32 STAGE_SCALE=3 NORESERVE=1 BUDGET=$L ONLY="${ONLY:-bw dense_fp8 spense_fp8}" bash benchmarks/run_e2e.sh > /tmp/o/e2e_run.txt 2>&1; echo "e2e rc=$? at $(el) s" >> /tmp/o/gpu.txt
rm -f /tmp/o/*/*.png
tar czf $OUT/out.tgz -C /tmp/o .
cat /tmp/o/gpu.txt; grep -v skipped /tmp/o/e2e/stages.txt
python3 -c "
import json
for l in open('/tmp/o/e2e/rows.jsonl'):
    r=json.loads(l); print(r.get('variant'), r.get('batch'), round(r.get('step_ms',0),4), r.get('peak_mem_bytes'))
"
