#!/usr/bin/env bash
# Issue 24's GPU rows, one device call after scripts/gpu-build.sh (or with
# it: `bash scripts/gpu-build.sh && bash scripts/gpu-quant.sh`): the
# Wan2.1-14B transformer alone at 832x480x81 on random weights, bf16 and
# fp8 resident, Q8_0 and Q4_K resident, and each with --offload blocks:
# peak GPU memory (nvidia-smi, above idle) and seconds per pass, one process
# per row. Writes bench/results/gpu-quant-*.json and prints the table.
#   scripts/gpu-quant.sh [WxHxF] [passes]
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
size=${1:-832x480x81}
passes=${2:-1}
IFS=x read -r w h f <<<"$size"
model=wan2.1-t2v-14b
status=0
for offload in "" --offload; do
  for enc in bfloat16 F8_E4M3 Q8_0 Q4_K; do
    args=(--dtype bfloat16)
    [ "$enc" = bfloat16 ] || args+=(--weights "$enc")
    tag=quant-$enc${offload:+-offload}
    KINO_BENCH_TAG=$tag scripts/bench-gpu.sh "$model" --width "$w" --height "$h" --frames "$f" \
      --dit-step-bench "$passes" "${args[@]}" $offload >/dev/null || { echo "FAILED: $tag"; status=1; }
  done
done
python3 - "$model" <<'PY'
import json, sys, glob, os
model = sys.argv[1]
rows = []
for path in sorted(glob.glob(f"bench/results/gpu-{model}-quant-*.json")):
    r = json.load(open(path))
    d = r["dit_step"]
    rows.append((d["weights"], d["weight_gb"], r.get("peak_gpu_mem_gb"), d["s_per_pass"]))
ref = next((s for w, _, _, s in rows if w == "bfloat16"), None)
print(f"Wan2.1-14B transformer, {r['width']}x{r['height']}x{r['frames']} ({d['tokens']} tokens), {r['device']}")
print("| weights | weights GB | peak GPU GB | s per pass | vs bf16 resident |")
print("|---|---|---|---|---|")
for w, gb, peak, s in rows:
    print(f"| {w} | {gb:.2f} | {peak} | {s:.2f} | {s / ref:.2f} |" if ref else f"| {w} | {gb:.2f} | {peak} | {s:.2f} | |")
PY
exit $status
