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
# The shipped file's bytes on other x86-64 CPUs: torch (ATen), MKL, oneDNN and numpy's OpenBLAS pick their SIMD
# kernels at run time, and AVX-512 kernels round differently from the AVX2 ones of the Zen 3 machine that trained it.
# Pinned to AVX2, a Zen 4 machine reproduced its tensors; unpinned, it trained a different model (the model card,
# "How it was trained"; Intel CPUs untested). OpenBLAS alone changes the clip bank. `otio-foley train tiny` runs unpinned.
export ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell
exec "${PYTHON:-python}" -m otio_foley.training.tiny_recipe --out "$OUT" "${@:2}"
