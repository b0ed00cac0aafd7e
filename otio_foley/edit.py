"""Reading an NLE edit and turning it into the shot list.

`read_edit` opens anything an installed OTIO adapter reads and turns every failure into a one-line
`UserError`. `read_shots` walks the enabled video clips and computes, for each, where it plays
(record range, clamped by every enclosing trim: OTIO core does not clamp nested stacks), the record
timecode, the range widened under transitions, and the media range to decode with LinearTimeWarp /
FreezeFrame applied as the OTIO spec reads them (OTIO core ignores effects in all range maths).
The time maths is in small pure functions, in the style of OTIO's `track_algo`.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Sequence

import opentimelineio as otio

from otio_foley.errors import UserError
from otio_foley.shots import Shot

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange

MediaRoots = Sequence[tuple[str, str]]

# suffix -> (adapter name, the package that provides it); OTIO's own suffix dispatch picks the adapter,
# this table only makes the "not installed" message name the fix.
ADAPTER_PACKAGES = {
    ".xml": ("fcp_xml", "otio-fcp-adapter"),
    ".aaf": ("AAF", "otio-aaf-adapter (pip install 'otio-foley[aaf]')"),
    ".edl": ("cmx_3600", "otio-cmx3600-adapter"),
    ".fcpxml": ("fcpx_xml", "otio-fcpx-xml-adapter"),
    ".xges": ("xges", "otio-xges-adapter"),
}
_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")  # C:\..., C:/..., \\server\share


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

def parse_media_root(value: str) -> tuple[str, str]:
    """`OLD=NEW` from the command line -> ("OLD", "NEW")."""
    old, sep, new = value.partition("=")
    if not sep or not old or not new:
        raise UserError(f"--media-root {value!r} is not OLD=NEW", fix="e.g. --media-root /Volumes/Edit=/mnt/edit")
    return old, new


def read_edit(path: str | os.PathLike, *, rate: float | None = None,
              media_root: MediaRoots = ()) -> otio.schema.Timeline:
    """The edit at `path` as an OTIO Timeline (the file itself is never modified).

    EDLs carry no frame rate, so they need `rate`. An `.otioz` is unpacked to a temporary folder and its
    bundled media paths made absolute. `media_root` is checked here (every NEW folder must exist) so a
    typo fails before any decoding; the remapping itself happens in `read_shots`.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise UserError("edit file not found", path=name, fix="check the path")
    suffix = path.suffix.lower()
    if suffix == ".edl" and rate is None:
        raise UserError("an EDL has no frame rate", path=name, fix="pass --rate, e.g. --rate 24 or --rate 23.976")
    for old, new in media_root:
        if not Path(new).is_dir():
            raise UserError(f"--media-root {old}={new}: folder {new!r} does not exist", fix="check the NEW part")
    kwargs: dict = {}
    if suffix == ".edl":
        kwargs["rate"] = timecode_rate(rate)  # EDL timecodes need an exact SMPTE rate (23.976 -> 24000/1001)
    bundle_dir = None
    if suffix == ".otioz":
        bundle_dir = Path(tempfile.mkdtemp(prefix="otio-foley-otioz-"))
        kwargs["extract_to_directory"] = str(bundle_dir)
    try:
        result = otio.adapters.read_from_file(name, **kwargs)
    except otio.exceptions.NoKnownAdapterForExtensionError:
        adapter, package = ADAPTER_PACKAGES.get(suffix, (None, None))
        fix = f"install {package}" if package else "export .otio, FCP7 XML, AAF or EDL from your editor"
        raise UserError(f"no reader for '{suffix or path.name}' files", path=name, fix=fix) from None
    except Exception as exc:  # adapters raise anything (XML, JSON, zip, AAF errors): all mean "unreadable"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot read edit: {first[:200]}", path=name,
                        fix="re-export it from your editor; is the file complete?") from None
    timeline = _single_timeline(result, name)
    if bundle_dir is not None:
        _absolutize_media(timeline, bundle_dir)
    if suffix == ".edl":
        edl_record_start_to_global(timeline)
    if not list(timeline.video_tracks()):
        raise UserError("the edit has no video track", path=name, fix="export the picture edit, not an audio-only timeline")
    return timeline


