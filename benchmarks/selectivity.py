"""Selectivity benchmark and its tools. Prints what it measured and how.

    python benchmarks/selectivity.py scenes                 # scene generation speed (CPU seconds per clip)
    python benchmarks/selectivity.py classifier [--write]   # retrain the judge, held-out accuracy, ship it
    python benchmarks/selectivity.py run -m selective=selva-tiny -m holistic=PATH -m no-sup=PATH -o out/

`run` is `otio-foley eval` (same options) plus wall-clock timing per system.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from otio_foley.evaluation.classifier import LABELS, WEIGHTS, ClassifierConfig, save_classifier, train_classifier
from otio_foley.synth.scenes import CLASSES, EVAL_SEED_BASE, make_scene


def scenes(count: int, size: int, duration: float) -> None:
    make_scene(0, size=size, duration=duration)
    start = time.process_time()
    for seed in range(count):
        make_scene(seed, size=size, duration=duration)
    spent = time.process_time() - start
    print(f"{count} scenes of {duration} s at {size}x{size}, 25 fps, 16 kHz: {spent / count * 1000:.1f} CPU ms each, "
          f"{count / spent:.1f} clips per CPU second (torch threads {torch.get_num_threads()})")


def classifier(write: bool, per_class: int) -> None:
    start = time.process_time()
    model = train_classifier(ClassifierConfig(per_class=per_class))
    print(f"trained on {per_class} stems per class + silence (training seeds): "
          f"{time.process_time() - start:.1f} CPU s")
    for duration in (8.0, 2.0):
        kinds = [CLASSES[i % len(CLASSES)] for i in range(20 * len(CLASSES))]
        stems = [next(iter(make_scene(EVAL_SEED_BASE + 20_000 + i, kinds=[k], duration=duration,
                                      video=False).stems.values())) for i, k in enumerate(kinds)]
        predicted = [LABELS[i] for i in model.probabilities(torch.tensor(np.stack(stems))).argmax(-1)]
        per_class = {k: np.mean([p == k for p, t in zip(predicted, kinds) if t == k]) for k in CLASSES}
        total = np.mean([p == k for p, k in zip(predicted, kinds)])
        print(f"held-out {duration} s stems ({len(kinds)}): accuracy {total:.3f}; "
              + ", ".join(f"{k} {v:.2f}" for k, v in per_class.items()))
    if write:
        save_classifier(model)
        print(f"wrote {WEIGHTS}")


def run(argv: list[str]) -> None:
    from otio_foley.cli.evaluate import evaluate

    start = time.perf_counter()
    evaluate.main(argv, prog_name="benchmarks/selectivity.py run", standalone_mode=False)
    print(f"wall time {time.perf_counter() - start:.1f} s", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("scenes")
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--duration", type=float, default=8.0)
    p = sub.add_parser("classifier")
    p.add_argument("--write", action="store_true", help=f"overwrite {WEIGHTS.name}")
    p.add_argument("--per-class", type=int, default=ClassifierConfig.per_class)
    sub.add_parser("run", add_help=False)
    args, rest = parser.parse_known_args()
    if args.command == "scenes":
        scenes(args.count, args.size, args.duration)
    elif args.command == "classifier":
        classifier(args.write, args.per_class)
    else:
        run(rest)


if __name__ == "__main__":
    main()
