"""Selectivity metrics against a target's ground-truth stem (16 kHz mono), and set distances.

- `leakage`: share of the output's energy explained by the distractor's stem rather than the target's.
- `onsets` / `onset_f1`: does the output hit where the target hits (±80 ms, the usual tolerance is 50 ms;
  80 ms allows two video frames of slack at 25 fps).
- `envelope_correlation`: does the loudness follow the target over time.
- `frechet_distance` / `kernel_distance`: FAD- and KAD-style distances between embedding sets.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import nnls

from otio_foley.evaluation.features import HOP, SAMPLE_RATE, envelope, mel_power

FRAME_SECONDS = HOP / SAMPLE_RATE


def onsets(audio: torch.Tensor, *, rise_db: float = 9.0, floor_db: float = 35.0, min_gap: float = 0.05,
           window_frames: int = 2) -> np.ndarray:
    """Onset times (s): frames whose level jumps by `rise_db` over the previous 30 ms, no quieter than
    `floor_db` under the clip's loudest frame, at least `min_gap` apart (the strongest rise wins).

    A frame's level is the mean power of the `window_frames` 10 ms frames that end with it. One 10 ms frame
    read the flutter that Griffin-Lim's phase leaves in a steady sound as onsets: against the clean stems, the
    selva-tiny codec's round trip of them scored onset F1 0.20 on the kettle and 0.82 over all classes. Two
    frames (20 ms) is the shortest window that makes that round trip transparent (0.99) and still finds the
    scenes' true events in the clean stems as well (0.89 for both); `benchmarks/onset_detector.py` measures it."""
    power = envelope(audio).pow(2)
    if power.numel() < 4:
        return np.zeros(0)
    # A trailing mean, so that a rise is still seen in the first frame that holds the attack.
    padded = F.pad(power[None, None], (window_frames - 1, 0), mode="replicate")
    level = 10 * torch.log10(F.avg_pool1d(padded, window_frames, 1)[0, 0] + 1e-10).numpy()
    if level.max() < -60:
        return np.zeros(0)
    before = np.minimum.reduce([np.roll(level, k) for k in (1, 2, 3)])
    before[:3] = level[:3]  # nothing before the start: a sound present from the first frame is no onset
    rise = level - before
    candidates = np.flatnonzero((rise >= rise_db) & (level >= level.max() - floor_db))
    gap = int(round(min_gap / FRAME_SECONDS))
    chosen: list[int] = []
    for index in candidates[np.argsort(-rise[candidates], kind="stable")]:
        if all(abs(index - c) >= gap for c in chosen):
            chosen.append(int(index))
    # A rise is seen at the first frame that contains the attack; report that frame's start.
    return np.sort(np.array(chosen, dtype=np.float64)) * FRAME_SECONDS


def onset_matches(predicted: np.ndarray, reference: np.ndarray, tolerance: float = 0.08) -> int:
    """How many one-to-one pairs of onsets lie within `tolerance` seconds (greedy in time order)."""
    used = np.zeros(len(reference), dtype=bool)
    hits = 0
    for time in np.sort(predicted):
        free = np.flatnonzero(~used & (np.abs(reference - time) <= tolerance))
        if free.size:
            used[free[np.argmin(np.abs(reference[free] - time))]] = True
            hits += 1
    return hits


def onset_f1(predicted: np.ndarray, reference: np.ndarray, tolerance: float = 0.08) -> float:
    """F1 of `onset_matches`. Both empty = 1."""
    if len(predicted) == 0 and len(reference) == 0:
        return 1.0
    return 2 * onset_matches(predicted, reference, tolerance) / (len(predicted) + len(reference))


def envelope_correlation(output: torch.Tensor, target: torch.Tensor, hop: int = 4 * HOP) -> float:
    """Pearson correlation of 40 ms RMS envelopes; 0 when either is constant (e.g. silence)."""
    a, b = envelope(output, hop), envelope(target, hop)
    n = min(a.numel(), b.numel())
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    denominator = float(a.norm() * b.norm())
    return float((a * b).sum()) / denominator if denominator > 1e-12 else 0.0


def _pooled_power(audio: torch.Tensor, frames: int = 4) -> np.ndarray:
    """Mel power pooled over 40 ms (one video frame at 25 fps), flattened."""
    power = mel_power(audio)
    return F.avg_pool1d(power, frames, frames, ceil_mode=True).flatten().double().numpy()


def leakage(output: torch.Tensor, target: torch.Tensor, distractor: torch.Tensor) -> float:
    """Fit output ≈ a·target + b·distractor on time-frequency energy (a, b ≥ 0); return the distractor's
    share b·E(distractor) / (a·E(target) + b·E(distractor)). 0 = only the target's sound, 1 = only the
    distractor's; silence explains nothing and scores 0 (the other metrics punish it)."""
    o, t, d = (_pooled_power(x) for x in (output, target, distractor))
    n = min(o.size, t.size, d.size)
    scale = max(t[:n].max(), d[:n].max(), 1e-20)
    (a, b), _ = nnls(np.stack([t[:n], d[:n]], 1) / scale, o[:n] / scale)
    explained = a * t[:n].sum() + b * d[:n].sum()
    return float(b * d[:n].sum() / explained) if explained > 0 else 0.0


def frechet_distance(x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two embedding sets (N, D) (the FAD formula)."""
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x = np.cov(x, rowvar=False) + eps * np.eye(x.shape[1])
    cov_y = np.cov(y, rowvar=False) + eps * np.eye(y.shape[1])
    # tr sqrt(Cx Cy) = tr sqrt(Cx^1/2 Cy Cx^1/2): a symmetric PSD root via eigh, stable for the
    # rank-deficient covariances of small sets (scipy's sqrtm warns and can go complex there).
    values, vectors = np.linalg.eigh(cov_x)
    half = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(half @ cov_y @ half), 0, None)).sum()
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(cov_x) + np.trace(cov_y) - 2 * cross)


def kernel_distance(x: np.ndarray, reference: np.ndarray) -> float:
    """KAD: unbiased MMD² with a Gaussian kernel, ×100. The bandwidth is the median pairwise distance of
    the *reference* set (as kadtk documents; its code uses the evaluated set, kadtk issue #9)."""
    def sq(a, b):
        return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0.0)

    d_ref = sq(reference, reference)
    bandwidth = np.median(np.sqrt(d_ref[np.triu_indices(len(reference), 1)]))
    gamma = 1.0 / (2 * max(bandwidth, 1e-12) ** 2)
    k_xx, k_yy, k_xy = np.exp(-gamma * sq(x, x)), np.exp(-gamma * d_ref), np.exp(-gamma * sq(x, reference))
    m, n = len(x), len(reference)
    mmd = ((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1)) + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
           - 2 * k_xy.mean())
    return float(100 * mmd)
