"""Small layers shared by the generator and TextSynch: RMSNorm and the SwiGLU MLPs."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """RMSNorm with a learned scale; eps defaults to float32 machine eps as in the official modules."""

    def __init__(self, dim: int, eps: float | None = None) -> None:
        super().__init__()
        self.eps = torch.finfo(torch.float32).eps if eps is None else eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def swiglu_hidden(hidden_dim: int, multiple_of: int = 256) -> int:
    """Hidden width of the SwiGLU MLPs: 2/3 of the nominal width, rounded up to `multiple_of`."""
    hidden = int(2 * hidden_dim / 3)
    return multiple_of * math.ceil(hidden / multiple_of)


class MLP(nn.Module):
    """SwiGLU feed-forward on (B, N, D): w2(silu(w1 x) * w3 x), no biases."""

    def __init__(self, dim: int, hidden_dim: int, multiple_of: int = 256) -> None:
        super().__init__()
        hidden = swiglu_hidden(hidden_dim, multiple_of)
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class ConvMLP(nn.Module):
    """SwiGLU feed-forward with 1-D convolutions over the token axis, on (B, N, D)."""

    def __init__(self, dim: int, hidden_dim: int, kernel_size: int = 3, multiple_of: int = 256) -> None:
        super().__init__()
        hidden = swiglu_hidden(hidden_dim, multiple_of)
        pad = kernel_size // 2
        self.w1 = nn.Conv1d(dim, hidden, kernel_size, padding=pad, bias=False)
        self.w2 = nn.Conv1d(hidden, dim, kernel_size, padding=pad, bias=False)
        self.w3 = nn.Conv1d(dim, hidden, kernel_size, padding=pad, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        return self.w2(F.silu(self.w1(x)) * self.w3(x)).transpose(1, 2)
