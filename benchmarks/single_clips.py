"""Which classes can a model make at all? Each class with its source alone in the picture, no distractor.

    OMP_NUM_THREADS=2 python benchmarks/single_clips.py [WEIGHTS ...] [--per-class 8] [--cfg 4.5]

Held-out single-source scenes (full width, the clip's own caption, no negative prompt), scored as the selectivity
benchmark scores its pairs: the classifier's class (and what it heard instead) and onset F1 per target class. A
class that fails here fails in every pair too, whatever the selection does; a class that passes here and fails in
pairs is a selection problem. WEIGHTS default to the shipped selva-tiny; a holistic file runs as its baseline.
A second table splits onset F1 into precision (the output's onsets that match one of the target's within ±80 ms)
and recall (the target's onsets that the output matches), pooled over each class's clips: a model that adds
onsets of its own loses precision, one that misses them loses recall.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from otio_foley.evaluation.classifier import load_classifier
from otio_foley.evaluation.metrics import onset_matches, onsets
from otio_foley.evaluation.selectivity import Pair, Report, generate_outputs, score_outputs
from otio_foley.models.tiny import WEIGHTS, load_tiny
from otio_foley.synth.scenes import CLASSES, EVAL_SEED_BASE, make_scene

HELD_OUT_OFFSET = 888_000  # held-out seeds away from the other benchmarks' clips


def single_clips(per_class: int, size: int, duration: float) -> list[Pair]:
    """`per_class` held-out clips of every class, as pairs whose distractor is silence."""
    clips = []
    for i in range(per_class * len(CLASSES)):
        seed, kind = EVAL_SEED_BASE + HELD_OUT_OFFSET + i, CLASSES[i % len(CLASSES)]
        scene = make_scene(seed, size=size, duration=duration, kinds=[kind])
        (name,) = scene.stems
        stem = torch.from_numpy(scene.stems[name])
        clips.append(Pair(f"single_{i:04d}", "single", torch.from_numpy(scene.frames).permute(0, 3, 1, 2),
                          scene.captions[name], "", kind, kind, stem, torch.zeros_like(stem), True, seed))
    return clips


def onset_counts(clips: list[Pair], outputs: list[torch.Tensor]) -> dict[str, np.ndarray]:
    """Per class, summed over its clips: (onsets in the output, onsets in the target, matched pairs)."""
    counts = {kind: np.zeros(3) for kind in CLASSES}
    for clip, output in zip(clips, outputs):
        found, wanted = onsets(output), onsets(clip.target)
        counts[clip.target_kind] += (len(found), len(wanted), onset_matches(found, wanted))
    return counts


def precision_recall_cell(found: float, wanted: float, matched: float) -> str:
    precision = f"{matched / found:.2f}" if found else "-"
    recall = f"{matched / wanted:.2f}" if wanted else "-"
    return f"{precision} / {recall} ({found:.0f} for {wanted:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="*", type=Path, default=[WEIGHTS])
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--cfg", type=float, default=4.5)
    args = parser.parse_args()
    classifier, results, rows = load_classifier(), [], []
    for path in args.weights:
        model = load_tiny(path)
        clips = single_clips(args.per_class, model.frame_size, args.duration)
        outputs = generate_outputs(model, clips, duration=args.duration, steps=25, cfg=args.cfg, negative=False)
        result = score_outputs(str(path), clips, outputs, classifier)
        results.append(result)
        counts = onset_counts(clips, outputs)
        rows.append(f"| {path} | " + " | ".join(precision_recall_cell(*counts[kind]) for kind in CLASSES) + " |")
        scores = result.pairs
        print(f"{path}: accuracy {np.mean([s.predicted == s.target_kind for s in scores]):.3f}, "
              f"onset F1 {np.mean([s.onset_f1 for s in scores]):.3f} over {len(scores)} clips")
    protocol = {"description": "single-source held-out clips", "pairs_per_subset": args.per_class * len(CLASSES),
                "duration": args.duration, "steps": 25, "cfg": args.cfg, "negative": False}
    print()
    print(Report(protocol, results).per_class_markdown(), end="")
    print("\nOnset precision / recall (onsets in the outputs for onsets in the targets), pooled per class:\n")
    print("| system | " + " | ".join(CLASSES) + " |")
    print("|---|" + "---|" * len(CLASSES))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
