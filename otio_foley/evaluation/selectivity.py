"""The VGG-MonoAudio protocol on held-out synthetic scenes: two single-source clips side by side, one caption.

Each pair shows a target clip and a distractor clip at half width each (the target on a seeded random side),
rendered from evaluation seeds with the held-out caption phrasings. Inter-class pairs differ in class; intra-class
pairs share the class and differ in colour, which the caption names. A model gets the target's caption (and the
distractor's as the negative prompt, as SelVA's evaluation does) and is scored against the target's stem:

- accuracy: the independent classifier (`classifier.py`) puts the output in the target's class;
- leakage: share of the output's energy explained by the distractor's stem (`metrics.leakage`);
- onset F1 (±80 ms) and envelope correlation against the target stem;
- FD / KAD: Fréchet and kernel distances between the outputs' and the target stems' classifier embeddings.

`references=True` adds two calibration rows computed without a model: the target's own stem (the best
possible scores) and the distractor's stem (a model that picked the wrong side).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from otio_foley.evaluation.classifier import LABELS, SoundClassifier, load_classifier
from otio_foley.evaluation.features import SAMPLE_RATE
from otio_foley.evaluation.metrics import (envelope_correlation, frechet_distance, kernel_distance, leakage,
                                           onset_f1, onsets)
from otio_foley.models.pipeline import FoleyModel, Prompt
from otio_foley.synth.mixing import side_by_side
from otio_foley.synth.scenes import CLASSES, COLOURS, EVAL_SEED_BASE, FPS, Scene, make_scene

SUBSETS = ("inter", "intra")
PAIR_SEED_BASE = EVAL_SEED_BASE + 500_000_000  # inside the held-out split, apart from other evaluation uses
METRICS = ("accuracy", "leakage", "onset_f1", "envelope_corr", "fd", "kad")
HIGHER_IS_BETTER = {"accuracy": True, "leakage": False, "onset_f1": True, "envelope_corr": True, "fd": False,
                    "kad": False, "fd_mel": False, "kad_mel": False}


@dataclass(frozen=True)
class Pair:
    name: str
    subset: str
    frames: torch.Tensor  # (T, 3, S, S) uint8, target and distractor side by side
    caption: str
    negative: str
    target_kind: str
    distractor_kind: str
    target: torch.Tensor  # (n,) 16 kHz ground-truth stem of the target
    distractor: torch.Tensor
    target_left: bool
    seed: int


def _kinds(subset: str, index: int) -> tuple[str, str]:
    """Balanced classes: targets cycle through every class; inter-class distractors through every other one."""
    kind = CLASSES[index % len(CLASSES)]
    if subset == "intra":
        return kind, kind
    offset = 1 + (index // len(CLASSES)) % (len(CLASSES) - 1)
    return kind, CLASSES[(CLASSES.index(kind) + offset) % len(CLASSES)]


def pair_scenes(seed: int, kind: str, other: str, *, size: int, duration: float,
                fps: float = FPS) -> tuple[Scene, Scene, bool]:
    """The target and distractor scenes of the pair drawn from `seed`, and whether the target is on the left."""
    rng = np.random.default_rng(seed)
    colour, other_colour = (list(COLOURS)[i] for i in rng.choice(len(COLOURS), 2, replace=False))
    target = make_scene(seed, size=size, duration=duration, fps=fps, kinds=[kind], colours=[colour])
    distractor = make_scene(seed + 1, size=size, duration=duration, fps=fps, kinds=[other], colours=[other_colour])
    return target, distractor, bool(rng.random() < 0.5)


def make_pairs(per_subset: int, *, size: int, duration: float = 8.0, fps: float = FPS,
               subsets: Sequence[str] = SUBSETS) -> list[Pair]:
    """`per_subset` pairs of each subset; the same arguments always give the same pairs, at any `size`."""
    pairs = []
    for s, subset in enumerate(SUBSETS):
        if subset not in subsets:
            continue
        for index in range(per_subset):
            seed = PAIR_SEED_BASE + 2 * (s * 10**6 + index)
            kind, other = _kinds(subset, index)
            target, distractor, left = pair_scenes(seed, kind, other, size=size, duration=duration, fps=fps)
            clips = [torch.from_numpy(x.frames).permute(0, 3, 1, 2) for x in (target, distractor)]
            frames = side_by_side(*(clips if left else clips[::-1]), 0.5, size)
            (t_name,), (d_name,) = target.stems, distractor.stems
            pairs.append(Pair(f"{subset}_{index:04d}", subset, frames, target.captions[t_name],
                              distractor.captions[d_name], kind, other, torch.from_numpy(target.stems[t_name]),
                              torch.from_numpy(distractor.stems[d_name]), left, seed))
    return pairs


@dataclass
class PairScore:
    name: str
    subset: str
    target_kind: str
    predicted: str
    target_probability: float
    leakage: float
    onset_f1: float
    envelope_corr: float


@dataclass
class ModelResult:
    label: str
    kind: str  # "model" or "reference"
    subsets: dict[str, dict[str, float]] = field(default_factory=dict)
    pairs: list[PairScore | dict] = field(default_factory=list)  # dicts where some metrics may be absent


def score_outputs(label: str, pairs: Sequence[Pair], outputs: Sequence[torch.Tensor], classifier: SoundClassifier,
                  *, kind: str = "model") -> ModelResult:
    """All metrics for one system's outputs (16 kHz, one per pair), per pair and per subset."""
    result = ModelResult(label, kind)
    audio = torch.stack([o.float() for o in outputs])
    with torch.no_grad():
        probs = classifier.probabilities(audio)
        embeddings = classifier.embed(audio).numpy()
        references = classifier.embed(torch.stack([p.target for p in pairs])).numpy()
    for pair, output, prob in zip(pairs, outputs, probs):
        result.pairs.append(PairScore(
            pair.name, pair.subset, pair.target_kind, LABELS[int(prob.argmax())],
            float(prob[LABELS.index(pair.target_kind)]), leakage(output, pair.target, pair.distractor),
            onset_f1(onsets(output), onsets(pair.target)), envelope_correlation(output, pair.target)))
    for subset in sorted({p.subset for p in pairs}):
        rows = [i for i, p in enumerate(pairs) if p.subset == subset]
        scores = [result.pairs[i] for i in rows]
        result.subsets[subset] = {
            "pairs": len(rows),
            "accuracy": float(np.mean([s.predicted == s.target_kind for s in scores])),
            "leakage": float(np.mean([s.leakage for s in scores])),
            "onset_f1": float(np.mean([s.onset_f1 for s in scores])),
            "envelope_corr": float(np.mean([s.envelope_corr for s in scores])),
            "fd": frechet_distance(embeddings[rows], references[rows]) if len(rows) > 1 else float("nan"),
            "kad": kernel_distance(embeddings[rows], references[rows]) if len(rows) > 1 else float("nan"),
        }
    return result


