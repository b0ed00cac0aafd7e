"""Planning: from matched cues to the list of stems to render, each split into model windows.

A job is (clip, source, take, window). `plan` returns one `StemPlan` per output stem (clip x source x
take) holding its `Window`s; nothing is decoded or generated here, so `otio-foley plan` can show the
work, the cache hits and the estimated time before any of it runs.

Windows. The model generates `window_seconds` (8 s for SelVA). A longer stem is covered by full-length
windows that overlap by at least `overlap_seconds(window)` (OVERLAP_SECONDS, or OVERLAP_FRACTION of a
window shorter than 4 s, so short-window models still advance), spread evenly so the last one ends exactly at the
stem's end; the render joins neighbours with an equal-power crossfade over their whole overlap
(`[next.offset, previous.offset + previous.duration]`). A stem shorter than `min_seconds` is generated
at `min_seconds` and trimmed to `keep`.

Seeds. Take n of a source uses seed + n - 1; window i of a stem uses that + WINDOW_SEED_STRIDE * i so
windows of a text-only (offscreen) source do not repeat the same noise.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import opentimelineio as otio

from otio_foley import __version__
from otio_foley.cache import Cache
from otio_foley.cues import ShotSources, SourceCue
from otio_foley.errors import UserError
from otio_foley.shots import Shot

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange

# Model seconds per generated second of one stem on the project's reference CPU (2 cores, fp32); models not
# listed have no estimate. selva-s16k = the official code's 119.3 s per 8 s stem
# (shared/reference/official-cpu-baseline.md); selva-tiny = the example render (10 windows of 2 s, two prompts
# batched per clip) in 4.98 s of generation (manifest timings; the 64 px model of 2026-11-22, 2 threads).
SECONDS_PER_SECOND = {"selva-s16k": 119.3 / 8.0, "selva-tiny": 4.98 / 20.0}

OVERLAP_SECONDS = 1.0
OVERLAP_FRACTION = 0.25  # of the window, when that is less than OVERLAP_SECONDS
WINDOW_SEED_STRIDE = 10007
# Bump when the meaning of a cached entry changes (2: selva-tiny's decoder output level; 3: its 3-frame median).
CACHE_FORMAT = 3
_PROBE_BYTES = 1 << 20


class ModelInfoLike(Protocol):
    """What planning needs from a model; `models.pipeline.FoleyModel` and `ModelInfo` both fit."""

    name: str
    checksum: str
    fps: float
    sample_rate: int
    window_seconds: float
    min_seconds: float


@dataclass(frozen=True)
class ModelInfo:
    """A model's planning facts without loading it (the CLI builds one when no model is loaded)."""

    name: str
    checksum: str
    fps: float = 25.0
    sample_rate: int = 16000
    window_seconds: float = 8.0
    min_seconds: float = 0.64
    frame_size: int = 224
    seconds_per_second: float | None = None  # cost per generated second; None = SECONDS_PER_SECOND's figure


@dataclass(frozen=True)
class Window:
    index: int
    offset: float  # seconds from the start of the stem file (head material included)
    duration: float  # seconds the model generates
    keep: float  # seconds used from its start (< duration only for stems shorter than min_seconds)
    source_range: otio.opentime.TimeRange | None  # media to decode for it; None = text only
    seed: int
    key: str  # content-addressed cache key (window_key)
    cached: bool = False


@dataclass(frozen=True)
class StemPlan:
    shot: Shot
    source: SourceCue  # overrides applied
    take: int  # 1..source.variations
    seed: int  # source.seed + take - 1
    file_name: str  # [A-Za-z0-9._-] only, stable across re-renders of the same clip/prompt/track/take
    record_range: otio.opentime.TimeRange  # the stem's body: the shot's record range (timeline-relative)
    head_frames: int  # material before the body: transition overlap + handles
    tail_frames: int  # material after the body
    duration: float  # seconds of the whole file (head + body + tail)
    # media under the whole file; None = text only. Handles may reach past the media's ends: the decoder
    # holds the edge frame there.
    source_range: otio.opentime.TimeRange | None
    windows: tuple[Window, ...]
    estimated_seconds: float | None  # time to generate the uncached windows; None = unknown cost

    @property
    def cached(self) -> bool:
        return all(w.cached for w in self.windows)


