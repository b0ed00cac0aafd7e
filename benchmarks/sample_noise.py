"""How much of its starting noise does a tiny generator's sample keep? Steady sounds should come out steady.

    OMP_NUM_THREADS=2 python benchmarks/sample_noise.py [WEIGHTS ...] [--per-class 4] [--cfg 4.5]

Held-out single-source clips (the clip's own caption, no negative prompt). For each output, the sampler's
normalised latents before the audio decoder are split into a slow part (a moving mean over 5 latent frames, 80 ms)
and the fine detail left over. Per class it prints the fine detail's size (standard deviation, in units of the
latents' per-bin training spread) in the outputs and in the targets' own latents, and the correlation of the
outputs' fine detail with the fine detail of the starting noise the sample was drawn from. A generator whose
outputs carry more fine detail than the targets, correlated with the noise, has left part of its noise in the
sample: in a steady sound (the fan's hum, the kettle's whistle) that is level flutter, which the onset detector
hears as onsets. WEIGHTS default to the shipped selva-tiny.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from otio_foley.models.pipeline import Prompt
from otio_foley.models.tiny import WEIGHTS, load_tiny
from otio_foley.synth.scenes import CLASSES, EVAL_SEED_BASE, make_scene
from otio_foley.training.data import to_float

HELD_OUT_OFFSET = 444_000  # held-out seeds away from the other benchmarks' clips
SLOW_FRAMES = 5  # 80 ms at 62.5 latent frames/s: a 10 ms-scale wobble is fine detail, a 200 ms decay is not


def fine_detail(latents: torch.Tensor, frames: int = SLOW_FRAMES) -> torch.Tensor:
    """(N, C) latents minus their moving mean over `frames` frames (shortened at the edges)."""
    slow = F.avg_pool1d(latents.T[None], frames, 1, frames // 2, count_include_pad=False)[0].T
    return latents - slow


def measure(path: Path, per_class: int, cfg: float) -> dict[str, np.ndarray]:
    """Per class, one row per clip: (output fine detail, target fine detail, correlation with the noise)."""
    model = load_tiny(path)
    rows: dict[str, list[tuple[float, float, float]]] = {kind: [] for kind in CLASSES}
    for i in range(per_class * len(CLASSES)):
        seed, kind = EVAL_SEED_BASE + HELD_OUT_OFFSET + i, CLASSES[i % len(CLASSES)]
        scene = make_scene(seed, size=model.frame_size, duration=model.window_seconds, kinds=[kind])
        (name,) = scene.stems
        frames = to_float(torch.from_numpy(scene.frames))
        prompt = Prompt(text=scene.captions[name], seed=seed)
        output = model.sample_latents([(frames, [prompt])], duration=model.window_seconds, cfg=cfg)[0]
        noise = model.initial_noise([prompt], model.window_seconds)[0]
        target = model.generator.normalize(model.audio_decoder.encode(torch.from_numpy(scene.stems[name])[None]))
        out, start = fine_detail(output), fine_detail(noise)
        n = min(len(out), target.shape[1])
        correlation = float(torch.corrcoef(torch.stack([out.flatten(), start.flatten()]))[0, 1])
        rows[kind].append((float(out[:n].std()), float(fine_detail(target[0])[:n].std()), correlation))
    return {kind: np.array(values) for kind, values in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="*", type=Path, default=[WEIGHTS])
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--cfg", type=float, default=4.5)
    args = parser.parse_args()
    print(f"{args.per_class} held-out clips per class, 25 Euler steps, CFG {args.cfg}; per class: fine detail of "
          "the outputs / of the targets (std, normalised latents), and the outputs' correlation with the noise\n")
    print("| system | " + " | ".join(CLASSES) + " | all |")
    print("|---|" + "---|" * (len(CLASSES) + 1))
    for path in args.weights:
        rows = measure(path, args.per_class, args.cfg)
        cells = [f"{r[:, 0].mean():.2f} / {r[:, 1].mean():.2f}, r {r[:, 2].mean():.2f}" for r in rows.values()]
        every = np.concatenate(list(rows.values()))
        cells.append(f"{every[:, 0].mean():.2f} / {every[:, 1].mean():.2f}, r {every[:, 2].mean():.2f}")
        print(f"| {path} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
