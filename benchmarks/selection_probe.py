"""Can a TextSynch pick a source by what its caption names? Two probes on held-out scenes.

    OMP_NUM_THREADS=2 python benchmarks/selection_probe.py HOLISTIC [SELECTIVE ...] [--pairs 48] [--clips 600]

1. Stage 1's error, split. On side-by-side pairs (half width each, random side), each selective file's features
   of the mix minus the teacher's (HOLISTIC's plain encoder) features of the target alone, as a mean square split
   into the clips' means over time (what sounds) and the rest (when), given the target's caption and given the
   distractor's. Inter-class pairs, and intra-class pairs (same class, another colour: only the colour the
   caption names tells them apart). An encoder that selects by colour does clearly worse on intra-class pairs
   with the distractor's caption; the teacher's own features of the mix are the do-nothing reference.
2. Colour in the trunk. Each file's ViT tokens inside the source's box (the patches it overlaps), averaged per
   clip, and a linear probe of the colour (multinomial logistic regression, fitted on 2/3 of the single-source
   clips, scored on the rest; chance 1/10). The cross-attention can only select by what these tokens carry.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from otio_foley.models.synchformer import segment_frames
from otio_foley.models.tiny import TinyNetworks, load_networks, text_encoders
from otio_foley.synth.mixing import side_by_side
from otio_foley.synth.scenes import COLOURS, EVAL_SEED_BASE, make_scene
from otio_foley.training.datasets import frames_to_tensor, pair_scenes

HELD_OUT_OFFSET = 777_000  # held-out seeds away from the other benchmarks' clips


def split_error(features: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Mean square of (features - target), (B, N, D), as (part in the clips' means over N, within-clip part)."""
    error = features - target
    mean = error.mean(1, keepdim=True)
    return float(mean.pow(2).mean()), float((error - mean).pow(2).mean())


@torch.no_grad()
def stage1_split(teacher: TinyNetworks, students: dict[str, TinyNetworks], pairs: int) -> None:
    cfg, (video_text, _) = teacher.cfg, text_encoders()
    for intra in (False, True):
        rng = np.random.default_rng(intra)
        alone, mixes, captions, negatives = [], [], [], []
        for i in range(pairs):
            target, distractor = pair_scenes(EVAL_SEED_BASE + HELD_OUT_OFFSET + i, rng, intra=intra,
                                             size=cfg.frame_size, duration=cfg.window_seconds)
            (t_name,), (d_name,) = target.stems, distractor.stems
            t_frames, d_frames = frames_to_tensor(target.frames), frames_to_tensor(distractor.frames)
            left = rng.random() < 0.5
            pair = (t_frames, d_frames) if left else (d_frames, t_frames)
            alone.append(t_frames)
            mixes.append(side_by_side(*pair, 0.5, cfg.frame_size))
            captions.append(target.captions[t_name])
            negatives.append(distractor.captions[d_name])
        alone, mixes = segment_frames(torch.stack(alone)), segment_frames(torch.stack(mixes))
        reference = teacher.video(alone)
        within_var = float((reference - reference.mean(1, keepdim=True)).pow(2).mean())
        means = reference.mean(1)
        print(f"{'intra' if intra else 'inter'}-class, {pairs} pairs: teacher variance between clip means "
              f"{float((means - means.mean(0)).pow(2).mean()):.4f}, within clips {within_var:.4f}")
        print("  error (clip mean / within clip)     target caption     distractor's caption")
        print(f"  {'teacher on the mix':34s} {'%.4f / %.4f' % split_error(teacher.video(mixes), reference):18s}")
        for label, student in students.items():
            right = split_error(student.video(mixes, *video_text(captions)), reference)
            wrong = split_error(student.video(mixes, *video_text(negatives)), reference)
            print(f"  {label:34s} {'%.4f / %.4f' % right:18s} {'%.4f / %.4f' % wrong}")


