"""`render --batch-size N`: windows of equal length from different clips in one sampler call.

A plain render calls the model once per clip window (the K prompts of that clip together); on a GPU
one such call leaves most of the device idle. Here the missing windows of all clips are grouped by
(duration, steps, cfg) and stacked, one whole clip window at a time, into calls of up to N prompts
through the model's `generate_batch` (`models.pipeline.SelVAPipeline` has it; a model without it gets
one `generate` per clip window: same audio, no speed-up). Each prompt keeps its own seed, so the audio
equals the unbatched render up to floating-point batching effects. A failing batch is retried clip
window by clip window (`render._generate`), so one bad clip costs only itself.

Frames are decoded per clip window (`render._decode_window`), so a batch holds the frames of its B
windows at most.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from otio_foley.errors import UserError
from otio_foley.render import StemResult, _decode_window, _fail, _generate, _prompt, by_shot

if TYPE_CHECKING:
    from otio_foley.cache import Cache
    from otio_foley.models.pipeline import FoleyModel


@dataclass
class _ClipWindow:
    """One window of one clip: K prompts that share its frames."""

    shot: int
    start: float
    duration: float
    steps: int
    cfg: float
    jobs: list[tuple[StemResult, int]]  # (stem, window index)


def generate_batched(results: list[StemResult], model: FoleyModel, cache: Cache, force: bool, progress,
                     ready: Callable[[list[StemResult]], None], batch_size: int) -> None:
    """An executor (see `render.Executor`) that stacks clip windows into batches of `batch_size` prompts."""
    shots = by_shot(results)
    windows: dict[tuple, list[_ClipWindow]] = defaultdict(list)  # by (duration, steps, cfg)
    pending: Counter[int] = Counter()
    for index, shot_results in shots.items():
        todo: dict[tuple, list[tuple[StemResult, int]]] = defaultdict(list)
        for result in shot_results:
            src = result.plan.source
            for w, window in enumerate(result.plan.windows):
                if force or not cache.has(window.key):
                    todo[(window.offset, window.duration, src.steps, src.cfg)].append((result, w))
                else:
                    progress.advance(f"{result.plan.shot.name} {src.prompt!r} window {w + 1}: cached")
        for (start, duration, steps, cfg), jobs in todo.items():
            windows[(duration, steps, cfg)].append(_ClipWindow(index, start, duration, steps, cfg, jobs))
            pending[index] += 1
        if not pending[index]:
            ready(shot_results)
    for kind in windows.values():
        for batch in _batches(kind, batch_size):
            _run(batch, model, cache, progress)
            for item in batch:
                pending[item.shot] -= 1
                if not pending[item.shot]:
                    ready(shots[item.shot])


def _batches(items: list[_ClipWindow], size: int) -> list[list[_ClipWindow]]:
    """Consecutive clip windows holding up to `size` prompts (a bigger one goes alone)."""
    batches: list[list[_ClipWindow]] = []
    rows = 0
    for item in items:
        if not batches or rows + len(item.jobs) > size:
            batches.append([])
            rows = 0
        batches[-1].append(item)
        rows += len(item.jobs)
    return batches


def _run(batch: list[_ClipWindow], model: FoleyModel, cache: Cache, progress) -> None:
    live = []  # (clip window, its live jobs, their prompts, frames or None)
    for item in batch:
        frames = None
        pictured = [(r, w) for r, w in item.jobs if r.plan.source_range is not None and r.status != "failed"]
        if pictured:
            try:
                frames = _decode_window(pictured[0][0], pictured[0][1], model)
            except UserError as exc:  # media broke mid-file: text-only sources still render
                _fail([r for r, _ in pictured], exc.format_message())
        jobs = [(r, w) for r, w in item.jobs if r.status != "failed"]
        prompts = [_prompt(r.plan, r.plan.windows[w]) for r, w in jobs]
        if jobs:
            live.append((item, jobs, prompts, frames if any(p.onscreen for p in prompts) else None))
    if not live:
        return
    first = live[0][0]
    t0 = time.perf_counter()
    try:
        if hasattr(model, "generate_batch"):
            audio = model.generate_batch([(clip, prompts) for _, _, prompts, clip in live], duration=first.duration,
                                         steps=first.steps, cfg=first.cfg)
        else:
            audio = [model.generate(clip, prompts, duration=first.duration, steps=first.steps, cfg=first.cfg)
                     for _, _, prompts, clip in live]
    except Exception:  # one clip at a time, so a bad one does not take the batch down
        for item, jobs, prompts, clip in live:
            _generate(model, clip, jobs, prompts, item.duration, item.steps, item.cfg, cache, progress,
                      jobs[0][0].plan.shot.name)
        return
    share = (time.perf_counter() - t0) / sum(len(jobs) for _, jobs, _, _ in live)
    for (item, jobs, prompts, _), out in zip(live, audio):
        for k, (result, w) in enumerate(jobs):
            cache.put(result.plan.windows[w].key, out[k].numpy())
            result.windows_generated += 1
            result.timings["generate"] += share
            progress.advance(f"{result.plan.shot.name} {prompts[k].text!r} window {w + 1}: generated")
