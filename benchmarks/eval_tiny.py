"""Selectivity of the tiny models a training run produced: selective vs holistic baseline vs no-[SUP] ablation.

    OMP_NUM_THREADS=1 python benchmarks/eval_tiny.py RUN_DIR [--pairs 16] [--steps 25] [-o RUN_DIR/eval]

Loads RUN_DIR/{selective,holistic,no_sup}.safetensors (those present) with `load_tiny`, runs the synthetic
VGG-MonoAudio-style benchmark (otio_foley.evaluation.selectivity: held-out side-by-side pairs, target
caption, distractor caption as negative prompt) at the models' training window (2 s), and prints the table
plus the wall time per system.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from otio_foley.evaluation.selectivity import run_benchmark
from otio_foley.models.tiny import load_tiny

SYSTEMS = {"selective (selva-tiny)": "selective.safetensors", "holistic (stage 0)": "holistic.safetensors",
           "no [SUP] (ablation)": "no_sup.safetensors"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--cfg", type=float, default=4.5)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    models = {label: load_tiny(args.run / file, name=label) for label, file in SYSTEMS.items()
              if (args.run / file).exists()}
    window = next(iter(models.values())).window_seconds
    start = time.perf_counter()
    report = run_benchmark(models, pairs_per_subset=args.pairs, duration=window, steps=args.steps, cfg=args.cfg)
    elapsed = time.perf_counter() - start
    report.write(args.output or args.run / "eval")
    print(report.markdown())
    print(f"{len(models)} systems x {2 * args.pairs} pairs, {window} s clips, {args.steps} Euler steps, "
          f"CFG {args.cfg}: {elapsed:.0f} s wall on CPU")


if __name__ == "__main__":
    main()
