"""Target `otio-resolve`: native .otio for DaVinci Resolve 18.5+.

Resolve 20.2 rejects `file://` URLs and misresolves relative paths, so media stay plain absolute
POSIX paths (what `foley_timeline` writes). Stock schemas only: Resolve 21.1 stops on unknown ones.
Our tracks are declared mono in Resolve's own `Resolve_OTIO` dialect.
"""
from __future__ import annotations

import copy

import opentimelineio as otio

from otio_foley.writeback import foley_clips, foley_tracks

MONO_CHANNEL = [{"Source Channel ID": 0, "Source Track ID": 0}]


def for_resolve(input_otio: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy of the foley timeline with Resolve's audio metadata on our tracks and clips."""
    timeline = copy.deepcopy(input_otio)
    timeline.metadata.setdefault("Resolve_OTIO", {"Resolve OTIO Meta Version": "1.0"})
    for track in foley_tracks(timeline):
        track.metadata["Resolve_OTIO"] = {"Audio Type": "Mono"}
    for clip in foley_clips(timeline):
        clip.metadata["Resolve_OTIO"] = {"Channels": MONO_CHANNEL}
    return timeline


def write_to_string(input_otio: otio.schema.Timeline) -> str:
    return otio.adapters.write_to_string(for_resolve(input_otio), "otio_json")
