"""Shard manifests and `assemble`: the timelines, review sheet and manifest of a farm render.

Each `render --shard K/N` writes OUTDIR/shards/shard-K-of-N.json when it starts (status "running") and
again when it ends: the model's planning facts, the render settings, and the outcome of its jobs. The
assembling machine needs no model: it plans the edit again with the model facts and settings from the
shard manifests (so the plan is the one the shards rendered), checks every planned stem against its job
record (`store.JobStore.done`), and either writes the outputs or says exactly which jobs are missing
and why (shard not run, not finished, or the job failed there).
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
import socket
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from otio_foley import __version__
from otio_foley.atomic import write_text_atomic
from otio_foley.errors import UserError
from otio_foley.farm.partition import Shard, select
from otio_foley.farm.store import JobStore
from otio_foley.jobs import ModelInfo, ModelInfoLike, StemPlan

if TYPE_CHECKING:
    from otio_foley.render import RenderOptions, RenderReport, StemResult

# Settings that change what a shard renders: every shard of a render must share them, and `assemble`
# takes them from the shards. Edit-reading settings (media root, EDL rate) are per machine instead.
SHARED_SETTINGS = ("handles", "only", "steps", "cfg", "seed", "sample_rate", "bit_depth", "allow_unmatched", "targets")


def shard_manifest_path(outdir: Path, shard: Shard) -> Path:
    return Path(outdir) / "shards" / f"{shard.slug}.json"


def model_facts(model: ModelInfoLike) -> dict:
    """What `assemble` needs to plan like the shards did, without loading the model."""
    return {f.name: getattr(model, f.name) for f in fields(ModelInfo)
            if f.name != "seconds_per_second" and hasattr(model, f.name)}


def write_shard_manifest(outdir: Path, shard: Shard, model: ModelInfoLike, options: RenderOptions,
                         results: list[StemResult] | None, timings: dict[str, float] | None = None) -> Path:
    """Write (atomically) the manifest of a shard: `results` None = just started."""
    settings = {name: getattr(options, name) for name in SHARED_SETTINGS}
    jobs = [{"file": r.plan.file_name, "clip": r.plan.shot.name, "prompt": r.plan.source.prompt,
             "status": r.status, "error": r.error, "windows_generated": r.windows_generated}
            for r in results or []]
    status = "running" if results is None else ("failed" if any(r.status == "failed" for r in results) else "done")
    manifest = {"otio_foley_version": __version__, "shard": str(shard), "status": status,
                "host": socket.gethostname(), "pid": os.getpid(), "time": time.time(),
                "model": model_facts(model), "settings": settings, "jobs": jobs,
                "timings": {k: round(v, 4) for k, v in (timings or {}).items()}}
    path = shard_manifest_path(outdir, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(manifest, indent=2, default=str) + "\n")
    return path


def read_shard_manifests(outdir: Path) -> list[dict]:
    manifests = []
    for path in sorted((Path(outdir) / "shards").glob("shard-*-of-*.json")):
        try:
            manifests.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:
            raise UserError("is not a shard manifest (invalid JSON)", path=str(path),
                            fix="delete it and render that shard again") from None
    return manifests


@dataclass
class Missing:
    """Jobs without a complete, current stem; `lines` says which and why."""

    lines: list[str]


def assemble(edit_path: Path | str, cues_path: Path | str, options: RenderOptions, *,
             log: Callable[[str], None] | None = None) -> RenderReport | Missing:
    """Build the outputs from the shards' stems, or report the missing jobs (nothing is written then)."""
    from otio_foley.render import StemResult, _stderr_log, edit_origin, finish_render, plan_render, stem_signature

    started = time.perf_counter()
    outdir = Path(options.output_dir).resolve()
    manifests = read_shard_manifests(outdir)
    model, options = _shared_setup(manifests, options, outdir)
    timings: dict[str, float] = defaultdict(float)
    timeline, _, plans, _ = plan_render(edit_path, cues_path, model, options)
    timings["plan"] = time.perf_counter() - started
    origin = edit_origin(timeline, [p.shot for p in plans])
    store = JobStore(outdir)
    results, missing = [], []
    for p in plans:
        record = store.done(p, stem_signature(p, options, origin))
        if record is None:
            missing.append(p)
            continue
        stem = record["stem"]
        results.append(StemResult(p, status=stem.get("status", "rendered"), path=store.stem_path(p),
                                  windows_generated=stem.get("windows_generated", 0),
                                  timings=dict(stem.get("timings", {}))))
    if missing:
        stale = {p.file_name for p in missing if store.record(p.file_name) is not None}
        return Missing(_explain(missing, plans, manifests, stale))
    return finish_render(timeline, edit_path, cues_path, model, options, results, outdir, timings,
                         started, log or _stderr_log)


def _shared_setup(manifests: list[dict], options: RenderOptions, outdir: Path) -> tuple[ModelInfoLike, RenderOptions]:
    """Model facts and shared settings from the shard manifests, which must agree."""
    if not manifests:  # nothing ran yet: plan anyway, so every job can be listed as missing
        return ModelInfo(name="unknown", checksum="unknown"), options
    first = manifests[0]
    for other in manifests[1:]:
        for part in ("model", "settings"):
            if other[part] != first[part]:
                raise UserError(f"shard {other['shard']} was rendered with other {part} than shard {first['shard']}",
                                path=str(outdir / "shards"), fix="render every shard with the same model and options")
    settings = dict(first["settings"])
    settings["only"] = tuple(settings["only"])
    settings["targets"] = tuple(options.targets) if options.targets else tuple(settings["targets"])
    return ModelInfo(**first["model"]), replace(options, **settings)


def _explain(missing: list[StemPlan], plans: list[StemPlan], manifests: list[dict], stale: set[str]) -> list[str]:
    """One line per missing job: file, clip, prompt and what its shard says about it."""
    counts = {int(m["shard"].split("/")[1]) for m in manifests}
    count = max(counts) if counts else None
    by_shard = {m["shard"]: m for m in manifests}
    owner = {}
    if count is not None:
        for index in range(1, count + 1):
            for p in select(plans, Shard(index, count)):
                owner[p.file_name] = Shard(index, count)
    lines = []
    for p in missing:
        shard = owner.get(p.file_name)
        manifest = by_shard.get(str(shard)) if shard else None
        if p.file_name in stale:
            why = "out of date (rendered for other cues or settings)" + (f": re-run shard {shard}" if shard else "")
        elif shard is None:
            why = "no shard has run"
        elif manifest is None:
            why = f"shard {shard} has not run"
        else:
            job = next((j for j in manifest["jobs"] if j["file"] == p.file_name), None)
            if manifest["status"] == "running":
                why = f"shard {shard} has not finished (started on {manifest['host']} pid {manifest['pid']})"
            elif job and job["status"] == "failed":
                why = f"failed in shard {shard}: {job['error']}"
            else:
                why = f"shard {shard} did not write it (re-run that shard)"
        lines.append(f"missing {p.file_name}  (clip {p.shot.name} #{p.shot.index}, {p.source.prompt!r}): {why}")
    return lines
