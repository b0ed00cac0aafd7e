"""Waveform -> log-mel spectrogram: the domain the mel VAEs encode and the BigVGAN vocoders invert.

The recipe is the Make-An-Audio 2 / BigVGAN one the released VAEs were trained on, so every detail
matters for reusing official weights: clamp to [-1, 1]; reflect-pad (n_fft - hop)/2 on each side
instead of STFT centring (N samples give 1 + (N + 2*pad - n_fft)//hop frames, i.e. N/hop for a
multiple of hop); periodic Hann window; magnitude sqrt(re² + im² + 1e-9); Slaney-scale,
area-normalised mel bank (librosa's default, which torchaudio reproduces); log with floor 1e-5.
The 16 kHz converter uses log10 (MMAudio's 16k VAE), the 44.1 kHz one the natural log (BigVGAN v2).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio.functional as AF
from torch import nn


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int
    n_fft: int  # also the window length
    hop: int
    n_mels: int
    f_max: float
    log10: bool  # False: natural log
    f_min: float = 0.0


MEL_16K = MelConfig(sample_rate=16_000, n_fft=1024, hop=256, n_mels=80, f_max=8_000.0, log10=True)
MEL_44K = MelConfig(sample_rate=44_100, n_fft=2048, hop=512, n_mels=128, f_max=22_050.0, log10=False)


class MelConverter(nn.Module):
    """(B, N) waveform in [-1, 1] -> (B, n_mels, frames) log-mel. Window and mel bank are rebuilt, not stored."""

    def __init__(self, config: MelConfig) -> None:
        super().__init__()
        self.config = config
        bank = AF.melscale_fbanks(
            config.n_fft // 2 + 1, config.f_min, config.f_max, config.n_mels, config.sample_rate,
            norm="slaney", mel_scale="slaney",
        )
        self.register_buffer("mel_basis", bank.T.contiguous(), persistent=False)  # (n_mels, n_fft/2 + 1)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    def num_frames(self, num_samples: int) -> int:
        c = self.config
        return 1 + (num_samples + 2 * ((c.n_fft - c.hop) // 2) - c.n_fft) // c.hop

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        c = self.config
        pad = (c.n_fft - c.hop) // 2
        x = waveform.clamp(-1.0, 1.0).to(self.window.dtype)
        x = nn.functional.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(x, c.n_fft, hop_length=c.hop, window=self.window, center=False, return_complex=True)
        magnitude = torch.sqrt(spec.real.square() + spec.imag.square() + 1e-9)
        mel = (self.mel_basis @ magnitude).clamp(min=1e-5)
        return torch.log10(mel) if c.log10 else torch.log(mel)


def mel_16k() -> MelConverter:
    return MelConverter(MEL_16K)


def mel_44k() -> MelConverter:
    return MelConverter(MEL_44K)
