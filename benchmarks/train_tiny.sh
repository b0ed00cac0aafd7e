#!/usr/bin/env bash
# Train the shipped selva-tiny model (stages 0, 1, 2 and the no-[SUP] ablation) on synthetic scenes, CPU only.
#   benchmarks/train_tiny.sh [OUT]     (default OUT=runs/tiny; re-running resumes from the checkpoints there)
# Then: cp OUT/selective.safetensors models/weights/selva-tiny.safetensors (fp16 export: see models/cards).
# One thread on purpose: on a shared, oversubscribed 2-core machine two OpenMP threads ran the same steps
# 13x slower (14 s vs 1.04 s per stage-0 step, measured), since every small op waits at a barrier for a
# descheduled thread.
set -euo pipefail
OUT="${1:-runs/tiny}"
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "${PYTHON:-python}" -m otio_foley.training.tiny_recipe --out "$OUT"
