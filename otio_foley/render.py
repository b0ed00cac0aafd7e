"""The render orchestrator: edit + cue sheet + model -> stems, timelines, manifest and review sheet.

    read_edit -> read_shots -> load_cue_sheet/match_cues -> plan -> per shot: decode once, generate the
    windows the cache lacks (all sources of the shot in one `generate` call per window), join windows
    with equal-power crossfades, write stems -> write_timelines -> manifest.json -> review sheet

Why it is shaped like this:
- Model work is the cost, so every generated window goes into the content-addressed cache at once. A
  re-run with nothing changed does no model work; a changed cue changes only its own windows' keys;
  after a crash or kill the next run picks up the finished windows. Stems are always assembled from
  the cache, which is cheap and means a stem on disk is never out of date with its windows.
- Every file is written to a temporary name and renamed, so nothing is half-written.
- Each stem is a job with a lock and a done-record in OUTDIR/.jobs (`farm.store`): two processes on one
  output folder never render the same stem, and a stem already done for the same plan is kept. The
  same mechanism runs render farms (`--shard K/N`, then `farm.assemble`); see docs/farm.md.
- A failing shot is reported and the others are kept (exit code 1); bad input is a UserError before any
  model work (exit code 2).
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import opentimelineio as otio
import torch

from otio_foley import __version__
from otio_foley.atomic import write_text_atomic
from otio_foley.cache import Cache, default_cache_dir
from otio_foley.cues import CueSheet, load_cue_sheet, match_cues
from otio_foley.edit import read_edit, read_shots
from otio_foley.errors import UserError
from otio_foley.farm.assemble import write_shard_manifest
from otio_foley.farm.partition import Shard, select
from otio_foley.farm.store import JobStore, run_jobs
from otio_foley.jobs import ModelInfoLike, StemPlan, Window, plan
from otio_foley.media import decode_frames, frame_count, probe
from otio_foley.models.pipeline import FoleyModel, Prompt
from otio_foley.stems import Stem, bwf_time_reference, write_stem
from otio_foley.writeback import TARGETS, write_timelines

DEFAULT_TARGETS = ("otio-resolve", "otio-premiere")
# Generates every missing window of the given stems into the cache and marks model failures on them,
# handing stems whose windows are all there to `ready` as it goes: executor(results, cache, force,
# progress, ready).
Executor = Callable[[list["StemResult"], Cache, bool, "_Progress", Callable[[list["StemResult"]], None]], None]


@dataclass(frozen=True)
class RenderOptions:
    """Every knob of a render; the CLI maps its flags onto this one to one."""

    output_dir: Path
    targets: tuple[str, ...] = DEFAULT_TARGETS
    sample_rate: int = 48000
    bit_depth: int = 24
    handles: int = 0  # frames of extra audio before and after each clip
    only: tuple[str, ...] = ()  # clip names, globs or 1-based indices to render; empty = all
    force: bool = False  # ignore cached windows and generate again
    media_root: tuple[tuple[str, str], ...] = ()
    cache_dir: Path | None = None  # default: cache.default_cache_dir(output_dir) (shared by renders and plan)
    allow_unmatched: bool = False
    rate: float | None = None  # frame rate for EDLs
    steps: int | None = None  # overrides of the cue sheet's settings
    cfg: float | None = None
    seed: int | None = None
    review: bool = True
    shard: Shard | None = None  # render only this partition (farm); None = everything
    batch_size: int = 1  # sampler rows per call across clips (a clip's prompts always go together)


@dataclass
class StemResult:
    """What happened to one planned stem; one entry of manifest.json."""

    plan: StemPlan
    status: str = "pending"  # "rendered" (model ran), "cached" (no model work), "failed"
    path: Path | None = None
    error: str | None = None
    windows_generated: int = 0
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))


@dataclass
class RenderReport:
    results: list[StemResult]
    timelines: dict[str, Path]
    manifest: Path
    review: Path | None
    timings: dict[str, float]

    @property
    def failed(self) -> list[StemResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def render(edit_path: Path | str, cues_path: Path | str, model: FoleyModel, options: RenderOptions,
           *, log: Callable[[str], None] | None = None, executor: Executor | None = None) -> RenderReport:
    """Render every planned stem of the edit; see the module docstring. Raises UserError on bad input.

    `executor` generates the missing windows (default: this process, `options.batch_size` rows per
    sampler call); `otio_foley.farm.ray_executor` spreads them over a Ray cluster. With `options.shard`
    only that partition is rendered and a shard manifest is written instead of the timelines.
    """
    log = log or _stderr_log
    started = time.perf_counter()
    timings: dict[str, float] = defaultdict(float)
    outdir = _prepare_output_dir(Path(options.output_dir))

    with _timed(timings, "plan"):
        timeline, shots, plans, cache = plan_render(edit_path, cues_path, model, options)
        if options.shard is not None:
            plans = select(plans, options.shard)
        pictured = {p.shot.index: p.shot for p in plans if p.source_range is not None}
        for shot in pictured.values():
            probe(shot.media_path, clip=shot.name)  # unreadable media fail now, before any model work

    origin = edit_origin(timeline, shots)
    if options.shard is not None:
        write_shard_manifest(outdir, options.shard, model, options, None)  # "running", for `assemble`
    results = [StemResult(p) for p in plans]
    progress = _Progress(sum(len(p.windows) for p in plans), log)
    generate = executor or local_executor(model, options.batch_size)

    def adopted(result: StemResult) -> None:  # its stem was done by an earlier run or another worker
        for _ in result.plan.windows:
            progress.advance(f"{result.plan.file_name}: done earlier")

    run_jobs(results, JobStore(outdir), force=options.force, log=log,
             signature=lambda p: stem_signature(p, options, origin),
             generate=lambda todo, ready: generate(todo, cache, options.force, progress, ready),
             write=lambda r: _write_stem_file(r, model, cache, options, outdir, origin, log),
             entry=lambda r: manifest_entry(r, model),
             adopted=adopted)
    progress.close()
    if options.shard is not None:
        _sum_timings(timings, results, started)
        manifest = write_shard_manifest(outdir, options.shard, model, options, results, timings)
        _log_failures(results, log)
        return RenderReport(results, {}, manifest, None, dict(timings))
    return finish_render(timeline, edit_path, cues_path, model, options, results, outdir, timings, started, log)


def plan_render(edit_path: Path | str, cues_path: Path | str, model: ModelInfoLike, options: RenderOptions,
                ) -> tuple[otio.schema.Timeline, list, list[StemPlan], Cache]:
    """Read the edit and the cue sheet and plan every stem (all shards); shared with `assemble`."""
    unknown = [t for t in options.targets if t not in TARGETS]
    if unknown:
        raise UserError(f"unknown target {unknown[0]!r}", fix=f"use one of {', '.join(TARGETS)}")
    timeline = read_edit(edit_path, rate=options.rate, media_root=options.media_root)
    shots = read_shots(timeline, edit_path, media_root=options.media_root)
    sheet = load_cue_sheet(cues_path)
    matches = match_cues(sheet, shots, allow_unmatched=options.allow_unmatched)
    _check_model(sheet, model)
    cache = Cache(options.cache_dir or default_cache_dir(options.output_dir))
    plans = plan(shots, matches, model, handles=options.handles, only=options.only or None,
                 steps=options.steps, cfg=options.cfg, seed=options.seed, cache=cache)
    return timeline, shots, plans, cache


def edit_origin(timeline: otio.schema.Timeline, shots: Sequence) -> otio.opentime.RationalTime:
    """Record TC of timeline time 0, for the BWF time reference."""
    origin = timeline.global_start_time
    return origin if origin is not None else otio.opentime.RationalTime(0, shots[0].rate if shots else 24)


def finish_render(timeline: otio.schema.Timeline, edit_path: Path | str, cues_path: Path | str,
                  model: ModelInfoLike, options: RenderOptions, results: list[StemResult], outdir: Path,
                  timings: dict[str, float], started: float, log: Callable[[str], None]) -> RenderReport:
    """Timelines, review sheet and manifest from written stems; shared with `assemble`."""
    stems = [_stem_record(r, model, options) for r in results if r.status != "failed"]
    with _timed(timings, "conform"):
        timelines = write_timelines(timeline, stems, outdir, targets=options.targets, edit_path=Path(edit_path))
    review = None
    if options.review and stems:
        from otio_foley.review import write_review  # Pillow drawing; only loaded when asked for

        with _timed(timings, "review"):
            review = write_review(outdir, results, model)
    _sum_timings(timings, results, started)
    manifest = _write_manifest(outdir, edit_path, cues_path, model, options, results, timelines, timings)
    _log_failures(results, log)
    return RenderReport(results, timelines, manifest, review, dict(timings))


def _sum_timings(timings: dict[str, float], results: Sequence[StemResult], started: float) -> None:
    for result in results:
        for name, seconds in result.timings.items():
            timings[name] += seconds
    timings["total"] = time.perf_counter() - started


def _log_failures(results: Sequence[StemResult], log: Callable[[str], None]) -> None:
    for result in results:
        if result.status == "failed":
            log(f"FAILED {result.plan.file_name}: {result.error}")


def local_executor(model: FoleyModel, batch_size: int = 1) -> Executor:
    """Generate in this process: clip by clip, or stacked across clips when `batch_size` > 1."""
    def run(results: list[StemResult], cache: Cache, force: bool, progress: _Progress,
            ready: Callable[[list[StemResult]], None]) -> None:
        if batch_size > 1:
            from otio_foley.farm.batching import generate_batched

            generate_batched(results, model, cache, force, progress, ready, batch_size)
            return
        for shot_results in by_shot(results).values():
            generate_shot(shot_results, model, cache, force, progress)
            ready(shot_results)
    return run


def by_shot(results: Sequence[StemResult]) -> dict[int, list[StemResult]]:
    groups: dict[int, list[StemResult]] = defaultdict(list)
    for result in results:
        groups[result.plan.shot.index].append(result)
    return groups


def cue_sheet_model(cues_path: Path | str) -> str | None:
    """The model the cue sheet asks for (its `defaults: model:`), so `render` without --model uses it."""
    names = {src.model for cue in load_cue_sheet(cues_path).clips for src in cue.sources if src.model}
    if len(names) > 1:
        raise UserError(f"the cue sheet names several models ({', '.join(sorted(names))})", path=str(cues_path),
                        fix="one render uses one model: keep one `model:` in defaults, or pass --model")
    return names.pop() if names else None


def _check_model(sheet: CueSheet, model: FoleyModel) -> None:
    """A cue asking for another model than the one loaded is an error, not a silent substitution."""
    for cue in sheet.clips:
        for src in cue.sources:
            if src.model and src.model not in (model.name, str(getattr(model, "path", ""))):
                raise UserError(f"asks for model {src.model!r} but this render uses {model.name!r}",
                                where=src.where, fix=f"pass --model {src.model} or remove `model:` from the cue sheet")


def generate_shot(results: list[StemResult], model: FoleyModel, cache: Cache, force: bool,
                  progress: _Progress) -> None:
    """Generate the missing windows of every stem of one shot into the cache.

    Window by window: the window's frames are decoded once and shared by all the shot's sources (only
    one window of frames is in memory, however long the clip), and the sources with equal sampler
    settings go through the model together, K prompts in one call.
    """
    shot = results[0].plan.shot
    todo: dict[tuple[float, float], list[tuple[StemResult, int]]] = defaultdict(list)
    for result in results:
        for w, window in enumerate(result.plan.windows):
            if force or not cache.has(window.key):
                todo[(window.offset, window.duration)].append((result, w))
            else:
                progress.advance(f"{shot.name} {result.plan.source.prompt!r} window {w + 1}: cached")
    for (_, duration), jobs in sorted(todo.items()):
        frames = None
        pictured = [(r, w) for r, w in jobs if r.plan.source_range is not None and r.status != "failed"]
        if pictured:
            try:
                frames = _decode_window(pictured[0][0], pictured[0][1], model)
            except UserError as exc:  # media broke mid-file: text-only sources still render
                _fail([r for r, _ in pictured], exc.format_message())
        by_settings: dict[tuple[int, float], list[tuple[StemResult, int]]] = defaultdict(list)
        for r, w in jobs:
            if r.status != "failed":
                by_settings[(r.plan.source.steps, r.plan.source.cfg)].append((r, w))
        for (steps, cfg), group in by_settings.items():
            prompts = [_prompt(r.plan, r.plan.windows[w]) for r, w in group]
            window_frames = frames if any(p.onscreen for p in prompts) else None
            _generate(model, window_frames, group, prompts, duration, steps, cfg, cache, progress, shot.name)


def _generate(model: FoleyModel, frames: torch.Tensor | None, jobs: list[tuple[StemResult, int]],
              prompts: list[Prompt], duration: float, steps: int, cfg: float, cache: Cache,
              progress: _Progress, shot_name: str) -> None:
    """One model call for K prompts of a window, each output cached at once. If a batched call fails,
    each prompt is retried alone, so one bad source does not take its clip's other sources down."""
    t0 = time.perf_counter()
    try:
        audio = model.generate(frames, prompts, duration=duration, steps=steps, cfg=cfg)
    except Exception as exc:  # a model failure costs these jobs, not the whole render
        if len(jobs) > 1:
            for job, prompt in zip(jobs, prompts):
                _generate(model, frames, [job], [prompt], duration, steps, cfg, cache, progress, shot_name)
            return
        _fail([r for r, _ in jobs], f"model error: {type(exc).__name__}: {exc}")
        progress.advance(f"{shot_name} {prompts[0].text!r} window {jobs[0][1] + 1}: failed")
        return
    share = (time.perf_counter() - t0) / len(jobs)
    for k, (result, w) in enumerate(jobs):
        cache.put(result.plan.windows[w].key, audio[k].numpy())
        result.windows_generated += 1
        result.timings["generate"] += share
        progress.advance(f"{shot_name} {prompts[k].text!r} window {w + 1}: generated")


