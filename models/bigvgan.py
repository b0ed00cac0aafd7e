"""BigVGAN vocoder (log-mel -> waveform): v1 at 16 kHz (MMAudio `best_netG.pt`) and v2 at 44.1 kHz.

Generator: conv_pre -> per stage [transposed-conv upsampler, mean of AMP blocks with kernels 3/7/11] ->
anti-aliased SnakeBeta -> conv_post -> tanh (v2 44k: clamp, and no conv_post bias). An AMP block is three
(activation, dilated conv, activation, conv) residual units; every activation runs at twice the rate between
fixed Kaiser-windowed sinc filters (persistent `*.filter` buffers, part of the checkpoint).

Convolutions carry PyTorch weight norm, so `state_dict()` names match the official module
(`<layer>.parametrizations.weight.original0/1`), and PyTorch's own load hook also accepts the legacy
`<layer>.weight_g/_v` names the released files most likely use. `load_for_inference()` loads either, then
`fold_weight_norm()` bakes g * v / ||v|| into plain weights; the key names change with it, so a folded model
can never silently take a second, un-normalised load.

v2 is this same code with another config, not the PyPI `bigvgan` package: that package pulls ~10 training
dependencies (auraloss, nnAudio, pesq, tensorboard, ...), reads its config from the Hugging Face hub, and
uses the same state-dict names as ours (legacy weight-norm names), so it would add nothing but weight.
Only what the released checkpoints use is implemented: AMP block type "1" and log-scale SnakeBeta.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

FILTER_TAPS = 12  # anti-aliasing filters for the 2x up/down-sampling around every activation


@dataclass(frozen=True)
class BigVGANConfig:
    sample_rate: int
    num_mels: int
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    use_tanh_at_final: bool = True  # False: clamp to [-1, 1]
    use_bias_at_final: bool = True

    @property
    def hop(self) -> int:
        """Waveform samples per mel frame."""
        return math.prod(self.upsample_rates)


# mmaudio/ext/bigvgan/bigvgan_vocoder.yml (Make-An-Audio 2's vocoder).
BIGVGAN_V1_16K = BigVGANConfig(
    sample_rate=16_000, num_mels=80, upsample_rates=(4, 4, 2, 2, 2, 2),
    upsample_kernel_sizes=(8, 8, 4, 4, 4, 4), upsample_initial_channel=1536,
)
# NVIDIA/BigVGAN configs/bigvgan_v2_44khz_128band_512x.json (nvidia/bigvgan_v2_44khz_128band_512x).
BIGVGAN_V2_44K = BigVGANConfig(
    sample_rate=44_100, num_mels=128, upsample_rates=(8, 4, 2, 2, 2, 2),
    upsample_kernel_sizes=(16, 8, 4, 4, 4, 4), upsample_initial_channel=1536,
    use_tanh_at_final=False, use_bias_at_final=False,
)


def kaiser_sinc_filter(cutoff: float, half_width: float, taps: int) -> torch.Tensor:
    """Even-length Kaiser-windowed sinc low-pass (cutoff and transition half-width in cycles/sample), sum 1."""
    attenuation = 2.285 * (taps // 2 - 1) * math.pi * 4 * half_width + 7.95  # Kaiser's design formula, dB
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(taps, periodic=False, beta=beta, dtype=torch.float64, device="cpu")
    time = torch.arange(-(taps // 2), taps // 2, dtype=torch.float64, device="cpu") + 0.5
    kernel = window * torch.sinc(2 * cutoff * time)
    return (kernel / kernel.sum()).to(torch.float32).view(1, 1, taps)


@functools.cache
def _halfband() -> torch.Tensor:
    """Computed once on CPU: a full-size generator holds 218 copies of this constant."""
    return kaiser_sinc_filter(cutoff=0.25, half_width=0.3, taps=FILTER_TAPS)


class UpSample2x(nn.Module):
    """Zero-stuffing x2 then low-pass (a depthwise transposed conv), replicate-padded to keep the edges flat."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("filter", _halfband().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = FILTER_TAPS // 2 - 1
        crop = 2 * pad + (FILTER_TAPS - 2) // 2
        x = F.pad(x, (pad, pad), mode="replicate")
        gain_filter = (2 * self.filter).expand(x.shape[1], -1, -1)  # x2 restores the level; exact in floating point
        return F.conv_transpose1d(x, gain_filter, stride=2, groups=x.shape[1])[..., crop:-crop]


