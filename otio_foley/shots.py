"""The shot list: every enabled clip on enabled video tracks, with its record and source time.

Produced by `otio_foley.edit.read_shots`; consumed by cue matching, planning and write-back.
All times are OTIO RationalTime/TimeRange at the timeline frame rate unless named otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio


@dataclass(frozen=True)
class Shot:
    index: int  # 1-based timeline order over enabled video clips (what `index:` cues match)
    name: str  # the clip's name (what `clip:` cues match)
    track_name: str  # the top-level video track it lies on, e.g. "V1"
    rate: float  # timeline frame rate
    record_range: otio.opentime.TimeRange  # where it plays, timeline-relative (0 = timeline start)
    record_start_tc: str  # record timecode of its first frame, global_start_time included
    visible_range: otio.opentime.TimeRange  # record range widened under transitions
    media_path: Path | None  # None: missing or generator media (see media_problem)
    source_range: otio.opentime.TimeRange | None  # media time of visible_range, retime applied
    # (freeze: the one held frame; computed from the edit even when the media is missing)
    time_scalar: float = 1.0  # LinearTimeWarp scalar; 0.0 = freeze frame
    # media time of the file's first frame: the reference's available_range start (e.g. 01:00:00:00 for
    # Resolve/Premiere exports); None = the media time is seconds from the start of the file
    media_origin: otio.opentime.RationalTime | None = None
    media_problem: str | None = None  # why media_path is None, for the user
    markers: tuple[str, ...] = ()  # names/comments of markers on the clip
    metadata: dict = field(default_factory=dict, compare=False, hash=False)  # producer metadata
    warnings: tuple[str, ...] = ()  # things the user should check (e.g. retimed clip), shown by the CLI

    def file_seconds(self, media_time: otio.opentime.RationalTime) -> float:
        """Seconds from the start of the media file for `media_time` (a time of `source_range`), as the
        decoder wants it; messages keep the media time itself."""
        origin = self.media_origin.to_seconds() if self.media_origin is not None else 0.0
        return media_time.to_seconds() - origin
