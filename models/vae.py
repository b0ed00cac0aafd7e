"""MMAudio's mel VAE: an EDM2-style magnitude-preserving 1-D conv autoencoder, mel (B, C, 2T) <-> latent (B, D, T).

Layout (state_dict names follow the released `v1-16.pth` / `v1-44.pth` exactly):
- encoder: conv_in -> level 0 [2 blocks, downsample x2] -> level 1 [2] -> level 2 [2] -> mid [block, attention,
  block] -> mp_silu -> conv_out (gain) = [mean | logvar];
- decoder: conv_in -> mid -> level 2 [3 blocks] -> level 1 [3 blocks, then upsample x2] -> level 0 [3] ->
  mp_silu -> conv_out (gain). The decoder upsamples at level 1 although the encoder downsamples at level 0.
Widths are hidden * (1, 2, 4); activations are clamped to ±256 after every block.

Checkpoints store RAW conv weights; each output filter is used as w / (||w|| + 1e-4 * sqrt(fan_in)). Until
`fold_weight_norm()` the normalisation runs on every call (so the module trains and its state dict stays in the
checkpoint's raw form); inference folds it once after loading, which saves about 30 % of decode time on CPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

CLAMP = 256.0
CHANNEL_MULT = (1, 2, 4)
RESIDUAL_WEIGHT = 0.3  # mp_sum blend towards the residual branch


@dataclass(frozen=True)
class VAEConfig:
    data_dim: int  # mel bins
    embed_dim: int  # latent channels
    hidden_dim: int


def pixel_norm(x: torch.Tensor, dim: int = 1, eps: float = 1e-4) -> torch.Tensor:
    """Scale to unit RMS over `dim` (EDM2 `normalize`), the norm taken in float32."""
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    return x / (eps + norm / math.sqrt(x.shape[dim])).to(x.dtype)


def mp_silu(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x) / 0.596


def mp_sum(a: torch.Tensor, b: torch.Tensor, t: float = RESIDUAL_WEIGHT) -> torch.Tensor:
    return a.lerp(b, t) / math.sqrt((1 - t) ** 2 + t**2)


class MPConv1d(nn.Module):
    """Bias-free 'same' conv whose raw weight is normalised per output filter and divided by sqrt(fan_in)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size))
        self.folded = False

    def normalized_weight(self) -> torch.Tensor:
        if self.folded:
            return self.folded_weight
        w = self.weight.to(torch.float32)
        norm = torch.linalg.vector_norm(w, dim=(1, 2), keepdim=True)
        return (w / (norm + 1e-4 * math.sqrt(w[0].numel()))).to(self.weight.dtype)

    def fold_weight_norm(self) -> None:
        """Normalise once, for inference. The raw parameter `weight` becomes the buffer `folded_weight`, so a
        folded module can neither save normalised weights as raw ones nor strictly re-load a raw checkpoint."""
        folded = self.normalized_weight().detach()
        del self.weight
        self.register_buffer("folded_weight", folded)
        self.folded = True

    def forward(self, x: torch.Tensor, gain: torch.Tensor | None = None) -> torch.Tensor:
        w = self.normalized_weight()
        if gain is not None:
            w = w * gain
        return F.conv1d(x, w.to(x.dtype), padding=w.shape[-1] // 2)


class ResBlock(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.conv1 = MPConv1d(in_dim, out_dim, 3)
        self.conv2 = MPConv1d(out_dim, out_dim, 3)
        self.nin_shortcut = MPConv1d(in_dim, out_dim, 1) if in_dim != out_dim else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(x)
        h = self.conv2(mp_silu(self.conv1(mp_silu(x))))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return mp_sum(x, h)


class Attention(nn.Module):
    """Single-head self-attention over time; qkv channels are interleaved as (C, 3)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = MPConv1d(dim, 3 * dim, 1)
        self.proj_out = MPConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        qkv = pixel_norm(self.qkv(x).view(b, c, 3, t), dim=1).transpose(1, 3)  # (B, T, 3, C)
        h = F.scaled_dot_product_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2])  # (B, T, C)
        return mp_sum(x, self.proj_out(h.transpose(1, 2)))


class MidBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block_1 = ResBlock(dim, dim)
        self.attn_1 = Attention(dim)
        self.block_2 = ResBlock(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x))).clamp(-CLAMP, CLAMP)


class Downsample(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = MPConv1d(dim, dim, 1)
        self.conv2 = MPConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.avg_pool1d(self.conv1(x), kernel_size=2))


class Upsample(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = MPConv1d(dim, dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest-exact"))


class Level(nn.Module):
    """Residual blocks at one resolution, optionally followed by a resampler (`downsample` or `upsample`)."""

    def __init__(self, dims: list[int], resample: str | None = None) -> None:
        super().__init__()
        self.block = nn.ModuleList(ResBlock(i, o) for i, o in zip(dims[:-1], dims[1:]))
        if resample == "down":
            self.downsample = Downsample(dims[-1])
        elif resample == "up":
            self.upsample = Upsample(dims[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x).clamp(-CLAMP, CLAMP)
        if hasattr(self, "downsample"):
            x = self.downsample(x)
        if hasattr(self, "upsample"):
            x = self.upsample(x)
        return x


class Encoder(nn.Module):
    """Normalised mel (B, data_dim, 2T) -> moments (B, 2*embed_dim, T) = [mean | logvar] (unclamped)."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        widths = [config.hidden_dim * m for m in CHANNEL_MULT]
        self.conv_in = MPConv1d(config.data_dim, widths[0], 3)
        ins = [widths[0], *widths[:-1]]
        self.down = nn.ModuleList(
            Level([i, o, o], "down" if level == 0 else None) for level, (i, o) in enumerate(zip(ins, widths))
        )
        self.mid = MidBlock(widths[-1])
        self.conv_out = MPConv1d(widths[-1], 2 * config.embed_dim, 3)
        self.learnable_gain = nn.Parameter(torch.zeros([]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for level in self.down:
            x = level(x)
        return self.conv_out(mp_silu(self.mid(x)), gain=self.learnable_gain + 1)


class Decoder(nn.Module):
    """Latent (B, embed_dim, T) -> normalised mel (B, data_dim, 2T). `up[i]` is level i, run from the top down."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        widths = [config.hidden_dim * m for m in CHANNEL_MULT]
        self.conv_in = MPConv1d(config.embed_dim, widths[-1], 3)
        self.mid = MidBlock(widths[-1])
        ins = [*widths[1:], widths[-1]]
        self.up = nn.ModuleList(
            Level([i, o, o, o], "up" if level == 1 else None) for level, (i, o) in enumerate(zip(ins, widths))
        )
        self.conv_out = MPConv1d(widths[0], config.data_dim, 3)
        self.learnable_gain = nn.Parameter(torch.zeros([]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            x = level(x)
        return self.conv_out(mp_silu(x), gain=self.learnable_gain + 1)


@dataclass
class LatentDistribution:
    """Diagonal Gaussian posterior; tensors share one layout (channels-first from the VAE)."""

    mean: torch.Tensor
    logvar: torch.Tensor  # clamped to [-30, 20]

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * noise

    def transpose(self, dim0: int, dim1: int) -> LatentDistribution:
        return LatentDistribution(self.mean.transpose(dim0, dim1), self.logvar.transpose(dim0, dim1))


class MelVAE(nn.Module):
    """Mel VAE with built-in per-bin mel statistics (`data_mean`, `data_std`, shipped in the checkpoint)."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        # Identity until a checkpoint (or a training script) provides the statistics of its training mels.
        self.register_buffer("data_mean", torch.zeros(1, config.data_dim, 1))
        self.register_buffer("data_std", torch.ones(1, config.data_dim, 1))
        self.encoder: Encoder | None = Encoder(config)
        self.decoder = Decoder(config)

    def fold_weight_norm(self) -> MelVAE:
        """After loading, for inference only: normalise every conv weight once instead of on every call."""
        for module in self.modules():
            if isinstance(module, MPConv1d):
                module.fold_weight_norm()
        return self

    def drop_encoder(self) -> MelVAE:
        """Free the encoder (~40 % of the weights) when only decoding, as the official inference does.
        Checkpoints include it, so call this after loading."""
        self.encoder = None
        return self

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.data_mean) / self.data_std

    def encode(self, mel: torch.Tensor) -> LatentDistribution:
        """(B, data_dim, 2T) log-mel -> posterior over (B, embed_dim, T)."""
        if self.encoder is None:
            raise RuntimeError("this VAE's encoder was dropped for inference (drop_encoder)")
        mean, logvar = self.encoder(self.normalize(mel)).chunk(2, dim=1)
        return LatentDistribution(mean, logvar.clamp(-30.0, 20.0))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim, T) latent -> (B, data_dim, 2T) log-mel."""
        return self.decoder(z) * self.data_std + self.data_mean


def vae_16k(hidden_dim: int = 384) -> MelVAE:
    """MMAudio `v1-16.pth`: 80 log10-mel bins at 16 kHz, 20 latent channels. Smaller hidden_dim for tests."""
    return MelVAE(VAEConfig(data_dim=80, embed_dim=20, hidden_dim=hidden_dim))


def vae_44k(hidden_dim: int = 512) -> MelVAE:
    """MMAudio `v1-44.pth`: 128 ln-mel bins at 44.1 kHz, 40 latent channels. Smaller hidden_dim for tests."""
    return MelVAE(VAEConfig(data_dim=128, embed_dim=40, hidden_dim=hidden_dim))