def generate_outputs(model: FoleyModel, pairs: Sequence[Pair], *, duration: float, steps: int, cfg: float,
                     negative: bool = True, progress: Callable[[str], None] | None = None) -> list[torch.Tensor]:
    """One `generate` call per pair: frames in [-1, 1], the target caption (+ the distractor's as negative)."""
    outputs = []
    for pair in pairs:
        frames = pair.frames.float().div(127.5).sub(1.0)
        prompt = Prompt(text=pair.caption, negative=pair.negative if negative else "", seed=pair.seed % 2**31)
        audio = model.generate(frames, [prompt], duration=duration, steps=steps, cfg=cfg)[0].float()
        if model.sample_rate != SAMPLE_RATE:
            import torchaudio.functional as AF

            audio = AF.resample(audio, model.sample_rate, SAMPLE_RATE)
        n = pair.target.numel()
        outputs.append(torch.nn.functional.pad(audio[:n], (0, max(0, n - audio.numel()))))
        if progress:
            progress(pair.name)
    return outputs


PAIRED_METRICS = ("accuracy", "leakage", "onset_f1", "envelope_corr")  # the per-pair ones


def pair_values(result: ModelResult, subset: str, metric: str) -> dict[str, float]:
    """Pair name -> `metric` for the pairs of `subset` that have it (accuracy as 1 or 0)."""
    values = {}
    for score in result.pairs:
        row = asdict(score) if isinstance(score, PairScore) else score
        if row["subset"] != subset:
            continue
        if metric == "accuracy" and "predicted" in row:
            values[row["name"]] = float(row["predicted"] == row["target_kind"])
        elif metric != "accuracy" and metric in row:
            values[row["name"]] = float(row[metric])
    return values


def paired_difference(base: ModelResult, other: ModelResult, subset: str,
                      metric: str) -> tuple[float, float, int] | None:
    """Mean of other − base over the pairs both scored, the half-width of its normal 95 % interval, and the pair
    count. Both systems saw the same pairs, so a pair's difficulty cancels: this says whether two rows of the
    table differ by more than the pairs' noise, which their means alone do not."""
    a, b = pair_values(base, subset, metric), pair_values(other, subset, metric)
    diffs = np.array([b[name] - a[name] for name in a if name in b])
    if len(diffs) < 2:
        return None
    return float(diffs.mean()), float(1.96 * diffs.std(ddof=1) / np.sqrt(len(diffs))), len(diffs)


