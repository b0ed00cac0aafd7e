"""`--device auto|cpu|cuda[:N]|mps`: which torch device a model runs on, decided once, with clear errors.

Precision follows the device (see `SelVAPipeline._precision`): CUDA runs the networks under bf16 autocast
as the official inference does (RoPE, the timestep embedding, text encoders and the Euler state stay fp32);
CPU and MPS run fp32. Initial noise is drawn on the CPU from each prompt's seed, so one seed gives the same
audio on the same device and build.
"""
from __future__ import annotations

import re

import torch

from otio_foley.errors import UserError

_SPEC = re.compile(r"^(auto|cpu|mps|cuda(?::(\d+))?)$")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """`auto` = the first CUDA device, else MPS, else CPU. An unavailable explicit choice is a UserError
    rather than a silent fallback, so a farm never renders on the wrong hardware unnoticed."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    match = _SPEC.match(spec.strip().lower())
    if not match:
        raise UserError(f"unknown device {spec!r}", where="--device", fix="use auto, cpu, cuda, cuda:N or mps")
    name = match.group(1)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise UserError("MPS is not available on this machine", where="--device", fix="use --device cpu")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise UserError("CUDA is not available (no GPU or a CPU-only torch build)", where="--device",
                        fix="use --device cpu")
    index = int(match.group(2) or torch.cuda.current_device())
    if index >= torch.cuda.device_count():
        raise UserError(f"cuda:{index} does not exist ({torch.cuda.device_count()} CUDA device(s))",
                        where="--device", fix=f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return torch.device("cuda", index)
