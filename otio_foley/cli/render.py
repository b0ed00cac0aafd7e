"""`otio-foley render EDIT CUES`: parse flags, load the model, call `otio_foley.render.render`, report."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import click

from otio_foley.errors import UserError
from otio_foley.writeback import TARGETS

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _media_root(ctx, param, values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    from otio_foley.edit import parse_media_root

    return tuple(parse_media_root(value) for value in values)


def _device(ctx, param, value: str) -> str:
    if not _DEVICE.match(value):
        raise UserError(f"--device {value!r} is not one of auto, cpu, cuda, cuda:N, mps")
    return value


def _load_model(name: str | None, device: str):
    """The FoleyModel to render with (the registry picks the default when `name` is None)."""
    from otio_foley.models.registry import load_model

    return load_model(name, device=device)


def _shard(ctx, param, value: str | None):
    from otio_foley.farm.partition import parse_shard

    return None if value is None else parse_shard(value)


def _render_on_ray(edit: Path, cues: Path, model: str | None, device: str, models_dir: Path | None, options,
                   address: str | None, log):
    """The model loads on the actors only; the driver plans with the facts they report."""
    from otio_foley.farm.ray_executor import ModelSpec, RayExecutor
    from otio_foley.render import render as run_render

    executor = RayExecutor(ModelSpec(model, device, str(models_dir) if models_dir else None), edit, cues, options,
                           address=address, log=log)
    try:
        return run_render(edit, cues, executor.model, options, log=log, executor=executor)
    finally:
        executor.close()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("edit", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("cues", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("otio-foley-out"),
              show_default=True, help="Folder for stems/, timelines, manifest.json and review.html.")
@click.option("--model", default=None, help="Registry name or checkpoint path (default: the cue sheet's "
              "`model:`, else selva-s16k if its weights are present, else the built-in selva-tiny).")
@click.option("--device", default="auto", show_default=True, callback=_device, help="auto|cpu|cuda[:N]|mps")
@click.option("--steps", type=click.IntRange(1, 1000), default=None, help="Euler steps for every source.")
@click.option("--cfg", type=float, default=None, help="Classifier-free guidance for every source.")
@click.option("--seed", type=int, default=None, help="Seed for every source (takes add 1, 2, ...).")
@click.option("--target", "targets", multiple=True, type=click.Choice(list(TARGETS)),
              help="Timeline to write (repeatable). Default: otio-resolve and otio-premiere.")
@click.option("--sample-rate", type=click.Choice(["44100", "48000", "96000"]), default="48000", show_default=True)
@click.option("--bit-depth", type=click.Choice(["16", "24", "32"]), default="24", show_default=True,
              help="32 = float.")
@click.option("--handles", type=click.IntRange(0, 1000), default=0, show_default=True, metavar="FRAMES",
              help="Extra audio before and after each clip, for trims in the NLE.")
@click.option("--only", multiple=True, metavar="CLIP", help="Render only this clip (name, glob or 1-based index; repeatable).")
@click.option("--force", is_flag=True, help="Generate again even where the cache has the audio.")
@click.option("--media-root", multiple=True, callback=_media_root, metavar="OLD=NEW",
              help="Relink media paths starting with OLD to NEW (repeatable).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Generated-audio cache (default $OTIO_FOLEY_CACHE or ~/.cache/otio-foley/audio).")
@click.option("--allow-unmatched", is_flag=True, help="Cue entries matching no clip are warnings, not errors.")
@click.option("--rate", type=float, default=None, help="Frame rate of an EDL (EDLs do not store one).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Also per-stem timings.")
@click.option("--shard", default=None, metavar="K/N", callback=_shard,
              help="Render only the K-th of N partitions (render farms; then `otio-foley assemble`).")
@click.option("--batch-size", type=click.IntRange(1, 256), default=1, show_default=True, metavar="N",
              help="Stack windows of equal length from different clips into one sampler call of up to N prompts.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: generate on the actors of a Ray cluster (pip install 'otio-foley[ray]').")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Ray cluster to join, e.g. 10.0.0.5:6379 or auto (default: start a local one).")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="OTIO_FOLEY_MODELS_DIR", help="Model weights folder, e.g. a shared one on a farm.")
def render(edit: Path, cues: Path, output_dir: Path, model: str | None, device: str, steps: int | None,
           cfg: float | None, seed: int | None, targets: tuple[str, ...], sample_rate: str, bit_depth: str,
           handles: int, only: tuple[str, ...], force: bool, media_root: tuple, cache_dir: Path | None,
           allow_unmatched: bool, rate: float | None, as_json: bool, quiet: bool, verbose: bool, shard,
           batch_size: int, executor: str, ray_address: str | None, models_dir: Path | None) -> None:
    """Generate one Foley stem per clip and source, and timelines with them on new audio tracks.

    \b
    Examples:
      otio-foley render examples/edit_25fps.otio examples/cues.yaml -o out
      otio-foley render cut.xml cues.yaml -o out --target fcp7xml --handles 12
      otio-foley render reel1.edl cues.yaml --rate 23.976 --media-root /Volumes/RAID=/mnt/raid
      otio-foley render cut.otio cues.yaml -o out --only 'sh01*' --steps 10 --device cuda:1
      otio-foley render cut.otio cues.yaml -o /mnt/farm/out --shard 3/8   # then: otio-foley assemble
      otio-foley render cut.otio cues.yaml -o out --executor ray --ray-address auto

    \b
    Exit codes: 0 all stems written, 1 some failed (the rest kept, see
    OUTPUT_DIR/manifest.json), 2 bad input or options. Re-running reuses
    every generated window from the cache; changing one cue re-renders
    only that stem.
    """
    from otio_foley.render import DEFAULT_TARGETS, RenderOptions, cue_sheet_model, render as run_render

    options = RenderOptions(output_dir=output_dir, targets=tuple(dict.fromkeys(targets)) or DEFAULT_TARGETS,
                            sample_rate=int(sample_rate), bit_depth=int(bit_depth), handles=handles, only=only,
                            force=force, media_root=media_root, cache_dir=cache_dir,
                            allow_unmatched=allow_unmatched, rate=rate, steps=steps, cfg=cfg, seed=seed,
                            shard=shard, batch_size=batch_size)
    log = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    if models_dir is not None:  # the registry reads it from here (also on Ray workers)
        os.environ["OTIO_FOLEY_MODELS_DIR"] = str(models_dir)
    if executor == "ray":
        report = _render_on_ray(edit, cues, model or cue_sheet_model(cues), device, models_dir, options, ray_address, log)
    else:
        report = run_render(edit, cues, _load_model(model or cue_sheet_model(cues), device), options, log=log)
    if as_json:
        click.echo(json.dumps(json.loads(report.manifest.read_text(encoding="utf-8")), indent=2))
    elif not quiet:
        for r in report.results:
            line = f"{r.status:8} {r.path or r.plan.file_name}"
            if verbose:
                line += "  " + " ".join(f"{k}={v:.2f}s" for k, v in sorted(r.timings.items()))
            click.echo(line)
        for target, path in report.timelines.items():
            click.echo(f"timeline {target}: {path}")
        if report.review:
            click.echo(f"review   {report.review}")
        click.echo(f"manifest {report.manifest}")
    if report.exit_code:
        click.echo(f"otio-foley: {len(report.failed)} of {len(report.results)} stems failed "
                   f"(see {report.manifest})", err=True)
    sys.exit(report.exit_code)