def _single_timeline(result: otio.core.SerializableObject, name: str) -> otio.schema.Timeline:
    """Adapters may return a collection (FCP7 XML with several sequences): accept exactly one timeline."""
    if isinstance(result, otio.schema.Timeline):
        return result
    timelines = list(result.find_children(descended_from_type=otio.schema.Timeline)) \
        if isinstance(result, otio.schema.SerializableCollection) else []
    if len(timelines) == 1:
        return timelines[0]
    if not timelines:
        raise UserError("the file holds no timeline", path=name, fix="export a sequence/timeline")
    names = ", ".join(repr(t.name) for t in timelines)
    raise UserError(f"the file holds {len(timelines)} timelines ({names})", path=name,
                    fix="export just the sequence to render")


def edl_record_start_to_global(timeline: otio.schema.Timeline) -> None:
    """Re-express the EDL reader's record timecode the way every other reader does.

    otio-cmx3600-adapter stores the first record-in of each track as a negative `Track.source_range`
    start (01:00:00:00 at 24 fps -> start -86400) and no global_start_time. Read strictly, such a track
    shows nothing (its trim window lies before its first clip), so the offset moves to
    global_start_time and each track starts with a gap for its own later first event.
    """
    offsets = {id(t): -t.source_range.start_time for t in timeline.tracks
               if t.source_range is not None and t.source_range.start_time.value < 0}
    if not offsets:
        return
    origin = min(offsets.values())
    for track in timeline.tracks:
        if id(track) not in offsets:
            continue
        track.source_range = None
        lead = offsets[id(track)] - origin
        if lead.value > 0:
            track.insert(0, otio.schema.Gap(source_range=TR(RT(0, lead.rate), lead)))
    timeline.global_start_time = origin


def _absolutize_media(timeline: otio.schema.Timeline, base: Path) -> None:
    for clip in timeline.find_clips():
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
            local = _url_to_path(ref.target_url)
            if not _is_absolute(local):
                ref.target_url = str(base / local)


# ----------------------------------------------------------------------------------------------
# Pure time maths
# ----------------------------------------------------------------------------------------------

def intersect(a: otio.opentime.TimeRange, b: otio.opentime.TimeRange) -> otio.opentime.TimeRange | None:
    """The common part of two ranges, None if they do not share a frame.

    Not `TimeRange.overlaps()`, which is Allen's "overlaps" relation, not intersection.
    """
    start = max(a.start_time, b.start_time)
    end = min(a.end_time_exclusive(), b.end_time_exclusive())
    return TR.range_from_start_end_time(start, end) if end > start else None


def range_in_root(rng: otio.opentime.TimeRange, item: otio.core.Item,
                  root: otio.core.Item) -> otio.opentime.TimeRange | None:
    """`rng` (in `item`'s own time) mapped up to `root`, clamped by the trim of every level in between.

    The clip's own trim is not applied, so a range widened under transitions survives the first step.
    None when an enclosing trim hides it completely.
    """
    node = item.parent()
    rng = item.transformed_time_range(rng, node)
    while True:
        rng = intersect(rng, node.trimmed_range())
        if rng is None or node is root:
            return rng
        parent = node.parent()
        rng = node.transformed_time_range(rng, parent)
        node = parent


def rescaled(rng: otio.opentime.TimeRange, rate: float) -> otio.opentime.TimeRange:
    """`rng` expressed at `rate` (edges rescaled, so the duration follows the edges)."""
    return TR.range_from_start_end_time(rng.start_time.rescaled_to(rate), rng.end_time_exclusive().rescaled_to(rate))


def time_scalar(clip: otio.core.Item) -> float:
    """Speed of the media under the clip per the OTIO spec: 2.0 = double speed, 0.0 = freeze frame.

    FreezeFrame is a LinearTimeWarp with scalar 0; stacked warps multiply.
    """
    scalar = 1.0
    for effect in clip.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp):
            scalar *= effect.time_scalar
    return scalar


def media_range(clip: otio.schema.Clip, record: otio.opentime.TimeRange, root: otio.core.Item,
                scalar: float) -> otio.opentime.TimeRange:
    """Media time played under `record` (a range in `root`'s time).

    Per the OTIO spec a warp keeps the clip's track duration and changes the media speed: media time at
    offset o into the clip is trimmed_start + o * scalar. A freeze frame holds one frame; a reverse
    warp is read forwards from the clip's in point at the same speed (read_shots warns about it).
    """
    start_in_clip = root.transformed_time(record.start_time, clip)  # effects ignored by OTIO
    trim_start = clip.trimmed_range().start_time
    offset = (start_in_clip - trim_start).to_seconds()
    rate = trim_start.rate
    length = record.duration.to_seconds() * abs(scalar)
    start = trim_start.to_seconds() + offset * abs(scalar)
    duration = RT.from_seconds(length, rate) if scalar else RT(1, rate)
    return TR(RT.from_seconds(start, rate), duration)