class LowPass2x(nn.Module):
    """Low-pass then keep every second sample (a depthwise strided conv)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("filter", _halfband().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (FILTER_TAPS // 2 - 1, FILTER_TAPS // 2), mode="replicate")
        return F.conv1d(x, self.filter.expand(x.shape[1], -1, -1), stride=2, groups=x.shape[1])


class DownSample2x(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lowpass = LowPass2x()  # the extra level only mirrors the checkpoint's key names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class SnakeBeta(nn.Module):
    """x + sin²(x·e^alpha) / e^beta per channel (log-scale parameters, zero = alpha = beta = 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.exp()[None, :, None]
        inv_beta = 1.0 / (self.beta.exp()[None, :, None] + 1e-9)  # per channel: multiply, not divide, per sample
        return x + torch.sin(x * alpha).square() * inv_beta


class Activation1d(nn.Module):
    """SnakeBeta evaluated at twice the sample rate, so its harmonics do not alias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = UpSample2x()
        self.downsample = DownSample2x()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def _conv(channels_in: int, channels_out: int, kernel: int, dilation: int = 1, bias: bool = True) -> nn.Conv1d:
    return weight_norm(nn.Conv1d(channels_in, channels_out, kernel, dilation=dilation,
                                 padding=dilation * (kernel - 1) // 2, bias=bias))


class AMPBlock1(nn.Module):
    """Residual units x += c2(act(c1(act(x)))) with c1 dilated by d in `dilations`; activations interleave."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(_conv(channels, channels, kernel, d) for d in dilations)
        self.convs2 = nn.ModuleList(_conv(channels, channels, kernel) for _ in dilations)
        self.activations = nn.ModuleList(Activation1d(channels) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2)):
            x = x + c2(self.activations[2 * i + 1](c1(self.activations[2 * i](x))))
        return x


class BigVGAN(nn.Module):
    """(B, num_mels, T) log-mel -> (B, 1, T * hop) waveform in [-1, 1]."""

    def __init__(self, config: BigVGANConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.upsample_initial_channel
        if channels >> len(config.upsample_rates) < 1:
            raise ValueError(f"upsample_initial_channel {channels} cannot be halved {len(config.upsample_rates)} times")
        self.conv_pre = _conv(config.num_mels, channels, 7)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes)):
            ch_in, channels = channels, channels // 2
            upsampler = nn.ConvTranspose1d(ch_in, channels, kernel, stride=rate, padding=(kernel - rate) // 2)
            self.ups.append(nn.ModuleList([weight_norm(upsampler)]))  # a one-element list, as in the checkpoint
            self.resblocks.extend(
                AMPBlock1(channels, k, tuple(d))
                for k, d in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)
            )
        self.activation_post = Activation1d(channels)
        self.conv_post = _conv(channels, 1, 7, bias=config.use_bias_at_final)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        per_stage = len(self.config.resblock_kernel_sizes)
        for i, (upsampler,) in enumerate(self.ups):
            x = upsampler(x)
            blocks = self.resblocks[i * per_stage:(i + 1) * per_stage]
            x = sum(block(x) for block in blocks) / per_stage
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.config.use_tanh_at_final else x.clamp(-1.0, 1.0)

    def load_for_inference(self, state_dict: Mapping[str, torch.Tensor]) -> BigVGAN:
        """Strict-load a generator state dict and fold its weight norm. Accepts both weight-norm namings and
        already-folded plain `weight`s (the official v2 loader allows for releases saved that way)."""
        if "conv_pre.weight" in state_dict:
            self.fold_weight_norm()
        self.load_state_dict(state_dict, strict=True)
        return self.fold_weight_norm()

    def fold_weight_norm(self) -> BigVGAN:
        """Replace every weight-normed (g, v) pair by the plain weight it stands for (inference speed)."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        return self


def bigvgan_v1_16k(upsample_initial_channel: int = 1536) -> BigVGAN:
    """MMAudio's 16 kHz vocoder (80 log10-mel bins, hop 256). Narrower upsample_initial_channel for tests."""
    return BigVGAN(replace(BIGVGAN_V1_16K, upsample_initial_channel=upsample_initial_channel))


def bigvgan_v2_44k(upsample_initial_channel: int = 1536) -> BigVGAN:
    """nvidia/bigvgan_v2_44khz_128band_512x (128 ln-mel bins, hop 512). Narrower channels for tests."""
    return BigVGAN(replace(BIGVGAN_V2_44K, upsample_initial_channel=upsample_initial_channel))

