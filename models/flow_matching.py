"""Conditional flow matching (σ_min = 0): Euler sampling with classifier-free guidance, and training terms.

Convention (as MMAudio/SelVA): t = 0 is Gaussian noise x0, t = 1 is the normalised data latent x1, and the
network predicts the constant velocity x1 - x0 of the straight path between them.
"""
from __future__ import annotations

from typing import Callable, Protocol, TypeVar

import torch

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (t scalar, x) -> v


class Batchable(Protocol):
    def cat(self, other: "Batchable") -> "Batchable": ...


C = TypeVar("C", bound=Batchable)


def euler_sample(velocity_fn: VelocityFn, x0: torch.Tensor, steps: int = 25) -> torch.Tensor:
    """Integrate dx/dt = v(t, x) from t=0 (noise x0) to t=1 over linspace(0, 1, steps+1) (fp32 grid)."""
    grid = torch.linspace(0, 1, steps + 1)
    x = x0
    for i in range(steps):
        x = x + (grid[i + 1] - grid[i]).to(x.device) * velocity_fn(grid[i], x)
    return x


def cfg_combine(v_cond: torch.Tensor, v_uncond: torch.Tensor, cfg: float) -> torch.Tensor:
    return cfg * v_cond + (1 - cfg) * v_uncond


def guided_velocity(network: Callable[[torch.Tensor, torch.Tensor, C], torch.Tensor], cond: C, uncond: C,
                    cfg: float) -> VelocityFn:
    """Classifier-free guided velocity v = cfg*v(cond) + (1-cfg)*v(uncond), or v(cond) alone when cfg < 1.

    `network(x, t, conditions)` is e.g. `FlowGenerator.velocity`. Both branches run as ONE batched forward
    (rows [cond; uncond]) so guidance costs one network call per step; the concatenation is done once here.
    """
    both = cond if cfg < 1 else cond.cat(uncond)

    def velocity(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if cfg < 1:
            return network(x, t.to(x).expand(x.shape[0]), cond)
        v = network(torch.cat([x, x]), t.to(x).expand(2 * x.shape[0]), both)
        v_cond, v_uncond = v.chunk(2)
        return cfg_combine(v_cond, v_uncond, cfg)

    return velocity


# ----------------------------------------------------------------------------------------------- training

def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Point x_t = (1 - t) x0 + t x1 on the straight path; t is (B,)."""
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * x1


def target_velocity(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    return x1 - x0


def flow_loss(pred_v: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE to the target velocity, averaged over all non-batch dims: (B,)."""
    return (pred_v - target_velocity(x0, x1)).pow(2).flatten(1).mean(dim=1)


def logit_normal_t(batch: int, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu", mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """Training times t = sigmoid(N(mean, std)); the official N(0, 1) concentrates them mid-path, where the
    velocity is hardest to predict. A negative mean moves them towards the noise end (t = 0)."""
    return torch.sigmoid(torch.randn(batch, generator=generator, device=device) * std + mean)
