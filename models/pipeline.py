"""The contract between the render code and any Foley model (official SelVA, MMAudio, built-in tiny).

The render code only sees `FoleyModel`: it decodes frames at `fps` and `frame_size`, then asks for
audio. Concrete pipelines (composing text encoders, video encoder, generator, sampler, audio decoder)
implement it; `otio_foley.models.registry.load_model` builds one by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import torch


@dataclass(frozen=True)
class Prompt:
    """One source to sonify in a clip. `onscreen=False` = text-only generation (null video features)."""

    text: str
    negative: str = ""
    seed: int = 42
    onscreen: bool = True


class FoleyModel(Protocol):
    name: str  # registry name, e.g. "selva-s16k" or "selva-tiny"
    checksum: str  # identity of the weights (sha256 prefix), part of every cache key
    sample_rate: int  # native output rate of `generate`
    fps: float  # frame rate the video encoder expects (25)
    frame_size: int  # frames are square, frame_size x frame_size, RGB in [-1, 1]
    window_seconds: float  # the duration the model was trained on (8.0 for SelVA)
    min_seconds: float  # shortest duration it can generate (one sync segment)
    device: torch.device

    def generate(
        self,
        frames: torch.Tensor | None,
        prompts: Sequence[Prompt],
        *,
        duration: float,
        steps: int = 25,
        cfg: float = 4.5,
    ) -> torch.Tensor:
        """Audio for every prompt of one clip: (K, round(duration * sample_rate)) float32 on CPU.

        `frames` is (T, 3, frame_size, frame_size) in [-1, 1] at `fps` with T = int(fps * duration)
        (None when every prompt is offscreen). The video trunk runs once for all K prompts.
        """
        ...
