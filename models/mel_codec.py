"""A GAN-free audio back-end for the built-in tiny model: log10-mel frames as the latent, Griffin-Lim back.

SelVA's real back-end is a mel VAE plus BigVGAN, neither of which can be trained on a CPU in an hour.
Log-mel frames are already a compact, smooth latent for the synthetic classes, and Griffin-Lim
(torchaudio) inverts them without any learned weights, so the tiny model trains only its flow network
and its video encoder. It exposes the AudioDecoder API the pipeline codes against: `sample_rate`,
`latent_dim`, `decode(latents (B, N, latent_dim)) -> (B, samples)`, plus `encode` for training.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio
from torch import nn


@dataclass(frozen=True)
class MelCodecConfig:
    sample_rate: int = 16000
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 40
    f_max: float = 8000.0
    floor: float = 1e-5  # log10 floor, as in the official 16 kHz mel converter
    griffin_lim_iters: int = 32
    # Output level of `decode`. Under CFG 4.5 the tiny generator overshoots the training range: selva-tiny's
    # windows decode 3-10x louder than the synthetic stems they imitate (pre-gain peaks 2.0-7.5 against
    # 0.4-0.8 on 8 held-out clips). So every bin is capped at `max_log_mel`, just above the loudest frame of
    # the training stems (log10 mel 0.33 at the selva-tiny settings, 300 scenes), and the waveform is scaled
    # by `output_gain_db`. A plain gain, not a clipper: saturating the overshoot (tanh) turned the sounds into
    # distorted noise (held-out class accuracy 0.50 with tanh, 0.81 with a gain).
    max_log_mel: float | None = 0.5
    output_gain_db: float = -18.0
    # Each bin is median-filtered over this many frames before the inverse (1 = off). The tiny generator's
    # samples keep frame-to-frame flutter from their starting noise (benchmarks/sample_noise.py: fine detail
    # 0.56 against the targets' 0.28), which the classifier hears as hits (bells taken for drums) and the onset
    # detector counts as onsets. A 3-frame (48 ms) median removes single-frame flutter but keeps a step where it
    # is, so onsets stay put: the round trip of the held-out target stems keeps accuracy and onset F1
    # (benchmarks/codec_ceiling.py), where 5 frames already deletes clock ticks.
    # max_log_mel None, output_gain_db 0.0 and median_frames 1 give the plain inverse.
    median_frames: int = 3

    def __post_init__(self) -> None:
        if self.median_frames < 1 or self.median_frames % 2 == 0:
            raise ValueError(f"median_frames must be odd and positive, not {self.median_frames}")


class MelCodec(nn.Module):
    """waveform <-> log10 magnitude mel frames at sample_rate / hop frames per second."""

    def __init__(self, cfg: MelCodecConfig = MelCodecConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.sample_rate = cfg.sample_rate
        self.latent_dim = cfg.n_mels
        self.hop = cfg.hop
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop, n_mels=cfg.n_mels,
            f_max=cfg.f_max, power=1.0, norm="slaney", mel_scale="slaney", center=True)
        self.inverse_mel = torchaudio.transforms.InverseMelScale(
            n_stft=cfg.n_fft // 2 + 1, n_mels=cfg.n_mels, sample_rate=cfg.sample_rate, f_max=cfg.f_max,
            norm="slaney", mel_scale="slaney")
        self.griffin_lim = torchaudio.transforms.GriffinLim(
            n_fft=cfg.n_fft, hop_length=cfg.hop, power=1.0, n_iter=cfg.griffin_lim_iters,
            rand_init=False)  # zero-phase start: deterministic, no global RNG use

    def frames(self, seconds: float) -> int:
        """Latent length for a duration: ceil(samples / hop), the official latent rule with no downsampling."""
        return math.ceil(seconds * self.sample_rate / self.hop)

    def encode(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, samples) float -> (B, ceil(samples / hop), n_mels) log10 mel (frame k centred at k * hop)."""
        n = waveform.shape[-1]
        frames = -(-n // self.hop)
        padded = torch.nn.functional.pad(waveform.float(), (0, frames * self.hop - n))
        mel = self.mel(padded)[..., :frames]
        return torch.log10(mel.clamp_min(self.cfg.floor)).transpose(1, 2)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, frames, n_mels) log10 mel -> (B, frames * hop) waveform via Griffin-Lim: each bin median-filtered
        over time and capped, then scaled to the config's level."""
        latents = median_over_time(latents.float(), self.cfg.median_frames)
        if self.cfg.max_log_mel is not None:
            latents = latents.clamp_max(self.cfg.max_log_mel)
        mel = torch.pow(10.0, latents.transpose(1, 2))
        mel = torch.cat([mel, mel[..., -1:]], dim=-1)  # a centred STFT of F+1 frames spans F hops
        gain = 10.0 ** (self.cfg.output_gain_db / 20.0)
        return self.griffin_lim(self.inverse_mel(mel).clamp_min(0.0)) * gain


def median_over_time(latents: torch.Tensor, width: int) -> torch.Tensor:
    """(B, frames, bins) -> the same shape, each bin's running median over `width` frames (odd), the edges
    repeated."""
    # Written here: torch and torchaudio have no public median filter (torchaudio's private `_median_smoothing`
    # pads one side only, which would move every onset by width // 2 frames).
    if width <= 1:
        return latents
    padded = torch.nn.functional.pad(latents.transpose(1, 2), (width // 2, width // 2), mode="replicate")
    return padded.unfold(-1, width, 1).median(dim=-1).values.transpose(1, 2)
