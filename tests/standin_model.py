"""A tiny deterministic FoleyModel for render tests (test-only, never shipped).

Each prompt gives a tone whose pitch follows a hash of its text and whose loudness follows the mean
brightness of the frames, so tests can tell sources and pictures apart in the written stems. It counts
its `generate` calls and prompts, and can be told to fail on a prompt or to stall (for kill tests).
"""
from __future__ import annotations

import hashlib
import time
from typing import Sequence

import torch

from otio_foley.models.pipeline import Prompt


def prompt_pitch(text: str) -> float:
    """200..1000 Hz from the prompt text."""
    return 200.0 + int(hashlib.sha256(text.encode()).hexdigest()[:6], 16) % 800


class StandInModel:
    name = "standin"
    checksum = "standin0"
    sample_rate = 16000
    fps = 25.0
    frame_size = 32
    window_seconds = 2.0  # small, so a 2.4 s clip needs two overlapping windows
    min_seconds = 0.4
    device = torch.device("cpu")

    def __init__(self, *, fail_on: str | None = None, stall_on: str | None = None) -> None:
        self.calls: list[tuple[int, float, int]] = []  # (prompts, duration, frames or -1) per call
        self.fail_on, self.stall_on = fail_on, stall_on

    def generate(self, frames: torch.Tensor | None, prompts: Sequence[Prompt], *, duration: float,
                 steps: int = 25, cfg: float = 4.5) -> torch.Tensor:
        expected = int(self.fps * duration + 1e-6)
        if frames is not None:
            assert frames.shape == (expected, 3, self.frame_size, self.frame_size), frames.shape
        self.calls.append((len(prompts), duration, -1 if frames is None else len(frames)))
        if self.stall_on and any(self.stall_on in p.text for p in prompts):
            time.sleep(600)
        if self.fail_on and any(self.fail_on in p.text for p in prompts):
            raise RuntimeError(f"stand-in model refuses {self.fail_on!r}")
        n = round(duration * self.sample_rate)
        t = torch.arange(n, dtype=torch.float64) / self.sample_rate
        level = 0.3 if frames is None else 0.1 + 0.4 * float(frames.mean() + 1) / 2
        return torch.stack([(level * torch.sin(2 * torch.pi * prompt_pitch(p.text) * t)).float()
                            for p in prompts])
