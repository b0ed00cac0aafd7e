"""Token counts of every stream for a clip duration (MMAudio/SelVA conventions, parity README §3).

The network weights do not depend on duration; only these lengths (and the RoPE tables built from them) do,
so they are recomputed for every clip rather than fixed at construction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

SYNC_FPS = 25  # Synchformer input frame rate
SYNC_SEGMENT = 16  # frames per Synchformer segment
SYNC_STRIDE = 8  # frames between segment starts
SYNC_TOKENS_PER_SEGMENT = 8  # output tokens per segment
CLIP_FPS = 8  # CLIP image features per second
TEXT_TOKENS = 77  # CLIP text length


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
                     latent_downsample: int = 2) -> SequenceLengths:
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
