"""SelVA's self-augmentation: show two clips side by side while the audio target stays one clip's sound.

Item i of a batch is paired with item B-1-i. The target clip is squeezed to width int(share * S), the partner
to S - int(share * S) (bicubic, antialiased, height S), and the two are concatenated horizontally. The model
must then use the caption to pick which half to sonify; this is what makes it selective.

The official collate applies (x - 0.5) / 0.5 after mixing even to frames that are already in [-1, 1] (see
the parity notes). We do not: mixed frames stay in the range they came in. `tests/parity_runners/mixing.py`
reproduces both official paths from these functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class MixConfig:
    """How often and how wide. Defaults: a fixed half-and-half split, always mixed, target left (the
    official collate's behaviour with a fixed lambda); `training()` = the recipe used to train selectivity."""

    share: float | None = 0.5  # fixed width share of the target; None = draw from Beta(alpha, alpha)
    alpha: float = 0.0
    eps: float = 0.05  # drawn shares are floored here (a sliver of a clip is useless)
    min_target_share: float = 0.0
    prob: float = 1.0  # chance that an item is mixed at all (the rest stay single clips)
    random_side: bool = False  # put the target on the right half of the time

    def __post_init__(self) -> None:
        if self.share is None and self.alpha <= 0:
            raise ValueError("a drawn share needs alpha > 0")
        if self.share is not None and not 0 < self.share < 1:
            raise ValueError(f"share {self.share} must be inside (0, 1)")

    @classmethod
    def training(cls) -> "MixConfig":
        return cls(share=None, alpha=1.0, min_target_share=0.2, prob=0.75, random_side=True)


def draw_share(config: MixConfig, rng: np.random.Generator) -> float:
    """The target's width share: fixed, or Beta(alpha, alpha) floored at eps and at min_target_share."""
    if config.share is not None:
        return config.share
    value = float(rng.beta(config.alpha, config.alpha))
    return min(max(value, config.eps, config.min_target_share), 1.0 - config.eps)


def _resize(clip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., C, H, W) -> (..., C, height, width), bicubic + antialias, align_corners=False (the official call)."""
    flat = clip.reshape(-1, *clip.shape[-3:])
    resized = F.interpolate(flat, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    return resized.reshape(*clip.shape[:-2], height, width)


def side_by_side(left: torch.Tensor, right: torch.Tensor, left_share: float, size: int) -> torch.Tensor:
    """(..., C, H, W) clips -> (..., C, size, size): left squeezed to int(left_share * size) px, right to the rest.

    uint8 stays uint8 (PyTorch's native rounded uint8 kernel), float stays float.
    """
    width = int(left_share * size)
    return torch.cat([_resize(left, size, width), _resize(right, size, size - width)], dim=-1)


@dataclass(frozen=True)
class Mixed:
    frames: torch.Tensor  # (B, T, C, S, S), same dtype as the input
    share: torch.Tensor  # (B,) target width share, 1.0 where not mixed
    target_left: torch.Tensor  # (B,) bool
    mixed: torch.Tensor  # (B,) bool


def mix_batch(frames: torch.Tensor, config: MixConfig, rng: np.random.Generator, *,
              size: int | None = None) -> Mixed:
    """Mix item i with item B-1-i (item i is the target; its caption and audio stay the labels).

    frames: (B, T, C, H, W) uint8 or float. Each item gets its own share, side and mix decision when the
    config draws them; with fixed settings every item uses the same share and side. `size` (default W)
    is the output side S.
    """
    size = size or frames.shape[-1]
    partners = frames.flip(0)
    out, shares, lefts, mixed = [], [], [], []
    for i in range(frames.shape[0]):
        mix = frames.shape[0] > 1 and (config.prob >= 1 or rng.random() < config.prob)
        left = not config.random_side or rng.random() < 0.5
        if mix:
            share = draw_share(config, rng)
            pair = (frames[i], partners[i]) if left else (partners[i], frames[i])
            out.append(side_by_side(*pair, share if left else 1.0 - share, size))
        else:
            share, left = 1.0, True
            same = frames[i].shape[-2:] == (size, size)
            out.append(frames[i] if same else _resize(frames[i], size, size))
        shares.append(share)
        lefts.append(left)
        mixed.append(mix)
    return Mixed(torch.stack(out), torch.tensor(shares), torch.tensor(lefts), torch.tensor(mixed))
