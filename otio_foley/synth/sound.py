"""Audio building blocks for the synthetic scenes: short event kernels placed at exact times, gated tones.

Every source class has its own spectral region (low thuds, mid tones, high clicks, band noise) so a small
model can learn to tell them apart; the timing comes from the same parameters that drive the pictures.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy.signal import butter, sosfilt


def decay_tone(sr: int, freqs: Iterable[float], gains: Iterable[float], decay: float, *,
               length: float | None = None, glide: float = 0.0) -> np.ndarray:
    """Sum of exponentially decaying sines (a struck object); `glide` drops the pitch by that fraction."""
    n = int(sr * (length if length is not None else 5 * decay))
    t = np.arange(n, dtype=np.float64) / sr
    env = np.exp(-t / decay)
    bend = 1.0 - glide * (1.0 - np.exp(-t / max(decay, 1e-3)))
    out = np.zeros(n)
    for f, g in zip(freqs, gains):
        out += g * np.sin(2 * np.pi * f * np.cumsum(bend) / sr)
    attack = np.minimum(1.0, t / 0.001)  # 1 ms attack: a clean onset without a click at sample 0
    return (out * env * attack).astype(np.float32)


def band_noise(rng: np.random.Generator, sr: int, n: int, low: float, high: float) -> np.ndarray:
    """White noise band-passed to [low, high] Hz (4th-order Butterworth)."""
    sos = butter(4, [low, min(high, sr / 2 * 0.95)], btype="bandpass", fs=sr, output="sos")
    return sosfilt(sos, rng.standard_normal(n)).astype(np.float32)


def noise_burst(rng: np.random.Generator, sr: int, low: float, high: float, decay: float) -> np.ndarray:
    n = int(sr * 5 * decay)
    t = np.arange(n) / sr
    return band_noise(rng, sr, n, low, high) * np.exp(-t / decay).astype(np.float32)


def place(out: np.ndarray, kernel: np.ndarray, times: Iterable[float], sr: int, gain: float = 1.0) -> None:
    """Add `kernel` starting at each time (seconds), cut at the end of `out`."""
    for time in times:
        start = int(round(time * sr))
        if 0 <= start < len(out):
            stop = min(len(out), start + len(kernel))
            out[start:stop] += gain * kernel[: stop - start]


def gate(active: np.ndarray, sr: int, ramp: float = 0.005) -> np.ndarray:
    """Per-sample 0/1 activity -> envelope with `ramp`-second linear fades (no clicks at the edges)."""
    width = max(1, int(sr * ramp))
    return np.convolve(active.astype(np.float32), np.ones(width, np.float32) / width, mode="same")


def tone(freq: np.ndarray, sr: int, harmonics: Iterable[float] = (1.0,), phase0: float = 0.0) -> np.ndarray:
    """Harmonic tone following a per-sample frequency track (Hz)."""
    phase = phase0 + 2 * np.pi * np.cumsum(freq.astype(np.float64)) / sr
    out = np.zeros(len(freq))
    for k, g in enumerate(harmonics, start=1):
        out += g * np.sin(k * phase)
    return out.astype(np.float32)
