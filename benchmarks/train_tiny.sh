#!/usr/bin/env bash
# Train the shipped selva-tiny model (stages 0, 1, 2) on synthetic scenes, CPU only.
#   benchmarks/train_tiny.sh [OUT] [RECIPE FLAGS]   (default OUT=runs/tiny; re-running resumes from the checkpoints)
# Then: cp OUT/selective.safetensors models/weights/selva-tiny.safetensors
# The benchmark's no-[SUP] row: benchmarks/train_tiny.sh OUT --ablation (after the above it trains only the ablation)
# Threads: 2 on a quiet 2-core machine (1.8x faster than 1, measured). On a shared, oversubscribed machine
# use THREADS=1: there two OpenMP threads ran 13x slower (every small op waits for a descheduled thread).
set -euo pipefail
OUT="${1:-runs/tiny}"
export OMP_NUM_THREADS="${THREADS:-2}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "${PYTHON:-python}" -m otio_foley.training.tiny_recipe --out "$OUT" "${@:2}"
