"""Test helpers: a small edit at a given frame rate and noise stems written with `write_stem`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import opentimelineio as otio

from otio_foley.stems import Stem, stem_basename, write_stem

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
RATES = [24000 / 1001, 24.0, 25.0, 30000 / 1001]
HEAD, TAIL = 6, 4
SOURCE_RATE = 16000

# (label, shot index, record start frame, record frames, take); "FX dog" on shots 1 and 4 overlaps
# (V2 clip over V1), so shot 4 spills onto a second track; shot 1 also has a muted take 2.
LAYOUT = [("FX dog", 1, 0, 48, 1), ("FX dog", 2, 48, 30, 1), ("FX rain", 3, 78, 60, 1),
          ("FX dog", 4, 40, 50, 1), ("FX dog", 1, 0, 48, 2)]


def make_edit(rate: float) -> otio.schema.Timeline:
    """V1 with three clips, V2 with one clip over the V1 cut, an A1 dialogue track; TC 01:00:00:00."""
    tl = otio.schema.Timeline(name="Edit", global_start_time=RT.from_timecode("01:00:00:00", rate))
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for i, length in enumerate([48, 30, 60], start=1):
        ref = otio.schema.ExternalReference(target_url=f"/media/sh{i:03d}.mov",
                                           available_range=TR(RT(0, rate), RT(1000, rate)))
        v1.append(otio.schema.Clip(name=f"sh{i:03d}", media_reference=ref,
                                   source_range=TR(RT(100, rate), RT(length, rate)),
                                   metadata={"PremierePro_OTIO": {"LinkID": "1"}}))
    v1[0].effects.append(otio.schema.LinearTimeWarp(time_scalar=1.0))  # Premiere must not see this
    v1[2].effects.append(otio.schema.FreezeFrame())  # a real retime stays
    v2 = otio.schema.Track(name="V2", kind=otio.schema.TrackKind.Video)
    v2.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(40, rate))))
    v2.append(otio.schema.Clip(name="sh004", media_reference=otio.schema.ExternalReference(
        target_url="/media/sh004.mov", available_range=TR(RT(0, rate), RT(1000, rate))),
        source_range=TR(RT(0, rate), RT(50, rate))))
    a1 = otio.schema.Track(name="A1 dialogue", kind=otio.schema.TrackKind.Audio)
    a1.append(otio.schema.Clip(name="dialogue", media_reference=otio.schema.ExternalReference(
        target_url="/media/sh001.mov", available_range=TR(RT(0, rate), RT(1000, rate))),
        source_range=TR(RT(100, rate), RT(138, rate))))
    for track in (v1, v2, a1):
        tl.tracks.append(track)
    return tl


def make_stems(rate: float, folder: Path, layout=LAYOUT, head: int = HEAD, tail: int = TAIL) -> list[Stem]:
    """One noise WAV per layout row in `folder` (a `stems/` directory), handles included."""
    folder.mkdir(parents=True, exist_ok=True)
    stems = []
    for n, (label, shot, start, length, take) in enumerate(layout):
        path = folder / stem_basename(f"sh{shot:03d}", label, f"take{take}")
        seconds = (head + length + tail) / rate
        audio = np.random.default_rng(n).normal(0.0, 0.1, int(seconds * SOURCE_RATE))
        write_stem(path, audio, source_rate=SOURCE_RATE, time_reference_samples=0,
                   description=label, frame_rate=rate, frames=head + length + tail)
        stems.append(Stem(path=path, label=label, shot_index=shot, shot_name=f"sh{shot:03d}",
                          record_range=TR(RT(start, rate), RT(length, rate)), head_frames=head,
                          tail_frames=tail, sample_rate=48000, take=take,
                          provenance={"prompt": f"{label} #{shot}", "negative_prompt": "music",
                                      "seed": 1000 + n, "steps": 25, "cfg": 4.5,
                                      "model": "selva-tiny", "model_sha256": "ab" * 32,
                                      "cue_hash": f"cue{n}", "source_clip": f"sh{shot:03d}",
                                      "source_range": [100, length]}))
    return stems
