"""Write-back: the input edit, unchanged, plus one audio track per source label holding the stems.

`foley_timeline` builds a target-neutral timeline (plain absolute media paths, `otio_foley`
provenance); each target in `otio_foley.adapters` (an OTIO write adapter, also registered through
`adapters/plugin_manifest.json`) adds its NLE's URL form and metadata and serializes it.

Track layout:
- one track per label (`FX dog barking`, or the cue's `track`), stems at their record frames;
- stems of one label that overlap spill onto `<label> (2)`, `(3)`, … (greedy interval partitioning);
- takes > 1 go on muted tracks `<label> take N`;
- every clip's media is the whole WAV (available_range from 0), its source_range skips the head
  handle, so the editor can trim out into the handles.

Rendering onto an edit that otio-foley wrote before replaces its old tracks instead of stacking new
ones: a track is ours when it carries `otio_foley` metadata or, after a round trip that dropped
metadata (FCP7 XML), when every clip on it plays a WAV from a `stems/` folder.
"""
from __future__ import annotations

import copy
import importlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import opentimelineio as otio

from otio_foley import __version__
from otio_foley.errors import UserError
from otio_foley.stems import Stem

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange

NAMESPACE = "otio_foley"
STEMS_DIR = "stems"  # the orchestrator writes every WAV into OUTDIR/stems/


@dataclass(frozen=True)
class Target:
    """One output format: the adapter module in `otio_foley.adapters` and the output file suffix."""

    module: str
    suffix: str


TARGETS: dict[str, Target] = {
    "otio-resolve": Target("resolve", ".resolve.otio"),
    "otio-premiere": Target("premiere", ".premiere.otio"),
    "fcp7xml": Target("fcp7", ".fcp7.xml"),
    "aaf": Target("aaf", ".avid.aaf"),
    "otioz": Target("otioz", ".resolve.otioz"),
}


def write_timelines(timeline: otio.schema.Timeline, stems: list[Stem], outdir: Path | str,
                    targets: Iterable[str] = ("otio-resolve", "otio-premiere"), *,
                    edit_path: Path | str) -> dict[str, Path]:
    """Write the foley timeline once per target into `outdir`; returns {target: file}.

    Each file is written under a temporary name in `outdir` and renamed when complete. `timeline`
    (the edit as read from `edit_path`) is not modified. File names: `<edit>.foley<target suffix>`.
    An unknown target name is the user's mistake (UserError); a missing stem file is ours.
    """
    targets = list(targets)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UserError(f"unknown output target(s) {', '.join(unknown)}",
                        fix=f"choose from {', '.join(TARGETS)}")
    missing = [str(s.path) for s in stems if not Path(s.path).is_file()]
    if missing:
        raise FileNotFoundError(f"stems not written yet: {missing}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    result = foley_timeline(timeline, stems, edit_path=edit_path)
    name = Path(edit_path).name  # rendering onto our own output: edit.foley.resolve.otio -> edit
    base = name.split(".foley.")[0] if ".foley." in name else Path(name).stem
    written = {}
    for name in targets:
        target = TARGETS[name]
        adapter = importlib.import_module(f"otio_foley.adapters.{target.module}")
        path = outdir / f"{base}.foley{target.suffix}"
        write_atomic(path, lambda tmp, a=adapter: _write(a, result, tmp))
        written[name] = path
    return written


def foley_timeline(timeline: otio.schema.Timeline, stems: list[Stem], *,
                   edit_path: Path | str) -> otio.schema.Timeline:
    """A copy of `timeline` without earlier otio-foley tracks, plus tracks for `stems`."""
    result = copy.deepcopy(timeline)
    tracks = result.tracks
    for index in reversed(range(len(tracks))):
        if is_foley_track(tracks[index]):
            del tracks[index]
    for track in build_tracks(stems):
        tracks.append(track)
    result.metadata[NAMESPACE] = {"version": __version__, "edit": str(edit_path)}
    return result


def build_tracks(stems: list[Stem]) -> list[otio.schema.Track]:
    """Audio tracks for `stems`: labels in first-appearance order, take 1 before alternates."""
    groups: dict[tuple[str, int], list[Stem]] = {}
    order = {}
    for stem in stems:
        order.setdefault(stem.label, len(order))
        groups.setdefault((stem.label, stem.take), []).append(stem)
    rates = {stem.record_range.duration.rate for stem in stems}
    if len(rates) > 1:
        raise ValueError(f"stems disagree on the timeline frame rate: {sorted(rates)}")
    tracks = []
    for label, take in sorted(groups, key=lambda key: (order[key[0]], key[1])):
        for lane_no, lane in enumerate(_lanes(groups[label, take]), start=1):
            name = label if take == 1 else f"{label} take {take}"
            if lane_no > 1:
                name += f" ({lane_no})"
            track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio,
                                      metadata={NAMESPACE: {"label": label, "take": take, "lane": lane_no}})
            track.enabled = take == 1
            cursor = 0
            for stem in lane:
                start, length = _record_frames(stem)
                rate = stem.record_range.duration.rate
                if start > cursor:
                    track.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(start - cursor, rate))))
                track.append(stem_clip(stem))
                cursor = start + length
            tracks.append(track)
    return tracks