def _decode_window(result: StemResult, w: int, model: FoleyModel) -> torch.Tensor:
    """The frames of window `w` at the model's rate and size (the same for every source of the shot)."""
    window, shot = result.plan.windows[w], result.plan.shot
    with _timed(result.timings, "decode"):
        return decode_frames(shot.media_path, shot.file_seconds(window.source_range.start_time),
                             frame_count(window.duration, model.fps), fps=model.fps, size=model.frame_size,
                             speed=abs(shot.time_scalar), clip=shot.name)


def _write_stem_file(result: StemResult, model: FoleyModel, cache: Cache, options: RenderOptions,
                     outdir: Path, origin: otio.opentime.RationalTime, log: Callable[[str], None]) -> None:
    """Join the stem's windows from the cache, trim to its frames and write the BWF (atomically);
    one warning line when it clipped, since the stem writer can only hard-clip."""
    p = result.plan
    t0 = time.perf_counter()
    sr = model.sample_rate
    pieces = [(round(w.offset * sr), np.asarray(cache.get(w.key), dtype=np.float32)[:round(w.keep * sr)])
              for w in p.windows]
    audio = join_windows(pieces, round(p.duration * sr))
    path = outdir / "stems" / p.file_name
    rate = p.shot.rate
    body = round(p.record_range.end_time_exclusive().value_rescaled_to(rate)) - round(
        p.record_range.start_time.value_rescaled_to(rate))
    info = write_stem(path, audio, source_rate=sr, sample_rate=options.sample_rate, bit_depth=options.bit_depth,
                      frame_rate=rate, frames=p.head_frames + body + p.tail_frames,
                      time_reference_samples=bwf_time_reference(origin + p.record_range.start_time, p.head_frames,
                                                                options.sample_rate),
                      description=p.source.prompt[:256], gain_db=p.source.gain_db)
    if info.clipped_samples:
        log(f"warning: {p.file_name}: {info.clipped_samples} samples clipped (peak {info.peak_dbfs:+.1f} dBFS); "
            f"lower the source's `gain_db` in the cue sheet")
    result.path, result.status = path, ("rendered" if result.windows_generated else "cached")
    result.timings["write"] += time.perf_counter() - t0


