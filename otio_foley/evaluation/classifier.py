"""The judge of "which class does this sound belong to": a small MLP on log-mel statistics, trained on clean
synthetic stems (training seeds only), independent of every generator it judges.

It knows the 8 scene classes plus "silence", so a silent output is not scored as some class. Its hidden
layer is the embedding for the FAD/KAD-style distances. The trained weights ship next to this file
(`classifier.safetensors`, ~70 kB); if they are missing they are retrained (deterministic, ~10 s).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from otio_foley.evaluation.features import STATS_DIM, log_mel_stats
from otio_foley.models.checkpoints import write_safetensors
from otio_foley.synth.scenes import CLASSES, make_scene

LABELS: tuple[str, ...] = CLASSES + ("silence",)
WEIGHTS = Path(__file__).with_name("classifier.safetensors")
FEATURES_VERSION = "log-mel-stats-64-v2"  # bump when features.py changes, so stale weights are refused


@dataclass(frozen=True)
class ClassifierConfig:
    hidden: int = 64
    per_class: int = 80  # training stems per class
    clip_seconds: float = 4.0
    steps: int = 400
    seed: int = 0


class SoundClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig = ClassifierConfig()) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(STATS_DIM))
        self.register_buffer("std", torch.ones(STATS_DIM))
        self.hidden = nn.Sequential(nn.Linear(STATS_DIM, config.hidden), nn.ReLU())
        self.head = nn.Linear(config.hidden, len(LABELS))

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, n) 16 kHz audio -> (B, hidden) embeddings."""
        return self.hidden((log_mel_stats(audio) - self.mean) / self.std)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(audio))

    @torch.no_grad()
    def probabilities(self, audio: torch.Tensor) -> torch.Tensor:
        return self(audio).softmax(-1)


def _training_features(config: ClassifierConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Statistics of clean stems of every class from training seeds, cut to random lengths (1.5 s to the
    full clip) at random gains with a little noise, plus near-silence."""
    rng = np.random.default_rng(config.seed)
    n = int(config.clip_seconds * 16_000)
    features, labels = [], []
    for index in range(config.per_class * (len(CLASSES) + 1)):
        kind = LABELS[index % len(LABELS)]
        if kind == "silence":
            clip = rng.normal(0, 10 ** rng.uniform(-7, -4.5), n) * (rng.random() < 0.8)  # below -60 dBFS
        else:
            scene = make_scene(int(rng.integers(10**8)), kinds=[kind], duration=config.clip_seconds, video=False)
            (stem,) = scene.stems.values()
            # Clean stems are digitally silent between events; generated audio has a noise floor: see both.
            clip = stem * rng.uniform(0.05, 1.5) + rng.normal(0, 10 ** rng.uniform(-5, -3), n) * (rng.random() < 0.6)
        length = int(rng.uniform(min(1.5, config.clip_seconds), config.clip_seconds) * 16_000)
        start = int(rng.integers(n - length + 1))
        features.append(log_mel_stats(torch.tensor(clip[start:start + length], dtype=torch.float32)))
        labels.append(LABELS.index(kind))
    return torch.cat(features), torch.tensor(labels)


def train_classifier(config: ClassifierConfig = ClassifierConfig()) -> SoundClassifier:
    """Full-batch Adam on the statistics of freshly made stems; deterministic for a config."""
    torch.manual_seed(config.seed)
    features, labels = _training_features(config)
    model = SoundClassifier(config)
    model.mean.copy_(features.mean(0))
    model.std.copy_(features.std(0).clamp_min(1e-3))
    normalised = (features - model.mean) / model.std
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(config.steps):
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(model.head(model.hidden(normalised)), labels)
        loss.backward()
        optimiser.step()
    return model.eval()


def save_classifier(model: SoundClassifier, path: Path = WEIGHTS) -> None:
    meta = {"labels": json.dumps(LABELS), "features": FEATURES_VERSION, "hidden": str(model.config.hidden),
            "config": json.dumps(model.config.__dict__)}
    write_safetensors(path, model.state_dict(), meta)


@functools.lru_cache(maxsize=1)
def load_classifier(path: Path = WEIGHTS) -> SoundClassifier:
    """The shipped classifier; retrained when the file is absent or made for other labels or features."""
    if path.exists():
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata() or {}
        if json.loads(meta.get("labels", "[]")) == list(LABELS) and meta.get("features") == FEATURES_VERSION:
            model = SoundClassifier(ClassifierConfig(**json.loads(meta["config"])))
            model.load_state_dict(load_file(str(path)))
            return model.eval()
    return train_classifier()
