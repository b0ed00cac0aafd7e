"""`otio-foley plan EDIT CUES`: the dry run. Shows every stem to render, its windows, cache hits and cost.

Model facts (checksum, rates, window) come from the registry without building the networks
(`registry.model_facts`), so cache hits are exact. A model whose weights are not installed here (planning on a
workstation for a farm) has no checksum yet: its cache hits are shown as '?' rather than guessed. The cost
estimate comes from `jobs.SECONDS_PER_SECOND` where the model has a measured figure.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from otio_foley.cache import DEFAULT_OUTPUT_DIR, Cache, default_cache_dir
from otio_foley.cues import CueSheet, ShotSources, load_cue_sheet, match_cues
from otio_foley.edit import parse_media_root, read_edit, read_shots
from otio_foley.jobs import ModelInfo, StemPlan, plan as plan_jobs
from otio_foley.shots import Shot

allow_unmatched_option = click.option("--allow-unmatched", is_flag=True,
                                      help="A cue entry that matches no clip is skipped instead of an error.")


def edit_options(command):
    """Options shared by every command that reads an edit (plan, cues init/validate; render may reuse)."""
    command = click.option("--media-root", "media_root", multiple=True, metavar="OLD=NEW",
                           help="Read media under OLD from NEW instead (repeatable; first match wins).")(command)
    command = click.option("--rate", type=click.FloatRange(min=1, max=240), default=None,
                           help="Frame rate of an EDL (EDLs do not store one), e.g. 24 or 23.976.")(command)
    return command


def read_inputs(edit: str, cues: str | None, *, rate: float | None, media_root: tuple[str, ...],
                allow_unmatched: bool) -> tuple[list[Shot], CueSheet | None, list[ShotSources] | None]:
    """Edit -> shots (warnings echoed to stderr) -> cue sheet and matches (None without a cue sheet)."""
    roots = [parse_media_root(value) for value in media_root]
    timeline = read_edit(edit, rate=rate, media_root=roots)
    shots = read_shots(timeline, edit, media_root=roots)
    for shot in shots:
        for warning in shot.warnings:
            click.echo(f"otio-foley: warning: clip '{shot.name}' (#{shot.index}): {warning}", err=True)
    if cues is None:
        return shots, None, None
    sheet = load_cue_sheet(cues)
    return shots, sheet, match_cues(sheet, shots, allow_unmatched=allow_unmatched, edit_name=Path(edit).name)


def model_info(name: str | None, models_dir: str | None) -> ModelInfo:
    """The planning facts of the model `render` would load for these arguments."""
    from otio_foley.models.registry import model_facts

    facts = model_facts(name, models_dir=models_dir)
    return ModelInfo(**{**facts, "checksum": facts["checksum"] or "unknown"})


def _row(p: StemPlan, cache_known: bool) -> dict:
    hits = sum(w.cached for w in p.windows)
    return {
        "clip": p.shot.name, "index": p.shot.index, "record_tc": p.shot.record_start_tc,
        "seconds": round(p.duration, 3), "head_frames": p.head_frames, "tail_frames": p.tail_frames,
        "prompt": p.source.prompt, "negative_prompt": p.source.negative_prompt, "track": p.source.track,
        "mode": p.source.mode, "take": p.take, "seed": p.seed, "steps": p.source.steps, "cfg": p.source.cfg,
        "file": p.file_name, "media": str(p.shot.media_path) if p.shot.media_path else None,
        "windows": [{"offset": w.offset, "duration": w.duration, "keep": w.keep, "seed": w.seed,
                     "key": w.key, "cached": w.cached if cache_known else None} for w in p.windows],
        "cached_windows": hits if cache_known else None,
        "estimated_seconds": None if p.estimated_seconds is None else round(p.estimated_seconds, 1),
    }


def _table(rows: list[dict], shots: list[Shot], model: ModelInfo, cache_known: bool, edit: str) -> str:
    lines = [f"{Path(edit).name}: {len(shots)} clips; model {model.name}"
             + ("" if cache_known else " (checksum unknown: cache hits not checked)")]
    header = ("#", "clip", "record TC", "sec", "take", "win", "cache", "est s", "mode", "prompt [track]")
    table = [header]
    for r in rows:
        cache = f"{r['cached_windows']}/{len(r['windows'])}" if cache_known else "?"
        est = "?" if r["estimated_seconds"] is None else f"{r['estimated_seconds']:.0f}"
        table.append((str(r["index"]), r["clip"], r["record_tc"], f"{r['seconds']:.2f}", str(r["take"]),
                      str(len(r["windows"])), cache, est, r["mode"], f"{r['prompt']} [{r['track']}]"))
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in table]
    total = sum(r["seconds"] for r in rows)
    estimates = [r["estimated_seconds"] for r in rows]
    est = "unknown" if None in estimates else f"{sum(estimates):.0f} s"
    lines.append(f"total: {len(rows)} stems, {sum(len(r['windows']) for r in rows)} windows, "
                 f"{total:.2f} s of audio, estimated time {est}")
    return "\n".join(lines)


@click.command()
@click.argument("edit", type=click.Path(dir_okay=False))
@click.argument("cues", type=click.Path(dir_okay=False))
@edit_options
@allow_unmatched_option
@click.option("--handles", type=click.IntRange(min=0), default=0, show_default=True,
              help="Extra frames of audio before and after each clip.")
@click.option("--only", multiple=True, metavar="CLIP", help="Only this clip (name, glob or 1-based index; repeatable).")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False), default=str(DEFAULT_OUTPUT_DIR),
              show_default=True, help="The render's OUTPUT_DIR, whose cache the hits are counted in.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Audio cache folder (default $OTIO_FOLEY_CACHE, else OUTPUT_DIR/.cache).")
@click.option("--model", default=None,
              help="Model name or weights file (default: the cue sheet's `model:`, else selva-s16k if "
                   "installed, else the built-in selva-tiny).")
@click.option("--models-dir", type=click.Path(file_okay=False), envvar="OTIO_FOLEY_MODELS_DIR", default=None,
              help="Where official weights live (default $OTIO_FOLEY_MODELS_DIR, else $HF_HOME/otio-foley).")
@click.option("--steps", type=click.IntRange(min=1, max=1000), default=None, help="Override every source's steps.")
@click.option("--cfg", type=click.FloatRange(min=0, max=50), default=None, help="Override every source's CFG.")
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=None, help="Override every source's seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(edit: str, cues: str, rate: float | None, media_root: tuple[str, ...], allow_unmatched: bool,
         handles: int, only: tuple[str, ...], output_dir: str, cache_dir: str | None, model: str | None,
         models_dir: str | None, steps: int | None, cfg: float | None, seed: int | None, as_json: bool) -> None:
    """Dry run: list the stems EDIT and CUES would render, with timecodes, cache hits and estimated time.

    \b
    Examples:
      otio-foley plan edit.otio cues.yaml
      otio-foley plan cut.edl cues.yaml --rate 23.976 --handles 12 --json
      otio-foley plan edit.otio cues.yaml -o out     # cache hits of `render ... -o out`
    """
    shots, sheet, matches = read_inputs(edit, cues, rate=rate, media_root=media_root, allow_unmatched=allow_unmatched)
    info = model_info(model or sheet.model, models_dir)
    cache_known = info.checksum != "unknown"
    cache = Cache(cache_dir or default_cache_dir(output_dir)) if cache_known else None
    plans = plan_jobs(shots, matches, info, handles=handles, only=only, steps=steps, cfg=cfg, seed=seed, cache=cache)
    rows = [_row(p, cache_known) for p in plans]
    if as_json:
        json.dump({"edit": edit, "cues": cues, "model": info.name, "clips": len(shots), "stems": rows},
                  sys.stdout, indent=2)
        click.echo()
    else:
        click.echo(_table(rows, shots, info, cache_known, edit))