def timecode_rate(rate: float) -> float:
    """The exact SMPTE rate OTIO accepts for `rate` (23.976 -> 24000/1001, 29.97 -> 30000/1001)."""
    return rate if RT.is_valid_timecode_rate(rate) else RT.nearest_valid_timecode_rate(rate)


def is_drop_frame(timeline: otio.schema.Timeline, rate: float) -> bool:
    """Whether the edit counts drop-frame timecode, which OTIO does not record.

    Only 29.97/59.94 can be drop-frame. Editors start timelines on a whole second (01:00:00;00 is frame
    107892, 01:00:00:00 frame 108000), so a start that is a whole second only when counted drop-frame
    means drop-frame; anything else is shown non-drop-frame.
    """
    tc_rate = timecode_rate(rate)
    if round(tc_rate, 2) not in (29.97, 59.94) or timeline.global_start_time is None:
        return False
    start = timeline.global_start_time.rescaled_to(tc_rate)
    return (otio.opentime.to_timecode(start, tc_rate, drop_frame=True).endswith(";00")
            and not otio.opentime.to_timecode(start, tc_rate, drop_frame=False).endswith(":00"))


def record_timecode(timeline: otio.schema.Timeline, start: otio.opentime.RationalTime, rate: float) -> str:
    """Timecode of a timeline-relative time: global_start_time + start (`;` before frames = drop-frame)."""
    tc_rate = timecode_rate(rate)
    origin = timeline.global_start_time or RT(0, tc_rate)
    frame = round((origin + start).rescaled_to(tc_rate).value)  # 23.976 vs 24000/1001 must not floor a frame away
    return otio.opentime.to_timecode(RT(frame, tc_rate), tc_rate, drop_frame=is_drop_frame(timeline, rate))


def timeline_rate(timeline: otio.schema.Timeline) -> float:
    """Frame rate of the timeline: global_start_time's rate, else the first clip with a length's."""
    if timeline.global_start_time is not None:
        return timeline.global_start_time.rate
    for clip in timeline.find_clips():
        try:
            return clip.trimmed_range().duration.rate
        except otio.exceptions.CannotComputeAvailableRangeError:
            continue  # read_shots reports such clips when they are on a video track
    return 24.0  # no clip has a length: there is nothing to time


# ----------------------------------------------------------------------------------------------
# Media paths
# ----------------------------------------------------------------------------------------------

def _url_to_path(url: str) -> str:
    return otio.url_utils.filepath_from_url(url) if url.startswith("file:") else url


def _is_absolute(path: str) -> bool:
    return os.path.isabs(path) or bool(_WINDOWS_PATH.match(path))


def remap_media_path(path: str, media_root: MediaRoots) -> str:
    """Apply the first `OLD=NEW` whose OLD is a whole-folder prefix of `path` (`\\` compared as `/`)."""
    norm = path.replace("\\", "/")
    for old, new in media_root:
        old_norm = old.replace("\\", "/").rstrip("/")
        if norm == old_norm or norm.startswith(old_norm + "/"):
            return new.rstrip("/\\") + norm[len(old_norm):]
    return path


def resolve_media(clip: otio.schema.Clip, edit_dir: Path,
                  media_root: MediaRoots) -> tuple[Path | None, str | None]:
    """(media file, None) or (None, why not) for a clip's active media reference.

    Relative paths are resolved against the edit's folder first, then `--media-root` is applied.
    """
    ref = clip.media_reference
    if ref is None or ref.is_missing_reference:
        return None, "offline: the clip has no media reference"
    if isinstance(ref, otio.schema.GeneratorReference):
        return None, f"generator clip ({ref.generator_kind or 'unknown kind'}), no media"
    if not isinstance(ref, otio.schema.ExternalReference):
        return None, f"{ref.schema_name()} media is not supported (render it to a movie file)"
    if not ref.target_url:
        return None, "offline: the media reference has an empty path"
    local = _url_to_path(ref.target_url)
    if not _is_absolute(local):
        local = str(edit_dir / PurePosixPath(local.replace("\\", "/")))
    local = remap_media_path(local, media_root)
    path = Path(local)
    if not path.is_file():
        return None, f"media file not found: {local} (fix the path or pass --media-root OLD=NEW)"
    return path.resolve(), None