# ----------------------------------------------------------------------------------------------
# Pure helpers
# ----------------------------------------------------------------------------------------------

def overlap_seconds(window: float) -> float:
    """Least overlap of neighbouring windows: 1 s of crossfade, but never more than a quarter of the
    window, or a model with windows <= 1 s (selva-tiny's 0.64 s test configs) would never advance."""
    return min(OVERLAP_SECONDS, OVERLAP_FRACTION * window)


def window_layout(duration: float, window: float, minimum: float,
                  overlap: float | None = None) -> list[tuple[float, float, float]]:
    """(offset, generated length, kept length) of each window covering `duration` seconds;
    `overlap` defaults to `overlap_seconds(window)` and must be shorter than the window."""
    overlap = overlap_seconds(window) if overlap is None else overlap
    if not 0 <= overlap < window:
        raise ValueError(f"window overlap {overlap} s must be in [0, window {window} s)")
    if duration <= window:
        return [(0.0, max(duration, minimum), duration)]
    count = math.ceil((duration - overlap) / (window - overlap))
    hop = (duration - window) / (count - 1)
    return [(round(i * hop, 6), window, window) for i in range(count)]


def slug(text: str, limit: int = 32) -> str:
    """File-name-safe text: runs of anything outside [A-Za-z0-9._-] become '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:limit].strip("-._")


def stem_file_name(shot: Shot, source: SourceCue, take: int) -> str:
    """`sh010__dog-barking__3fa2c1d0.wav` (`-t2` after the prompt for take 2...).

    The hash covers what identifies the stem (shot index and name, track, prompt, take), not its
    settings, so a re-render with another seed replaces the same file the NLE already links to.
    """
    identity = json.dumps([shot.index, shot.name, source.track, source.prompt, take])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    take_part = f"-t{take}" if source.variations > 1 else ""
    return f"{slug(shot.name) or f'clip{shot.index:03d}'}__{slug(source.prompt.lower()) or 'sound'}{take_part}__{digest}.wav"


@functools.lru_cache(maxsize=1024)
def _content_hash(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(_PROBE_BYTES))
        if size > _PROBE_BYTES:
            handle.seek(max(_PROBE_BYTES, size - _PROBE_BYTES))
            digest.update(handle.read(_PROBE_BYTES))
    return digest.hexdigest()


def media_identity(path: Path) -> str:
    """Identity of a media file that survives moves and remounts (farm nodes, --media-root):
    sha256 of its size and its first and last MiB. Memoised per (path, size, mtime)."""
    stat = os.stat(path)
    return _content_hash(str(path), stat.st_size, stat.st_mtime_ns)


def _seconds(rng: otio.opentime.TimeRange | None) -> list[float] | None:
    return None if rng is None else [round(rng.start_time.to_seconds(), 6), round(rng.duration.to_seconds(), 6)]


def window_key(*, model_info: ModelInfoLike, source: SourceCue, media: str | None,
               source_range: otio.opentime.TimeRange | None, time_scalar: float, seed: int,
               duration: float) -> str:
    """sha256 over everything that determines a window's audio; code version included so a release
    that changes generation never serves stale entries."""
    payload = {
        "format": CACHE_FORMAT, "code": __version__,
        "model": [model_info.name, model_info.checksum],
        # numbers normalised: a model saying fps 25 and a card saying 25.0 must give one key
        "decode": [float(model_info.fps), getattr(model_info, "frame_size", None), float(time_scalar)],
        "media": media, "range": _seconds(source_range),
        "prompt": source.prompt, "negative": source.negative_prompt, "mode": source.mode,
        "seed": seed, "steps": source.steps, "cfg": source.cfg, "duration": round(duration, 6),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _media_at(start: otio.opentime.RationalTime, offset: float, length: float,
              scalar: float) -> otio.opentime.TimeRange:
    """Media range for `length` seconds of picture starting `offset` seconds after `start`."""
    rate = start.rate
    begin = RT.from_seconds(start.to_seconds() + offset * abs(scalar), rate)
    return TR(begin, RT.from_seconds(length * abs(scalar), rate) if scalar else RT(1, rate))


# ----------------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------------

def select_shots(shots: Sequence[Shot], only: Sequence[str]) -> set[int]:
    """Shot indices picked by `--only` values: a 1-based index, or a clip name / glob."""
    picked: set[int] = set()
    for value in only:
        hits = {s.index for s in shots if (value.isdigit() and s.index == int(value))
                or fnmatch.fnmatchcase(s.name, value)}
        if not hits:
            raise UserError(f"--only {value!r} matches no clip", fix="use a clip name, glob or 1-based index")
        picked |= hits
    return picked


def plan(shots: Sequence[Shot], matches: Sequence[ShotSources], model_info: ModelInfoLike, *,
         handles: int = 0, only: Sequence[str] | None = None, steps: int | None = None,
         cfg: float | None = None, seed: int | None = None, cache: Cache | None = None) -> list[StemPlan]:
    """One StemPlan per (shot, source, take) in shot then sheet order.

    `handles` frames of extra material are planned at both ends; `steps`/`cfg`/`seed` override every
    source; `cache` marks windows already generated.
    """
    if handles < 0:
        raise UserError(f"--handles {handles} is negative", fix="use 0 or more frames")
    picked = select_shots(shots, only) if only else None
    cost = getattr(model_info, "seconds_per_second", None) or SECONDS_PER_SECOND.get(model_info.name)
    plans = []
    for match in matches:
        shot = match.shot
        if picked is not None and shot.index not in picked:
            continue
        for source in match.sources:
            source = dataclasses.replace(source, **{k: v for k, v in
                                                    (("steps", steps), ("cfg", cfg), ("seed", seed)) if v is not None})
            for take in range(1, source.variations + 1):
                plans.append(_stem_plan(shot, source, take, model_info, handles, cache, cost))
    return plans


def _stem_plan(shot: Shot, source: SourceCue, take: int, model_info: ModelInfoLike, handles: int,
               cache: Cache | None, cost: float | None) -> StemPlan:
    frame = RT(1, shot.rate)
    pad = RT(handles, shot.rate)
    head = shot.record_range.start_time - shot.visible_range.start_time + pad
    tail = shot.visible_range.end_time_exclusive() - shot.record_range.end_time_exclusive() + pad
    file_range = TR(shot.visible_range.start_time - pad, shot.visible_range.duration + pad + pad)
    duration = file_range.duration.to_seconds()
    onscreen = source.mode == "onscreen" and shot.source_range is not None and shot.media_path is not None
    media = media_identity(shot.media_path) if onscreen else None
    stem_source = (_media_at(shot.source_range.start_time, -pad.to_seconds(), duration, shot.time_scalar)
                   if onscreen else None)
    stem_seed = (source.seed + take - 1) % 2**32
    windows = []
    for i, (offset, length, keep) in enumerate(window_layout(duration, model_info.window_seconds,
                                                             model_info.min_seconds)):
        rng = _media_at(stem_source.start_time, offset, length, shot.time_scalar) if onscreen else None
        window_seed = (stem_seed + WINDOW_SEED_STRIDE * i) % 2**32
        key = window_key(model_info=model_info, source=source, media=media, source_range=rng,
                         time_scalar=shot.time_scalar, seed=window_seed, duration=length)
        windows.append(Window(index=i, offset=offset, duration=length, keep=keep, source_range=rng,
                              seed=window_seed, key=key, cached=bool(cache and cache.has(key))))
    todo = sum(w.duration for w in windows if not w.cached)
    return StemPlan(
        shot=shot, source=source, take=take, seed=stem_seed,
        file_name=stem_file_name(shot, source, take),
        record_range=shot.record_range,
        head_frames=round(head.to_seconds() / frame.to_seconds()),
        tail_frames=round(tail.to_seconds() / frame.to_seconds()),
        duration=duration, source_range=stem_source, windows=tuple(windows),
        estimated_seconds=None if cost is None else todo * cost,
    )
