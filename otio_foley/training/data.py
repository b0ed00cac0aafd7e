"""Where training batches come from: an in-memory clip bank, or any dataset of (frames, audio, caption).

A source is asked for a batch with a generator (`sample(generator, batch_size)`), so the batch of every
step is a pure function of (seed, step) and resumed runs see exactly the batches they would have seen.
Audio becomes latents through a `latent_fn(waveform (B, n)) -> (B, N, latent_dim)` of the audio back-end
(the tiny model's mel codec, or a VAE encoder's sample for the real back-end).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch
from torch.utils.data import Dataset

LatentFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Batch:
    """Training clips (the mixing augmentation pairs item i with item B-1-i, as the official collate)."""

    frames: torch.Tensor  # (B, T, 3, H, W) float in [-1, 1] at 25 fps
    latents: torch.Tensor  # (B, N, latent_dim), un-normalised
    captions: list[str]
    features: torch.Tensor | None = None  # (B, tokens, dim): a frozen plain encoder's features, when cached


class BatchSource(Protocol):
    def sample(self, generator: torch.Generator, batch_size: int) -> Batch: ...


def to_float(frames_u8: torch.Tensor) -> torch.Tensor:
    """(…, H, W, 3) uint8 -> (…, 3, H, W) float in [-1, 1] (mean = std = 0.5 as Synchformer expects)."""
    return frames_u8.movedim(-1, -3).float().div(127.5).sub(1.0)


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """(…, 3, H, W) float in [-1, 1] -> (…, H, W, 3) uint8, a quarter of the memory for the bank."""
    return frames.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).movedim(-3, -1)


def _pick(generator: torch.Generator, n: int, batch_size: int) -> torch.Tensor:
    """Random clip indices, without repeats when the data allows (so no clip is mixed with itself)."""
    if batch_size <= n:
        return torch.randperm(n, generator=generator)[:batch_size]
    return torch.randint(n, (batch_size,), generator=generator)


class ClipBank:
    """All clips held in memory as uint8 frames plus precomputed latents: fast steps on a CPU. Optionally also
    the features of a frozen video encoder (`with_features`), so stages that only read them skip the encoder."""

    def __init__(self, frames_u8: torch.Tensor, latents: torch.Tensor, captions: Sequence[str],
                 features: torch.Tensor | None = None) -> None:
        if not (len(frames_u8) == len(latents) == len(captions)) or len(captions) < 2:
            raise ValueError("a clip bank needs at least two clips and one latent and caption per clip")
        if features is not None and len(features) != len(captions):
            raise ValueError("a clip bank's features need one entry per clip")
        self.frames_u8, self.latents, self.captions, self.features = frames_u8, latents, list(captions), features

    def __len__(self) -> int:
        return len(self.captions)

    @classmethod
    def from_dataset(cls, dataset: Dataset, latent_fn: LatentFn, batch_size: int = 32) -> "ClipBank":
        """Load every item {frames (T, 3, S, S) in [-1, 1], audio (n,), caption} and encode its audio once."""
        frames, latents, captions = [], [], []
        for start in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(start, min(len(dataset), start + batch_size))]
            frames += [to_uint8(item["frames"]) for item in items]
            with torch.no_grad():
                latents.append(latent_fn(torch.stack([torch.as_tensor(item["audio"]) for item in items])))
            captions += [item["caption"] for item in items]
        return cls(torch.stack(frames), torch.cat(latents), captions)

    @torch.no_grad()
    def with_features(self, encoder: Callable[[torch.Tensor], torch.Tensor], chunk: int = 32) -> "ClipBank":
        """The same clips with `encoder(frames (B, T, 3, H, W) in [-1, 1])` of each one cached (the encoder must
        stay frozen while the bank is used: the cache is never refreshed)."""
        features = torch.cat([encoder(to_float(self.frames_u8[i:i + chunk])) for i in range(0, len(self), chunk)])
        return ClipBank(self.frames_u8, self.latents, self.captions, features)

    def sample(self, generator: torch.Generator, batch_size: int) -> Batch:
        index = _pick(generator, len(self), batch_size)
        return Batch(frames=to_float(self.frames_u8[index]), latents=self.latents[index],
                     captions=[self.captions[i] for i in index.tolist()],
                     features=None if self.features is None else self.features[index])


class DatasetSource:
    """Reads items from a dataset at every step (real data too large to hold in memory)."""

    def __init__(self, dataset: Dataset, latent_fn: LatentFn) -> None:
        if len(dataset) < 2:
            raise ValueError("training needs at least two clips (mixing pairs them)")
        self.dataset, self.latent_fn = dataset, latent_fn

    def sample(self, generator: torch.Generator, batch_size: int) -> Batch:
        items = [self.dataset[i] for i in _pick(generator, len(self.dataset), batch_size).tolist()]
        with torch.no_grad():
            latents = self.latent_fn(torch.stack([torch.as_tensor(item["audio"]) for item in items]))
        return Batch(frames=torch.stack([item["frames"] for item in items]), latents=latents,
                     captions=[item["caption"] for item in items])
