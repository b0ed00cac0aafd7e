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
from dataclasses import replace
from pathlib import Path

import torch

from otio_foley.evaluation.selectivity import run_benchmark
from otio_foley.models.mel_codec import MelCodec
from otio_foley.models.synchformer import segment_frames
from otio_foley.models.tiny import load_networks, load_tiny, text_encoders
from otio_foley.synth.scenes import EVAL_SEED_BASE
from otio_foley.training.stages import StageConfig, mixed_frames
from otio_foley.training.tiny_recipe import build_bank

SYSTEMS = {"selective (selva-tiny)": "selective.safetensors", "holistic (stage 0)": "holistic.safetensors",
           "no [SUP] (ablation)": "no_sup.safetensors"}


def distillation(run: Path, clips: int = 32) -> None:
    """Stage 1's objective on held-out clips, every one mixed: how far each TextSynch's features of the mix are
    from the teacher's features of the target alone, against doing nothing (the teacher on the mix)."""
    teacher = load_networks(run / "holistic.safetensors").video
    video_text, _ = text_encoders()
    cfg = load_networks(run / "holistic.safetensors").cfg
    bank = build_bank(clips, EVAL_SEED_BASE // clips + 1, cfg, MelCodec(cfg.codec))  # held-out seeds
    g = torch.Generator().manual_seed(0)
    batch = bank.sample(g, clips)
    mixed = segment_frames(mixed_frames(batch.frames, g, replace(StageConfig().mix, prob=1.0)))
    with torch.no_grad():
        target = teacher(segment_frames(batch.frames))
        print(f"stage-1 L2 on {clips} held-out mixes: teacher(mix) {(teacher(mixed) - target).pow(2).mean():.5f}; "
              f"between-clip variance of the teacher features {target.var(0).mean():.5f}")
        for label, file in SYSTEMS.items():
            if file != "holistic.safetensors" and (run / file).exists():
                student = load_networks(run / file).video
                error = (student(mixed, *video_text(batch.captions)) - target).pow(2).mean()
                print(f"  {label}: {error:.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--cfg", type=float, default=4.5)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    if (args.run / "holistic.safetensors").exists():
        distillation(args.run)
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
