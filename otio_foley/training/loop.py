"""The optimisation loop every training stage shares: AdamW, warm-up, clipping, EMA, resumable checkpoints.

A stage supplies a loss function `loss_fn(step, generator) -> scalar` that draws its batch and all of its
randomness (noise, t, dropout, mixing) from the per-step generator it is given. That generator is seeded
from (seed, step), and the global RNG states are saved with the checkpoint, so a run resumed from a
checkpoint continues bit-identically to one that never stopped.
"""
from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

LossFn = Callable[[int, torch.Generator], torch.Tensor]


@dataclass
class LoopConfig:
    """Optimiser and bookkeeping settings (defaults follow the MMAudio/SelVA training config)."""

    steps: int = 1000
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 1e-6
    warmup: int = 100
    decay_at: tuple[float, ...] = (0.8, 0.9)  # fractions of `steps` where the lr drops by `decay_gamma`
    decay_gamma: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 10


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator a loss function draws from at `step`: independent of everything before it."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def learning_rate(cfg: LoopConfig, step: int) -> float:
    """Linear warm-up to `lr`, then step decay at the `decay_at` fractions of the run."""
    scale = min(1.0, (step + 1) / max(1, cfg.warmup))
    for frac in cfg.decay_at:
        if step >= int(frac * cfg.steps):
            scale *= cfg.decay_gamma
    return cfg.lr * scale


class EMA:
    """Exponential moving average of the trained parameters (frozen ones never change, so are not kept)."""

    def __init__(self, named: Sequence[tuple[str, nn.Parameter]], decay: float) -> None:
        self.decay = decay
        self.params = dict(named)
        self.shadow = {name: p.detach().clone() for name, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        for name, p in self.params.items():
            self.shadow[name].lerp_(p.detach(), 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            self.shadow[name].copy_(value)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Write the averaged weights into `module` (the shipped weights are the EMA ones)."""
        own = dict(module.named_parameters())
        for name, value in self.shadow.items():
            own[name].copy_(value)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, module: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA,
                    step: int, cfg: LoopConfig) -> None:
    """Everything needed to continue exactly: weights, optimiser, EMA, next step, RNG states (atomic write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": module.state_dict(), "optimizer": optimizer.state_dict(), "ema": ema.state_dict(),
                "step": step, "rng": _rng_state(), "loop": asdict(cfg)}, tmp)
    os.replace(tmp, path)


def train(module: nn.Module, loss_fn: LossFn, cfg: LoopConfig, *, checkpoint: Path | None = None,
          desc: str = "train") -> tuple[EMA, list[float]]:
    """Optimise the parameters of `module` that require grad; resume from `checkpoint` when it exists.

    Returns the EMA (call `ema.copy_to(module)` to export) and the loss of every step run in this call.
    bf16 autocast is used on CUDA (as the official recipe) and full fp32 on CPU.
    """
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("no trainable parameters: the stage froze everything")
    optimizer = torch.optim.AdamW([p for _, p in named], lr=cfg.lr, betas=cfg.betas,
                                  weight_decay=cfg.weight_decay)
    ema = EMA(named, cfg.ema_decay)
    start = 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        start = state["step"]
        _set_rng_state(state["rng"])
    device = next(module.parameters()).device
    losses: list[float] = []
    module.train()
    bar = tqdm(range(start, cfg.steps), desc=desc, initial=start, total=cfg.steps, dynamic_ncols=True)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = loss_fn(step, step_generator(cfg.seed, step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], cfg.grad_clip)
        optimizer.step()
        ema.update()
        losses.append(loss.item())
        if step % cfg.log_every == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-cfg.log_every:]):.4f}")
        done = step + 1
        if checkpoint is not None and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            save_checkpoint(checkpoint, module, optimizer, ema, done, cfg)
    module.eval()
    return ema, losses
