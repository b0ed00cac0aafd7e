"""Weight-free audio features shared by the metrics and the class classifier (16 kHz mono).

Log-mel statistics describe *what* sounds (spectral shape, steadiness, attack density); pooled mel power
describes *where in time and frequency* the energy is, which the leakage fit compares between stems.
"""
from __future__ import annotations

import functools

import torch
import torchaudio

SAMPLE_RATE = 16_000
HOP = 160  # 10 ms
N_MELS = 64
STATS_DIM = 4 * N_MELS


@functools.lru_cache(maxsize=1)
def _mel() -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=512, win_length=400, hop_length=HOP,
                                                f_min=30.0, f_max=8000.0, n_mels=N_MELS, power=2.0)


def as_batch(audio: torch.Tensor) -> torch.Tensor:
    audio = torch.as_tensor(audio, dtype=torch.float32)
    return audio[None] if audio.ndim == 1 else audio


def mel_power(audio: torch.Tensor) -> torch.Tensor:
    """(n,) or (B, n) -> (B, N_MELS, frames) mel power, 10 ms hop."""
    return _mel()(as_batch(audio))


def log_mel_stats(audio: torch.Tensor) -> torch.Tensor:
    """(B, n) -> (B, 256): per band, the mean, spread and maximum over time of the log-mel, and its mean
    absolute change (attacks); the maximum keeps sparse clicks from reading like silence. Each clip is
    scaled to peak 0.5 first so the level does not matter; a clip quieter than -60 dBFS is left as is and
    reads as silence."""
    audio = as_batch(audio)
    peak = audio.abs().amax(dim=1, keepdim=True)
    gain = torch.where(peak > 1e-3, 0.5 / peak.clamp_min(1e-3), torch.ones_like(peak))
    log_mel = torch.log10(mel_power(audio * gain) + 1e-8)
    change = log_mel.diff(dim=-1).abs().mean(-1)
    return torch.cat([log_mel.mean(-1), log_mel.std(-1), log_mel.amax(-1), change], dim=1)


def envelope(audio: torch.Tensor, hop: int = HOP) -> torch.Tensor:
    """(n,) -> RMS per `hop` samples."""
    audio = torch.as_tensor(audio, dtype=torch.float32)
    frames = audio[: audio.numel() // hop * hop].reshape(-1, hop)
    return frames.pow(2).mean(1).sqrt()