def stem_clip(stem: Stem) -> otio.schema.Clip:
    """The clip playing `stem`'s body at its record range, with the whole WAV as its media."""
    rate = stem.record_range.duration.rate
    _, length = _record_frames(stem)
    total = stem.head_frames + length + stem.tail_frames
    ref = otio.schema.ExternalReference(target_url=Path(stem.path).resolve().as_posix(),
                                       available_range=TR(RT(0, rate), RT(total, rate)))
    body = TR(RT(stem.head_frames, rate), RT(length, rate))
    info = {**stem.provenance, "label": stem.label, "take": stem.take, "shot_index": stem.shot_index,
            "shot_name": stem.shot_name, "head_frames": stem.head_frames,
            "tail_frames": stem.tail_frames, "sample_rate": stem.sample_rate,
            "bit_depth": stem.bit_depth}
    name = f"{stem.shot_name} {stem.label}" + (f" take {stem.take}" if stem.take > 1 else "")
    clip = otio.schema.Clip(name=name, media_reference=ref, source_range=body,
                            metadata={NAMESPACE: info})
    prompt = str(stem.provenance.get("prompt") or stem.label)
    details = ", ".join(f"{key} {stem.provenance[key]}" for key in ("seed", "steps", "cfg", "model")
                        if key in stem.provenance)
    clip.markers.append(otio.schema.Marker(name=prompt, marked_range=body,
                                           color=otio.schema.MarkerColor.GREEN,
                                           comment=f"otio-foley: {prompt}" + (f" ({details})" if details else "")))
    return clip


def is_foley_track(item: otio.core.Item) -> bool:
    """True for an audio track otio-foley made: tagged, or (metadata lost) all clips are our stems."""
    if not isinstance(item, otio.schema.Track) or item.kind != otio.schema.TrackKind.Audio:
        return False
    if NAMESPACE in item.metadata:
        return True
    clips = list(item.find_clips(shallow_search=True))
    return bool(clips) and all(NAMESPACE in c.metadata or _plays_a_stem(c) for c in clips)


def foley_tracks(timeline: otio.schema.Timeline) -> Iterator[otio.schema.Track]:
    """The tracks of `timeline` that otio-foley made (what the targets decorate)."""
    return (t for t in timeline.tracks if is_foley_track(t))


def foley_clips(timeline: otio.schema.Timeline) -> Iterator[otio.schema.Clip]:
    for track in foley_tracks(timeline):
        yield from track.find_clips(shallow_search=True)


def media_path(target_url: str) -> str:
    """The local path in a plain path or a (percent-encoded, maybe `localhost`) file:// URL."""
    parsed = urlparse(target_url)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return target_url


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` for a temporary file next to `path`, then rename it onto `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix="".join(path.suffixes[-1:]),
                               dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # some writers (otioz, pyaaf2) refuse to overwrite an existing file
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write(adapter, timeline: otio.schema.Timeline, path: Path) -> None:
    """OTIO adapter convention: a file writer if the module has one, else its string writer."""
    if hasattr(adapter, "write_to_file"):
        adapter.write_to_file(timeline, str(path))
    else:
        path.write_text(adapter.write_to_string(timeline), encoding="utf-8")


def _plays_a_stem(clip: otio.schema.Clip) -> bool:
    url = getattr(clip.media_reference, "target_url", None) or ""
    parts = re.split(r"[\\/]+", media_path(url))
    return len(parts) >= 2 and parts[-2] == STEMS_DIR and parts[-1].lower().endswith(".wav")


def _record_frames(stem: Stem) -> tuple[int, int]:
    """(start, length) in whole timeline frames; edges are rounded, not the duration."""
    rng, rate = stem.record_range, stem.record_range.duration.rate
    start = round(rng.start_time.value_rescaled_to(rate))
    return start, round(rng.end_time_exclusive().value_rescaled_to(rate)) - start


def _lanes(stems: list[Stem]) -> list[list[Stem]]:
    """Greedy interval partitioning: each stem goes on the first lane free at its start."""
    lanes: list[list[Stem]] = []
    ends: list[int] = []
    for stem in sorted(stems, key=lambda s: (_record_frames(s)[0], s.shot_index)):
        start, length = _record_frames(stem)
        free = next((i for i, end in enumerate(ends) if end <= start), None)
        if free is None:
            lanes.append([])
            ends.append(0)
            free = len(lanes) - 1
        lanes[free].append(stem)
        ends[free] = start + length
    return lanes