def per_class(result: ModelResult, subset: str) -> dict[str, dict]:
    """Target class -> its pair count, the mean of each per-pair metric the rows have, and the classes the
    classifier heard instead (counts): where a system's misses concentrate, which the subset means hide."""
    rows = [asdict(s) if isinstance(s, PairScore) else s for s in result.pairs]
    kinds = {r["name"]: r["target_kind"] for r in rows if r["subset"] == subset and "target_kind" in r}
    order = {kind: i for i, kind in enumerate(CLASSES)}
    table: dict[str, dict] = {kind: {"pairs": 0, "heard_instead": {}}
                              for kind in sorted(set(kinds.values()), key=lambda k: (order.get(k, len(order)), k))}
    for name, kind in kinds.items():
        table[kind]["pairs"] += 1
    for metric in PAIRED_METRICS:
        values: dict[str, list[float]] = {}
        for name, value in pair_values(result, subset, metric).items():
            if name in kinds:
                values.setdefault(kinds[name], []).append(value)
        for kind, vals in values.items():
            table[kind][metric] = float(np.mean(vals))
    for r in rows:
        if r["name"] in kinds and r.get("predicted", r["target_kind"]) != r["target_kind"]:
            heard = table[r["target_kind"]]["heard_instead"]
            heard[r["predicted"]] = heard.get(r["predicted"], 0) + 1
    return table


NOTES = [
    "accuracy: independent log-mel classifier (8 classes + silence) agrees with the target class; "
    "leakage: distractor's share of the output energy (NNLS fit on 40 ms mel power); onset_f1 at ±80 ms; "
    "envelope_corr: 40 ms RMS envelopes; fd / kad: Fréchet / kernel (×100) distance of classifier "
    "embeddings, outputs vs target stems. fd / kad judge the set (quality), not the choice of source, "
    "and are noisy below ~50 pairs (kad can go negative).",
    "Reference rows (italic) are no model: the target stem itself and the distractor stem.",
]


