# Sourced by the Gemma-3-270M device scripts (run_g270_ctx_ab.sh, run_g270_repeat.sh), as `. benchmarks/g270_setup.sh
# <default folder>`: the environment, el (seconds since the start), the output folder W=$OUT/${LETTER:-<default>}
# with the calling script and this file in its command.sh, the mma.sp extension built in the background (its rc and time
# in times.txt; the first process, dense, does not need it), gpu.txt with the commit, and the random bf16 weights in
# /tmp/g270 (benchmarks/g270_weights.py, from the carried .carry/g270/config.json).
export PYTHONPATH=src TORCH_EXTENSIONS_DIR=/tmp/spense_ext PYTHONUNBUFFERED=1
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
W=$OUT/${LETTER:-$1}; mkdir -p "$W"; cat "$0" "${BASH_SOURCE[0]}" > "$W/command.sh"
(timeout 300 python -c "from spense.runtime import mmasp; mmasp.load_extension()" > "$W/build.log" 2>&1; \
 echo "extension rc=$? at $(el) s" >> "$W/times.txt") &
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > "$W/gpu.txt" 2>&1
echo "commit ${SPENSE_COMMIT:-unknown}" >> "$W/gpu.txt"
python3 benchmarks/g270_weights.py .carry/g270 /tmp/g270 > /dev/null 2>&1
