"""Where a side-by-side mix costs a model its timing: onset F1 on the benchmark's inter-class targets, laid out
four ways.

    OMP_NUM_THREADS=2 python benchmarks/mix_cost.py [WEIGHTS ...] [--pairs 64]

Each target clip of the selectivity benchmark's first `--pairs` inter-class pairs (2 s, the tiny model's window)
is shown, with the same caption, negative prompt and seed, as
- alone: at full width, no partner;
- blank: squeezed to half width on its side, beside a mid-grey half;
- still: squeezed, beside the partner's first frame held for the whole clip;
- moving: squeezed, beside the partner as it moves (the benchmark's pair itself).
alone → blank is the cost of the squeeze, blank → still that of a second picture, still → moving that of its
motion. A last line asks whether the partner's timing leaks into the output: of the output's onsets in the moving
layout that miss the target's (±80 ms), how many hit the partner's, against how many hit a control partner's
(another pair's distractor; chance). WEIGHTS default to the shipped selva-tiny.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from otio_foley.evaluation.metrics import onset_f1, onset_matches, onsets
from otio_foley.evaluation.selectivity import Pair, generate_outputs, make_pairs, pair_scenes
from otio_foley.models.tiny import WEIGHTS, TinyConfig, load_tiny
from otio_foley.synth.mixing import side_by_side
from otio_foley.synth.scenes import CLASSES

LAYOUTS = ("alone", "blank", "still", "moving")
GREY = 128


def layouts(pair: Pair, size: int, duration: float) -> dict[str, Pair]:
    """The pair's target in each layout (only the frames differ)."""
    target, distractor, left = pair_scenes(pair.seed, pair.target_kind, pair.distractor_kind, size=size,
                                           duration=duration)
    clip, partner = (torch.from_numpy(s.frames).permute(0, 3, 1, 2) for s in (target, distractor))
    partners = {"blank": torch.full_like(partner, GREY), "still": partner[:1].expand_as(partner),
                "moving": partner}
    frames = {"alone": clip}
    for name, other in partners.items():
        frames[name] = side_by_side(*((clip, other) if left else (other, clip)), 0.5, size)
    return {name: replace(pair, frames=f.contiguous()) for name, f in frames.items()}


def partner_hits(pairs: list[Pair], outputs: list[torch.Tensor]) -> tuple[int, int, int]:
    """(onsets missing the target, of them hitting the partner's, hitting a control partner's)."""
    missed = partner = control = 0
    for i, (pair, output) in enumerate(zip(pairs, outputs)):
        produced, wanted = onsets(output), onsets(pair.target)
        stray = np.array([t for t in produced if not np.any(np.abs(wanted - t) <= 0.08)])
        other = pairs[(i + len(CLASSES) * 3 + 1) % len(pairs)]  # another target class and another partner
        missed += len(stray)
        partner += onset_matches(stray, onsets(pair.distractor))
        control += onset_matches(stray, onsets(other.distractor))
    return missed, partner, control


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="*", type=Path, default=[WEIGHTS])
    parser.add_argument("--pairs", type=int, default=64)
    args = parser.parse_args()
    tiny = TinyConfig()
    pairs = make_pairs(args.pairs, size=tiny.frame_size, duration=tiny.window_seconds, subsets=["inter"])
    laid = [layouts(p, tiny.frame_size, tiny.window_seconds) for p in pairs]
    print(f"| model | layout | onset F1 | onsets out / in targets | matched | {' | '.join(CLASSES)} |")
    print("|---|---|---|---|---|" + "---|" * len(CLASSES))
    for path in args.weights:
        model = load_tiny(path)
        outputs: dict[str, list[torch.Tensor]] = {}
        for name in LAYOUTS:
            shown = [d[name] for d in laid]
            outputs[name] = generate_outputs(model, shown, duration=tiny.window_seconds, steps=25, cfg=4.5)
            produced = [onsets(o) for o in outputs[name]]
            wanted = [onsets(p.target) for p in shown]
            f1 = [onset_f1(a, b) for a, b in zip(produced, wanted)]
            per_class = [[f for f, p in zip(f1, shown) if p.target_kind == c] for c in CLASSES]
            print(f"| {path.name} | {name} | {np.mean(f1):.3f} | {sum(map(len, produced))} / "
                  f"{sum(map(len, wanted))} | {sum(onset_matches(a, b) for a, b in zip(produced, wanted))} | "
                  + " | ".join(f"{np.mean(x):.2f}" if x else "–" for x in per_class) + " |", flush=True)
        missed, partner, control = partner_hits([d["moving"] for d in laid], outputs["moving"])
        print(f"{path.name}, moving: {missed} onsets miss the target's; {partner} of them hit the partner's, "
              f"{control} a control partner's", flush=True)
    print(f"{args.pairs} held-out inter-class pairs, 25 Euler steps, CFG 4.5, the distractor's caption as the "
          f"negative prompt in every layout; onset F1 at ±80 ms, 0-1 per clip, averaged")


if __name__ == "__main__":
    main()