def box_tokens(tokens: torch.Tensor, box: tuple[int, int, int, int], patch: int) -> torch.Tensor:
    """Trunk tokens (S, t, h·w, D) of one clip → (D,) mean over the patches the (top, left, height, width) box
    overlaps, all times."""
    side = int(tokens.shape[2] ** 0.5)
    top, left, height, width = box
    inside = torch.zeros(side, side, dtype=torch.bool)
    inside[top // patch:-(-(top + height) // patch), left // patch:-(-(left + width) // patch)] = True
    return tokens[:, :, inside.flatten()].mean((0, 1, 2))


def linear_probe(x: torch.Tensor, y: torch.Tensor, fit: int, classes: int) -> float:
    """Multinomial logistic regression (standardised inputs, small L2, L-BFGS) on the first `fit` rows; the
    accuracy on the rest."""
    mu, sd = x[:fit].mean(0), x[:fit].std(0).clamp_min(1e-6)
    x = (x - mu) / sd
    layer = torch.nn.Linear(x.shape[1], classes)
    optimiser = torch.optim.LBFGS(layer.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(x[:fit]), y[:fit]) + 1e-3 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return float((layer(x[fit:]).argmax(1) == y[fit:]).float().mean())


def trunk_weights(networks: TinyNetworks) -> dict[str, torch.Tensor]:
    """The ViT trunk's weights (the spatial pooling, which stage 1 tunes, is not part of it)."""
    return {k: v for k, v in networks.video.vfeat_extractor.state_dict().items()
            if not k.startswith("spatial_attn_agg.")}


def distinct_trunks(files: dict[str, TinyNetworks]) -> dict[str, TinyNetworks]:
    """One file per distinct trunk: stage 1 and 2 leave the trunk as stage 0 made it, so a run's files share it."""
    kept: dict[str, tuple[TinyNetworks, dict[str, torch.Tensor]]] = {}
    for label, networks in files.items():
        weights = trunk_weights(networks)
        same = next((other for other, (_, seen) in kept.items()
                     if all(torch.equal(v, seen[k]) for k, v in weights.items())), None)
        if same is None:
            kept[label] = networks, weights
        else:
            print(f"  {label}: the same trunk as {same}")
    return {label: networks for label, (networks, _) in kept.items()}


def colour_probe(files: dict[str, TinyNetworks], clips: int) -> None:
    names = list(COLOURS)
    print(f"colour of the source from the trunk tokens in its box ({clips} clips, chance {1 / len(names):.2f}):")
    files = distinct_trunks(files)
    features: dict[str, list[torch.Tensor]] = {label: [] for label in files}
    colours = []
    cfg = next(iter(files.values())).cfg
    for i in range(clips):
        scene = make_scene(EVAL_SEED_BASE + HELD_OUT_OFFSET + 50_000 + i, size=cfg.frame_size,
                           duration=cfg.window_seconds)
        (name,) = scene.stems
        colours.append(names.index(scene.colours[name]))
        segments = segment_frames(frames_to_tensor(scene.frames)[None])
        for label, networks in files.items():
            with torch.no_grad():
                trunk = networks.video.vfeat_extractor.encode_segments(segments, 8)[0]
            features[label].append(box_tokens(trunk, scene.boxes[name], networks.cfg.video_patch))
    y = torch.tensor(colours)
    for label, rows in features.items():
        print(f"  {label:34s} {linear_probe(torch.stack(rows), y, 2 * clips // 3, len(names)):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("holistic", type=Path, help="the teacher: a run's holistic.safetensors")
    parser.add_argument("selective", type=Path, nargs="*", help="TextSynch weights files to compare")
    parser.add_argument("--pairs", type=int, default=48, help="pairs per subset")
    parser.add_argument("--clips", type=int, default=600, help="single-source clips for the colour probe")
    args = parser.parse_args()
    torch.manual_seed(0)
    teacher = load_networks(args.holistic)
    students = {f"{path.parent.name}/{path.name}": load_networks(path) for path in args.selective}
    stage1_split(teacher, students, args.pairs)
    colour_probe({f"{args.holistic.parent.name}/{args.holistic.name}": teacher, **students}, args.clips)


if __name__ == "__main__":
    main()