# ----------------------------------------------------------------------------------------------
# Shots
# ----------------------------------------------------------------------------------------------

def _is_rendered(clip: otio.schema.Clip, root: otio.core.Item) -> bool:
    """Enabled, inside at least one track, and every enclosing track is an enabled video track
    (enclosing stacks must be enabled too)."""
    if not clip.enabled:
        return False
    node, in_track = clip.parent(), False
    while node is not None and node is not root:
        if not node.enabled:
            return False
        if isinstance(node, otio.schema.Track):
            if node.kind != otio.schema.TrackKind.Video:
                return False
            in_track = True
        node = node.parent()
    return node is root and in_track


def _top_track(clip: otio.schema.Clip, root: otio.core.Item) -> otio.schema.Track:
    node = clip
    while node.parent() is not root:
        node = node.parent()
    return node


def _producer(timeline: otio.schema.Timeline) -> str | None:
    """Which application wrote the edit, from its metadata namespace (dialect quirks key on it)."""
    metadata = timeline.metadata
    for key, name in (("Resolve_OTIO", "resolve"), ("PremierePro_OTIO", "premiere"),
                      ("fcp_xml", "fcp_xml"), ("AAF", "aaf"), ("cmx_3600", "edl")):
        if key in metadata:
            return name
    return None


def _markers(clip: otio.schema.Clip) -> tuple[str, ...]:
    texts = []
    for marker in clip.markers:
        texts += [t for t in (marker.name, marker.comment) if t and t not in texts]
    return tuple(texts)


def _media_origin(clip: otio.schema.Clip) -> otio.opentime.RationalTime | None:
    """Media time of the file's first frame, from the reference's available_range (None when absent)."""
    available = getattr(clip.media_reference, "available_range", None)
    return available.start_time if available is not None else None


def read_shots(timeline: otio.schema.Timeline, edit_path: str | os.PathLike,
               media_root: MediaRoots = ()) -> list[Shot]:
    """Every enabled clip on enabled video tracks, nested stacks included, in timeline order.

    Order (and so `Shot.index`) is by record start, then top-level track order (V1 before V2).
    Clips hidden by an enclosing trim are left out. All record ranges are at the timeline rate.
    """
    root = timeline.tracks
    rate = timeline_rate(timeline)
    edit_dir = Path(edit_path).resolve().parent
    tracks = list(root)
    producer = _producer(timeline)
    found = []
    for clip in timeline.find_clips():
        if not _is_rendered(clip, root):
            continue
        try:
            record = range_in_root(clip.trimmed_range(), clip, root)
            visible = range_in_root(clip.visible_range(), clip, root)
        except otio.exceptions.CannotComputeAvailableRangeError:
            raise UserError(f"clip '{clip.name}' has no length: no source range and no media range",
                            path=str(edit_path), fix="re-export the edit from your editor") from None
        if record is None:
            continue
        found.append((record.start_time.to_seconds(), tracks.index(_top_track(clip, root)), clip, record, visible))
    found.sort(key=lambda f: (f[0], f[1]))

    shots = []
    for index, (_, track_index, clip, record, visible) in enumerate(found, start=1):
        record, visible = rescaled(record, rate), rescaled(visible, rate)
        scalar = time_scalar(clip)
        media_path, problem = resolve_media(clip, edit_dir, media_root)
        warnings = []
        if scalar != 1.0:
            kind = "freeze frame" if scalar == 0 else f"speed {scalar:g}x" + (" (reverse read forwards)" if scalar < 0 else "")
            warnings.append(f"retimed clip ({kind}): media range follows the OTIO spec; check it if "
                            f"the editor used another convention")
        name = clip.name or (media_path.stem if media_path else f"clip{index:03d}")
        shots.append(Shot(
            index=index,
            name=name,
            track_name=tracks[track_index].name or f"V{track_index + 1}",
            rate=rate,
            record_range=record,
            record_start_tc=record_timecode(timeline, record.start_time, rate),
            visible_range=visible,
            media_path=media_path,
            source_range=media_range(clip, visible, root, scalar),
            time_scalar=scalar,
            media_origin=_media_origin(clip),
            media_problem=problem,
            markers=_markers(clip),
            metadata={"producer": producer},
            warnings=tuple(warnings),
        ))
    return shots
