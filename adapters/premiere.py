"""Target `otio-premiere`: .otio for Premiere Pro 25.6+ (File > Import).

Follows what Premiere itself writes: percent-encoded `file://` URLs, `PremierePro_OTIO` audio
channel metadata and a LinkID per clip. Every stem gets its own, unused LinkID, otherwise Premiere
fuses unrelated clips into one linked group. No-op `LinearTimeWarp(1.0)` effects are dropped: Premiere
reads any time warp as a retimed clip and drops the clip's intrinsic Opacity/Motion.
"""
from __future__ import annotations

import copy
from pathlib import Path

import opentimelineio as otio

from otio_foley.writeback import foley_clips, foley_tracks, media_path

MONO = {"ChannelType": "Mono", "NumberOfChannels": 1}


def for_premiere(input_otio: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy of the foley timeline in Premiere's OTIO dialect."""
    timeline = copy.deepcopy(input_otio)
    for clip in timeline.find_clips():
        for effect in list(clip.effects):
            if type(effect) is otio.schema.LinearTimeWarp and effect.time_scalar == 1.0:
                clip.effects.remove(effect)
    taken = {str(c.metadata.get("PremierePro_OTIO", {}).get("LinkID")) for c in timeline.find_clips()}
    next_id = 1
    for track in foley_tracks(timeline):
        track.metadata["PremierePro_OTIO"] = {"AudioChannels": dict(MONO)}
    for clip in foley_clips(timeline):
        while str(next_id) in taken:
            next_id += 1
        taken.add(str(next_id))
        ref = clip.media_reference
        ref.target_url = Path(media_path(ref.target_url)).as_uri()
        clip.metadata["PremierePro_OTIO"] = {
            "AudioChannels": {"ChannelType": "Mono", "SecondaryAssignments": [{"SecondaryChannelIndex": 0}]},
            "LinkID": str(next_id), "OriginalChannelGroupIndex": 0, "SourceClipIndex": 0}
    return timeline


def write_to_string(input_otio: otio.schema.Timeline) -> str:
    return otio.adapters.write_to_string(for_premiere(input_otio), "otio_json")