def join_windows(pieces: Sequence[tuple[int, np.ndarray]], total: int) -> np.ndarray:
    """Lay (offset, audio) windows end to end, crossfading each overlap with equal-power curves.

    Where window j overlaps the end of window j-1 the earlier one fades out with cos and the later one
    fades in with sin (cos^2 + sin^2 = 1: constant power for uncorrelated audio, no dip or bump).
    Windows must be in start order; the result is trimmed or zero-padded to `total` samples.
    """
    out = np.zeros(total, dtype=np.float32)
    written = 0  # end of the audio laid so far
    for offset, audio in pieces:
        audio = audio[: max(0, total - offset)].astype(np.float32, copy=True)
        overlap = min(max(0, written - offset), len(audio))
        if overlap:
            ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap * (np.pi / 2)
            out[offset:offset + overlap] *= np.cos(ramp)
            audio[:overlap] *= np.sin(ramp)
            out[offset:offset + overlap] += audio[:overlap]
        out[offset + overlap:offset + len(audio)] = audio[overlap:]
        written = max(written, offset + len(audio))
    return out


def _prompt(p: StemPlan, window: Window) -> Prompt:
    return Prompt(text=p.source.prompt, negative=p.source.negative_prompt, seed=window.seed,
                  onscreen=p.source_range is not None)