@dataclass
class Report:
    protocol: dict
    results: list[ModelResult]
    metrics: tuple[str, ...] = METRICS
    notes: list[str] = field(default_factory=lambda: list(NOTES))

    def to_json(self) -> dict:
        return {"protocol": self.protocol, "results": [asdict(r) for r in self.results], "paired": self.paired(),
                "per_class": self.per_class()}

    def per_class(self) -> dict[str, dict[str, dict[str, dict]]]:
        """Each model's `per_class` table: label -> subset -> target class -> figures."""
        return {r.label: {subset: per_class(r, subset) for subset in r.subsets}
                for r in self.results if r.kind == "model"}

    def paired(self) -> dict[str, dict[str, dict[str, tuple[float, float, int]]]]:
        """Every other model against the first one: label -> subset -> metric -> `paired_difference`."""
        models = [r for r in self.results if r.kind == "model"]
        return {other.label: {subset: {m: diff for m in PAIRED_METRICS
                                       if (diff := paired_difference(models[0], other, subset, m)) is not None}
                              for subset in other.subsets}
                for other in models[1:]}

    def markdown(self) -> str:
        """One table like SelVA's Table 1: a row per system, metric columns per subset."""
        subsets = [s for s in SUBSETS if any(s in r.subsets for r in self.results)]
        arrows = {m: "↑" if HIGHER_IS_BETTER[m] else "↓" for m in self.metrics}
        head = ["system"] + [f"{s} {m}{arrows[m]}" for s in subsets for m in self.metrics]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.results:
            label = f"*{r.label}*" if r.kind == "reference" else r.label
            cells = [f"{r.subsets[s][m]:.3f}" if m in r.subsets.get(s, {}) else "–"
                     for s in subsets for m in self.metrics]
            lines.append("| " + " | ".join([label] + cells) + " |")
        p = self.protocol
        setting = (f"{p['description']}: {p['pairs_per_subset']} pairs per subset, {p['duration']} s, "
                   f"{p['steps']} Euler steps, CFG {p['cfg']}, negative prompt = distractor caption: {p['negative']}.")
        return ("\n".join(lines) + "\n\n" + self.paired_markdown() + self.per_class_markdown()
                + "\n".join(f"- {n}" for n in [setting] + self.notes) + "\n")

    def per_class_markdown(self) -> str:
        """Accuracy and onset F1 per target class, one table per subset, with the classes heard instead."""
        tables = self.per_class()
        parts = []
        for subset in dict.fromkeys([*SUBSETS, *(s for t in tables.values() for s in t)]):
            rows = {label: t[subset] for label, t in tables.items() if t.get(subset)}
            kinds = list(dict.fromkeys(k for t in rows.values() for k in t))
            if not rows or not any("accuracy" in c or "onset_f1" in c for t in rows.values() for c in t.values()):
                continue
            lines = [f"Per target class, {subset}: accuracy (the classes heard instead) / onset F1:", "",
                     "| system | " + " | ".join(kinds) + " |", "|" + "---|" * (len(kinds) + 1)]
            for label, table in rows.items():
                lines.append(f"| {label} | " + " | ".join(_class_cell(table.get(k)) for k in kinds) + " |")
            parts.append("\n".join(lines) + "\n\n")
        return "".join(parts)

    def paired_markdown(self) -> str:
        """The paired differences as a second table ("" with fewer than two models)."""
        paired = self.paired()
        if not paired:
            return ""
        first = next(r.label for r in self.results if r.kind == "model")
        columns = sorted({(s, m) for subsets in paired.values() for s, ms in subsets.items() for m in ms},
                         key=lambda c: (c[0], PAIRED_METRICS.index(c[1])))  # inter before intra
        lines = [f"Paired differences, each model minus {first} on the same pairs (mean ± 95 % interval):", "",
                 "| system | " + " | ".join(f"{s} {m}" for s, m in columns) + " |", "|" + "---|" * (len(columns) + 1)]
        for label, subsets in paired.items():
            cells = [f"{d[0]:+.3f} ± {d[1]:.3f}" if (d := subsets.get(s, {}).get(m)) else "–" for s, m in columns]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n\n"

    def write(self, folder: Path) -> tuple[Path, Path]:
        """selectivity.json + selectivity.md in `folder`, each written to a temporary name then renamed."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = (folder / "selectivity.json", folder / "selectivity.md")
        texts = (json.dumps(self.to_json(), indent=1, allow_nan=True), self.markdown())
        for path, text in zip(paths, texts):
            partial = path.with_name(f".{path.name}.partial")
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)
        return paths


def _class_cell(figures: dict | None) -> str:
    """"0.44 (drum 12, rain 3) / 0.534": accuracy with what was heard instead, then onset F1; "–" if absent."""
    if not figures:
        return "–"
    heard = ", ".join(f"{k} {n}" for k, n in sorted(figures["heard_instead"].items(), key=lambda kv: -kv[1]))
    accuracy = f"{figures['accuracy']:.2f}" + (f" ({heard})" if heard else "") if "accuracy" in figures else "–"
    onset = f"{figures['onset_f1']:.3f}" if "onset_f1" in figures else "–"
    return f"{accuracy} / {onset}"


def run_benchmark(models: Mapping[str, FoleyModel], *, pairs_per_subset: int = 16, duration: float = 8.0,
                  steps: int = 25, cfg: float = 4.5, negative: bool = True, references: bool = True,
                  classifier: SoundClassifier | None = None,
                  progress: Callable[[str], None] | None = None) -> Report:
    """Score each model (label -> FoleyModel) on the same pairs, rendered at each model's frame size and fps."""
    classifier = classifier or load_classifier()
    cache: dict[tuple[int, float], list[Pair]] = {}

    def pairs_for(size: int, fps: float) -> list[Pair]:
        if (size, fps) not in cache:
            cache[(size, fps)] = make_pairs(pairs_per_subset, size=size, duration=duration, fps=fps)
        return cache[(size, fps)]

    results = []
    if references:
        pairs = pairs_for(64, FPS)
        results.append(score_outputs("target stem", pairs, [p.target for p in pairs], classifier, kind="reference"))
        results.append(score_outputs("distractor stem", pairs, [p.distractor for p in pairs], classifier,
                                     kind="reference"))
    for label, model in models.items():
        pairs = pairs_for(model.frame_size, model.fps)
        outputs = generate_outputs(model, pairs, duration=duration, steps=steps, cfg=cfg, negative=negative,
                                   progress=progress)
        results.append(score_outputs(label, pairs, outputs, classifier))
    protocol = {"description": "Selectivity on held-out synthetic pairs", "pairs_per_subset": pairs_per_subset,
                "duration": duration, "steps": steps, "cfg": cfg, "negative": negative, "sample_rate": SAMPLE_RATE,
                "pair_seed_base": PAIR_SEED_BASE,
                "models": {label: {"name": m.name, "checksum": m.checksum} for label, m in models.items()}}
    return Report(protocol, results)
