"""Stems: one Broadcast WAV per (clip, source, take), and the record that write-back needs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio


@dataclass(frozen=True)
class Stem:
    path: Path  # absolute path of the WAV under OUTDIR/stems/
    label: str  # track label, e.g. "FX dog barking" or the cue's `track`
    shot_index: int  # Shot.index it belongs to
    shot_name: str
    record_range: otio.opentime.TimeRange  # where the stem's body plays (timeline-relative)
    head_frames: int  # handle material before record_range.start_time inside the file
    tail_frames: int  # handle material after the end
    sample_rate: int
    take: int = 1  # 1 = the take on the source's track; >1 = alternates on muted tracks
    provenance: dict = field(default_factory=dict, compare=False, hash=False)  # -> otio_foley metadata
