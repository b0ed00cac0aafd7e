"""The real VGG-MonoAudio benchmark (SelVA): side-by-side videos with the target's audio, per subset folder.

Layout (as published on Hugging Face `jnwnlee/vgg-monoaudio`; see the project's peers-eval notes §4):

    ROOT/inter_class/metadata.csv, ROOT/inter_class/mixed/*.mp4, ROOT/inter_class/target_audio/*.wav
    ROOT/intra_class/...

`metadata.csv` columns used: `file_name` (the mixed video), `label` (the target caption), `target_file` and
`paired_file` (source clip ids). The distractor's label, used as the negative prompt, is the label of the row
whose target is our paired clip, when there is one.

Only weight-free metrics run here: onset F1, envelope correlation, leakage (when the distractor's audio is
also under target_audio/) and Fréchet / kernel distances on log-mel statistics (`fd_mel`, `kad_mel`, not on the
scale of the paper's PANN-based numbers). The paper's other metrics need weights this project cannot ship;
they are listed as skipped in the report.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from otio_foley.errors import UserError
from otio_foley.evaluation.features import SAMPLE_RATE, log_mel_stats
from otio_foley.evaluation.metrics import (envelope_correlation, frechet_distance, kernel_distance, leakage,
                                           onset_f1, onsets)
from otio_foley.evaluation.selectivity import ModelResult, Report
from otio_foley.models.pipeline import FoleyModel, Prompt
from otio_foley.training.datasets import decode_frames, load_audio

SUBSET_FOLDERS = {"inter": "inter_class", "intra": "intra_class"}
METRICS = ("leakage", "onset_f1", "envelope_corr", "fd_mel", "kad_mel")
SKIPPED = {
    "FAD / KAD / IS / KL (PANNs)": "PANNs Cnn14-16k weights (Zenodo 3987831)",
    "CLAP score": "LAION-CLAP or MS-CLAP weights (Hugging Face)",
    "IB score": "ImageBind-huge weights",
    "DeSync": "Synchformer AudioSet weights",
    "class accuracy": "a real-sound classifier (the built-in one knows only the synthetic classes)",
}


@dataclass(frozen=True)
class MonoPair:
    name: str
    subset: str
    video: Path
    caption: str
    negative: str
    target: Path
    distractor: Path | None


def _find_wav(folder: Path, *stems: str) -> Path | None:
    for stem in stems:
        if stem and (folder / f"{stem}.wav").exists():
            return folder / f"{stem}.wav"
    for stem in stems:
        matches = sorted(folder.glob(f"{stem}*.wav")) if stem else []
        if matches:
            return matches[0]
    return None


def read_monoaudio(root: Path, *, limit: int | None = None) -> list[MonoPair]:
    """Pairs of every subset folder present under `root` (UserError naming what is missing)."""
    pairs = []
    for subset, folder_name in SUBSET_FOLDERS.items():
        folder = root / folder_name
        metadata = folder / "metadata.csv"
        if not metadata.exists():
            continue
        with open(metadata, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        missing = {"file_name", "label"} - set(rows[0] if rows else {})
        if missing:
            raise UserError(f"missing columns {sorted(missing)}", path=str(metadata),
                            fix="use the VGG-MonoAudio metadata.csv (file_name, label, target_file, paired_file)")
        labels = {r.get("target_file", ""): r["label"] for r in rows}
        for line, row in enumerate(rows[:limit] if limit else rows, start=2):
            name = Path(row["file_name"]).stem
            video = folder / "mixed" / f"{name}.mp4"
            target = _find_wav(folder / "target_audio", name, row.get("target_file", ""))
            if not video.exists() or target is None:
                raise UserError("video or target audio not found", path=str(metadata), where=f"line {line}",
                                fix=f"expected mixed/{name}.mp4 and target_audio/{name}.wav")
            paired = row.get("paired_file", "")
            pairs.append(MonoPair(f"{subset}_{name}", subset, video, row["label"], labels.get(paired, ""), target,
                                  _find_wav(folder / "target_audio", paired) if paired else None))
    if not pairs:
        raise UserError("no inter_class/metadata.csv or intra_class/metadata.csv", path=str(root),
                        fix="point --monoaudio at the VGG-MonoAudio folder")
    return pairs


def score_monoaudio(label: str, pairs: list[MonoPair], outputs: list[torch.Tensor], targets: list[torch.Tensor],
                    distractors: list[torch.Tensor | None]) -> ModelResult:
    result = ModelResult(label, "model")
    for pair, output, target, distractor in zip(pairs, outputs, targets, distractors):
        row = {"name": pair.name, "subset": pair.subset, "onset_f1": onset_f1(onsets(output), onsets(target)),
               "envelope_corr": envelope_correlation(output, target)}
        if distractor is not None:
            row["leakage"] = leakage(output, target, distractor)
        result.pairs.append(row)
    out_stats = torch.cat([log_mel_stats(o) for o in outputs]).numpy()
    ref_stats = torch.cat([log_mel_stats(t) for t in targets]).numpy()
    for subset in sorted({p.subset for p in pairs}):
        rows = [i for i, p in enumerate(pairs) if p.subset == subset]
        scores = [result.pairs[i] for i in rows]
        summary = {"pairs": len(rows)}
        for metric in ("onset_f1", "envelope_corr", "leakage"):
            values = [s[metric] for s in scores if metric in s]
            if values:
                summary[metric] = float(np.mean(values))
        if len(rows) > 1:
            summary["fd_mel"] = frechet_distance(out_stats[rows], ref_stats[rows])
            summary["kad_mel"] = kernel_distance(out_stats[rows], ref_stats[rows])
        result.subsets[subset] = summary
    return result


def run_monoaudio(models: Mapping[str, FoleyModel], root: Path, *, duration: float = 8.0, steps: int = 25,
                  cfg: float = 4.5, negative: bool = True, limit: int | None = None,
                  progress: Callable[[str], None] | None = None) -> Report:
    pairs = read_monoaudio(root, limit=limit)
    n = int(round(duration * SAMPLE_RATE))
    targets = [load_audio(p.target, 0.0, n) for p in pairs]
    distractors = [load_audio(p.distractor, 0.0, n) if p.distractor else None for p in pairs]
    results = []
    for label, model in models.items():
        outputs = []
        for pair in pairs:
            count = int(model.fps * duration + 1e-6)
            frames = decode_frames(pair.video, 0.0, count, model.fps, model.frame_size, crop=False)
            prompt = Prompt(text=pair.caption, negative=pair.negative if negative else "")
            audio = model.generate(frames, [prompt], duration=duration, steps=steps, cfg=cfg)[0].float()
            if model.sample_rate != SAMPLE_RATE:
                import torchaudio.functional as AF

                audio = AF.resample(audio, model.sample_rate, SAMPLE_RATE)
            outputs.append(torch.nn.functional.pad(audio[:n], (0, max(0, n - audio.numel()))))
            if progress:
                progress(pair.name)
        results.append(score_monoaudio(label, pairs, outputs, targets, distractors))
    protocol = {"description": f"VGG-MonoAudio at {root}", "pairs_per_subset": max(
        sum(p.subset == s for p in pairs) for s in SUBSET_FOLDERS), "duration": duration, "steps": steps,
        "cfg": cfg, "negative": negative, "skipped": SKIPPED,
        "models": {label: {"name": m.name, "checksum": m.checksum} for label, m in models.items()}}
    notes = ["Weight-free metrics only; fd_mel / kad_mel use log-mel statistics, not PANNs, so they are not "
             "comparable with the paper's FAD / KAD. leakage needs the distractor's audio in target_audio/.",
             "Skipped (weights not available here): " + "; ".join(f"{k} (needs {v})" for k, v in SKIPPED.items())]
    return Report(protocol, results, metrics=METRICS, notes=notes)
