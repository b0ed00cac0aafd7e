"""Token counts of every stream for a clip duration (MMAudio/SelVA conventions, parity README §3).

The network weights do not depend on duration; only these lengths (and the RoPE tables built from them) do,
so they are recomputed for every clip rather than fixed at construction.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

SYNC_FPS = 25  # Synchformer input frame rate
SYNC_SEGMENT = 16  # frames per Synchformer segment
SYNC_STRIDE = 8  # frames between segment starts
SYNC_TOKENS_PER_SEGMENT = 8  # output tokens per segment
CLIP_FPS = 8  # CLIP image features per second
TEXT_TOKENS = 77  # CLIP text length
LATENT_DOWNSAMPLE = 2  # mel frames per latent frame (the VAE's time downsampling)


@dataclass(frozen=True)
class SequenceLengths:
    latent: int
    clip: int
    sync: int
    text: int = TEXT_TOKENS

    @property
    def sync_segments(self) -> int:
        return self.sync // SYNC_TOKENS_PER_SEGMENT


def sequence_lengths(duration: float, sample_rate: int = 16_000, hop_length: int = 256,
                     latent_downsample: int = LATENT_DOWNSAMPLE) -> SequenceLengths:
    """Lengths for `duration` seconds, computed exactly as the official sequence config does.

    latent: ceil in float arithmetic; clip: int truncation; sync: whole 16-frame segments at stride 8.
    """
    segments = int((duration * SYNC_FPS - SYNC_SEGMENT) // SYNC_STRIDE + 1)
    if segments < 1:
        raise ValueError(f"duration {duration:g} s is shorter than one sync segment "
                         f"({min_duration():g} s)")
    return SequenceLengths(
        latent=math.ceil(duration * sample_rate / hop_length / latent_downsample),
        clip=int(duration * CLIP_FPS),
        sync=segments * SYNC_TOKENS_PER_SEGMENT,
    )


def min_duration() -> float:
    """Shortest duration that yields one sync segment (0.64 s)."""
    return SYNC_SEGMENT / SYNC_FPS


@functools.cache  # a pure function of three numbers, asked for at every forward pass
def timed_sync_weights(segments: int, latent_len: int, latent_rate: float) -> torch.Tensor:
    """(latent_len, segments * 8) weights that give each latent frame the mean of the sync tokens encoding
    the video frame it falls in: token j of segment s encodes frames 8s + 2j and 8s + 2j + 1, and segments
    overlap by half, so most frames are seen by two tokens. Frames past the last segment take its last token.

    The official upsampling (nearest over the flattened token sequence) spreads the tokens evenly instead,
    which puts a token up to 8 frames from the frames it encodes in a 2 s window (see `GeneratorConfig`).
    """
    tubelet = SYNC_SEGMENT // SYNC_TOKENS_PER_SEGMENT
    last_frame = SYNC_STRIDE * (segments - 1) + SYNC_SEGMENT - 1
    weights = torch.zeros(latent_len, segments * SYNC_TOKENS_PER_SEGMENT)
    for f in range(latent_len):
        frame = min(int((f + 0.5) / latent_rate * SYNC_FPS), last_frame)
        first = max(0, -(-(frame - SYNC_SEGMENT + 1) // SYNC_STRIDE))
        tokens = [s * SYNC_TOKENS_PER_SEGMENT + (frame - SYNC_STRIDE * s) // tubelet
                  for s in range(first, min(segments - 1, frame // SYNC_STRIDE) + 1)]
        weights[f, tokens] = 1.0 / len(tokens)
    return weights


def token_means(per_frame: torch.Tensor, segments: int, latent_rate: float) -> torch.Tensor:
    """(B, latent_len, C) → (B, segments*8, C): each sync token gets the mean of the latent frames that the timed
    placement gives it (what the audio does while the token's frames are shown)."""
    weights = timed_sync_weights(segments, per_frame.shape[1], latent_rate).to(per_frame)
    return (weights / weights.sum(0).clamp_min(1e-9)).T @ per_frame


def token_instants(segments: int) -> torch.Tensor:
    """(segments*8,) index of the frame pair each sync token encodes: tokens of overlapping segments that see
    the same frames share an index (token j of segment s encodes frames 8s + 2j and 8s + 2j + 1)."""
    tubelet = SYNC_SEGMENT // SYNC_TOKENS_PER_SEGMENT
    starts = SYNC_STRIDE * torch.arange(segments).repeat_interleave(SYNC_TOKENS_PER_SEGMENT)
    return (starts + tubelet * torch.arange(SYNC_TOKENS_PER_SEGMENT).repeat(segments)) // tubelet
