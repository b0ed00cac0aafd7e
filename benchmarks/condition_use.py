"""Does a trained tiny generator use its conditions? Held-out flow loss with the true conditions, and with one of
them replaced: the video features shuffled across clips, the video nulled, the text nulled.

    OMP_NUM_THREADS=2 python benchmarks/condition_use.py [WEIGHTS ...] [--clips 32] [--t 0.05]

Near noise (small t) a noisy latent says little about its clip, so only the conditions can lower the loss: a
generator that ignores the video loses nothing when the video is shuffled. Clips are single-source held-out
scenes; a selective file's TextSynch is given each clip's caption. Each figure averages --draws noise draws.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from otio_foley.models.flow_matching import flow_loss, interpolate
from otio_foley.models.mel_codec import MelCodec
from otio_foley.models.synchformer import segment_frames
from otio_foley.models.tiny import WEIGHTS, TinyNetworks, load_networks, text_encoders
from otio_foley.synth.scenes import EVAL_SEED_BASE
from otio_foley.training.data import to_float
from otio_foley.training.tiny_recipe import build_bank

HELD_OUT_OFFSET = 555_000  # held-out seeds away from the other benchmarks' clips


@torch.no_grad()
def losses(networks: TinyNetworks, clips: int, t: float, draws: int) -> dict[str, float]:
    """Mean flow loss at time `t` over held-out clips: true conditions, and each replacement in turn."""
    cfg, gen = networks.cfg, networks.generator
    video_text, generator_text = text_encoders()
    bank = build_bank(clips, (EVAL_SEED_BASE + HELD_OUT_OFFSET) // clips, cfg, MelCodec(cfg.codec))
    segments = segment_frames(to_float(bank.frames_u8))
    sync = (networks.video(segments, *video_text(bank.captions)) if networks.selective
            else networks.video(segments))
    text = gen.fit_text(generator_text(bank.captions)[0])
    clip = gen.null_clip(clips, gen.lengths(cfg.window_seconds).clip)
    x1 = gen.normalize(bank.latents)
    variants = {"true": (sync, text), "video shuffled": (sync.roll(1, 0), text),
                "video nulled": (gen.null_sync(clips, sync.shape[1]), text),
                "text nulled": (sync, gen.null_text(clips))}
    g = torch.Generator().manual_seed(0)
    noises = [torch.randn(x1.shape, generator=g) for _ in range(draws)]
    times = torch.full((clips,), t)

    def loss(sync_f: torch.Tensor, text_f: torch.Tensor) -> float:
        return float(torch.stack([flow_loss(gen(interpolate(x0, x1, times), times, clip, sync_f, text_f), x0, x1)
                                  .mean() for x0 in noises]).mean())

    return {name: loss(*conditions) for name, conditions in variants.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path, nargs="*", default=[WEIGHTS])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--t", type=float, default=0.05)
    parser.add_argument("--draws", type=int, default=4)
    args = parser.parse_args()
    print(f"held-out flow loss at t = {args.t}, {args.clips} single-source clips, {args.draws} noise draws")
    for path in args.weights:
        result = losses(load_networks(path), args.clips, args.t, args.draws)
        changes = [f"{name} {value:.3f} ({value / result['true'] - 1:+.0%})" for name, value in result.items()
                   if name != "true"]
        print(f"{path}: true {result['true']:.3f}, " + ", ".join(changes))


if __name__ == "__main__":
    main()
