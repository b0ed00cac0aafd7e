"""Test edits built programmatically with OTIO (shared by test_edit, test_cues, test_jobs, test_cli_edit).

`build_edit(folder, fps)` makes one timeline exercising everything read_shots must handle; frame numbers
below are at the timeline rate.

    V1: gap 10 | A 48 (media/a.mov, relative) | dissolve 6/6 | B 48 @2x (/OLD/b.mov, needs --media-root)
        | [nested stack trimmed 5..25: C 48 from 300] | D 24 freeze | M 12 missing | G 12 generator
        | L 20 s long | S 3 frames (short) | X 10 (media file absent)
    V2: gap 20 | O 24 (media/a.mov) | off 10 (disabled)
    V3 (disabled): hidden 24
    A1: dialog 48 (audio track: ignored)
"""
from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange

RATES = [24000 / 1001, 24.0, 25.0, 30000 / 1001]
RATE_IDS = ["23.976", "24", "25", "29.97"]


def make_media(path: Path, size: int = 4096, fill: bytes = b"m") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fill * size)
    return path


def clip(name: str, start: int, duration: int, fps: float, url: str | None = None) -> otio.schema.Clip:
    ref = otio.schema.ExternalReference(target_url=url) if url else None
    item = otio.schema.Clip(name=name, source_range=TR(RT(start, fps), RT(duration, fps)))
    if ref is not None:
        item.media_reference = ref
    return item


def gap(duration: int, fps: float) -> otio.schema.Gap:
    return otio.schema.Gap(source_range=TR(RT(0, fps), RT(duration, fps)))


def start_tc(fps: float) -> RT:
    return otio.opentime.from_timecode("01:00:00:00", fps)


def build_edit(folder: Path, fps: float) -> otio.schema.Timeline:
    """The timeline described in the module docstring; media files are created under `folder`."""
    make_media(folder / "media" / "a.mov")
    make_media(folder / "new" / "b.mov", fill=b"b")
    make_media(folder / "media" / "c.mov", fill=b"c")
    long_frames = round(20 * fps)
    tl = otio.schema.Timeline(name="edit", global_start_time=start_tc(fps))
    v1 = otio.schema.Track(name="V1")
    tl.tracks.append(v1)
    v1.append(gap(10, fps))
    a = clip("A", 100, 48, fps, "media/a.mov")
    a.markers.append(otio.schema.Marker(name="door slam", marked_range=TR(RT(110, fps), RT(1, fps)),
                                        comment="hard"))
    v1.append(a)
    v1.append(otio.schema.Transition(in_offset=RT(6, fps), out_offset=RT(6, fps)))
    b = clip("B", 200, 48, fps, "/OLD/b.mov")
    b.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    v1.append(b)
    nest = otio.schema.Stack(name="nest", source_range=TR(RT(5, fps), RT(20, fps)))
    inner = otio.schema.Track(name="inner")
    inner.append(clip("C", 300, 48, fps, str(folder / "media" / "c.mov")))
    inner.append(clip("trimmed-away", 0, 24, fps, str(folder / "media" / "c.mov")))
    nest.append(inner)
    v1.append(nest)
    d = clip("D", 400, 24, fps, str(folder / "media" / "c.mov"))
    d.effects.append(otio.schema.FreezeFrame())
    v1.append(d)
    v1.append(clip("M", 0, 12, fps))
    g = clip("G", 0, 12, fps)
    g.media_reference = otio.schema.GeneratorReference(generator_kind="SMPTEBars")
    v1.append(g)
    v1.append(clip("L", 0, long_frames, fps, "media/a.mov"))
    v1.append(clip("S", 50, 3, fps, "media/a.mov"))
    v1.append(clip("X", 0, 10, fps, "media/absent.mov"))
    v2 = otio.schema.Track(name="V2")
    tl.tracks.append(v2)
    v2.append(gap(20, fps))
    v2.append(clip("O", 0, 24, fps, "media/a.mov"))
    off = clip("off", 0, 10, fps, "media/a.mov")
    off.enabled = False
    v2.append(off)
    v3 = otio.schema.Track(name="V3")
    v3.enabled = False
    v3.append(clip("hidden", 0, 24, fps, "media/a.mov"))
    tl.tracks.append(v3)
    a1 = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    a1.append(clip("dialog", 0, 48, fps, "media/a.mov"))
    tl.tracks.append(a1)
    return tl


def write_edit(folder: Path, fps: float, name: str = "edit.otio") -> Path:
    path = folder / name
    otio.adapters.write_to_file(build_edit(folder, fps), str(path))
    return path

