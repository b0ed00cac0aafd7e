"""Parity for SelVA's video-concatenation collate (`mixup_concat` fixture), both official input paths."""
from __future__ import annotations

import numpy as np
import torch

from otio_foley.synth.mixing import MixConfig, mix_batch


def _official_transform(frames: torch.Tensor) -> torch.Tensor:
    """What the official collate does after concatenating: ÷255 only for uint8, then (x - 0.5) / 0.5 always."""
    x = frames.float() / 255 if frames.dtype == torch.uint8 else frames
    return (x - 0.5) / 0.5


def run(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, torch.Tensor]:
    out = {}
    for case, args in meta["constructor_args"].items():
        u8 = tensors[f"in.{case}.frames_u8"]
        config = MixConfig(share=args["mixup_lambda"], eps=args["eps"], prob=args["prob"])
        size = args["frame_size_constant"]
        rng = np.random.default_rng(0)  # unused: every setting is fixed
        as_float = (u8.float() / 255 - 0.5) / 0.5  # what the released dataset class delivers
        out[f"out.{case}.mixed_from_float"] = _official_transform(mix_batch(as_float, config, rng, size=size).frames)
        if f"out.{case}.mixed_from_uint8" in tensors:
            out[f"out.{case}.mixed_from_uint8"] = _official_transform(mix_batch(u8, config, rng, size=size).frames)
    return out


RUNNERS = {"selva.data.mixup.DataMixupCollate": run}