def _fail(results: Sequence[StemResult], message: str) -> None:
    for result in results:
        result.status, result.error = "failed", message


def _stem_record(result: StemResult, model: FoleyModel, options: RenderOptions) -> Stem:
    p = result.plan
    return Stem(path=result.path, label=p.source.track, shot_index=p.shot.index, shot_name=p.shot.name,
                record_range=p.shot.record_range, head_frames=p.head_frames, tail_frames=p.tail_frames,
                sample_rate=options.sample_rate, take=p.take, provenance=_provenance(p, model),
                bit_depth=options.bit_depth)


def _provenance(p: StemPlan, model: FoleyModel) -> dict:
    src = p.source
    return {"prompt": src.prompt, "negative_prompt": src.negative_prompt, "seed": p.seed, "steps": src.steps,
            "cfg": src.cfg, "mode": src.mode, "take": p.take, "gain_db": src.gain_db, "model": model.name,
            "model_checksum": model.checksum, "source_clip": p.shot.name, "record_tc": p.shot.record_start_tc,
            "window_keys": [w.key for w in p.windows], "otio_foley_version": __version__}


def manifest_entry(r: StemResult, model: ModelInfoLike) -> dict:
    """One stem of manifest.json (also its job record on a farm)."""
    entry = {"path": str(r.path) if r.path else None, "file": r.plan.file_name, "status": r.status,
             "error": r.error, "label": r.plan.source.track, "clip": r.plan.shot.name,
             "shot_index": r.plan.shot.index, "windows": len(r.plan.windows),
             "windows_generated": r.windows_generated,
             "timings": {k: round(v, 4) for k, v in r.timings.items()}}
    entry.update(_provenance(r.plan, model))
    return entry


