"""Target `aaf`: an AAF for Avid Media Composer and Pro Tools, written with pyaaf2 directly.

otio-aaf-adapter 2.0 cannot make a file these accept: it needs MobIDs for every clip, drops audio
track names, crashes when embedding WAV essence and writes no timecode track (Resolve and Avid
reject AAFs without a primary timecode track). This writer makes one composition holding only the
otio-foley tracks, with a timecode track at the edit's start timecode and the stems' PCM embedded,
so the file is self-contained: the editor imports it and cuts the tracks into the sequence by
timecode. AAF has no track mute, so alternate takes come as further tracks named `… take N`.
"""
from __future__ import annotations

from fractions import Fraction

import aaf2
import opentimelineio as otio

from otio_foley.stems import exact_rate
from otio_foley.writeback import NAMESPACE, foley_tracks, media_path


def write_to_file(input_otio: otio.schema.Timeline, filepath: str) -> None:
    tracks = list(foley_tracks(input_otio))
    clips = [c for t in tracks for c in t.find_clips(shallow_search=True)]
    if not clips:
        raise ValueError("the timeline has no otio-foley stems to write as AAF")
    rate = clips[0].source_range.duration.rate
    edit_rate = exact_rate(rate)
    start = input_otio.global_start_time
    start_frame = round(start.value_rescaled_to(rate)) if start is not None else 0
    length = max(round(t.duration().value_rescaled_to(rate)) for t in tracks)
    with aaf2.open(filepath, "w") as f:
        comp = f.create.CompositionMob(f"{input_otio.name or 'edit'} foley")
        f.content.mobs.append(comp)
        tc_slot = comp.create_timeline_slot(edit_rate)
        tc_slot.name = "TC1"
        tc_slot.segment = f.create.Timecode(round(float(edit_rate)), drop=False)
        tc_slot.segment.start = start_frame
        tc_slot.segment.length = length
        for number, track in enumerate(tracks, start=1):
            slot = comp.create_sound_slot(edit_rate)
            slot.name = track.name
            slot["PhysicalTrackNumber"].value = number
            sequence = slot.segment
            sequence.length = round(track.duration().value_rescaled_to(rate))
            for item in track:
                frames = round(item.duration().value_rescaled_to(rate))
                if isinstance(item, otio.schema.Clip):
                    sequence.components.append(_source_clip(f, item, edit_rate, rate))
                else:
                    sequence.components.append(f.create.Filler("sound", frames))


def _source_clip(f: aaf2.File, clip: otio.schema.Clip, edit_rate: Fraction, rate: float):
    """A master mob embedding the stem's PCM, and a clip of its body (the handles stay in the file)."""
    master = f.create.MasterMob(clip.name)
    f.content.mobs.append(master)
    slot = master.import_audio_essence(media_path(clip.media_reference.target_url), edit_rate)
    prompt = clip.metadata.get(NAMESPACE, {}).get("prompt")
    if prompt:
        master.comments["otio-foley prompt"] = str(prompt)
    body = clip.source_range
    return master.create_source_clip(slot.slot_id, start=round(body.start_time.value_rescaled_to(rate)),
                                     length=round(body.duration.value_rescaled_to(rate)))