def stem_signature(p: StemPlan, options: RenderOptions, origin: otio.opentime.RationalTime) -> str:
    """sha256 of everything that makes a stem file what it is: its windows' audio (their keys), how
    they are joined and trimmed, and how the file is written. Equal signature = identical bytes."""
    payload = [[(w.key, w.offset, w.keep) for w in p.windows], p.duration, p.head_frames, p.tail_frames,
               str(p.record_range), str(origin), p.source.gain_db, p.source.prompt[:256],
               options.sample_rate, options.bit_depth, __version__]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def _write_manifest(outdir: Path, edit_path, cues_path, model: FoleyModel, options: RenderOptions,
                    results: Sequence[StemResult], timelines: dict[str, Path], timings: dict[str, float]) -> Path:
    stems = [manifest_entry(r, model) for r in results]
    settings = {k: v for k, v in asdict(options).items() if k in ("targets", "sample_rate", "bit_depth",
                                                                    "handles", "force", "steps", "cfg", "seed")}
    manifest = {"otio_foley_version": __version__, "edit": str(Path(edit_path).resolve()),
                "cues": str(Path(cues_path).resolve()), "model": {"name": model.name, "checksum": model.checksum,
                                                                   "device": str(getattr(model, "device", "unknown"))},
                "settings": settings, "timelines": {k: str(v) for k, v in timelines.items()},
                "timings": {k: round(v, 4) for k, v in timings.items()}, "stems": stems}
    path = outdir / "manifest.json"
    write_text_atomic(path, json.dumps(manifest, indent=2, default=str) + "\n")
    return path


def _prepare_output_dir(outdir: Path) -> Path:
    try:
        (outdir / "stems").mkdir(parents=True, exist_ok=True)
        probe_file = tempfile.NamedTemporaryFile(dir=outdir, prefix=".write-test.", delete=True)
        probe_file.close()
    except OSError as exc:
        raise UserError(f"cannot write to the output folder: {exc.strerror or exc}", path=str(outdir),
                        fix="choose a writable folder with -o") from None
    return outdir.resolve()


class _timed:
    """Context manager adding the elapsed seconds to timings[name]."""

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.t0


class _Progress:
    """A tqdm bar with ETA on a terminal; one plain log line per window otherwise (farm logs, CI)."""

    def __init__(self, total: int, log: Callable[[str], None]) -> None:
        self.total, self.done, self.log = total, 0, log
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="window", desc="render", file=sys.stderr)

    def advance(self, what: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        else:
            self.log(f"[{self.done}/{self.total}] {what}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
