"""`otio-foley eval`: the selectivity benchmark (synthetic VGG-MonoAudio protocol, or the real one)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from otio_foley.errors import UserError


def _load_models(specs: tuple[str, ...]) -> dict:
    """"LABEL=SPEC" or "SPEC" -> {label: FoleyModel}; SPEC is a registry name or a checkpoint path."""
    if not specs:
        return {}
    try:
        from otio_foley.models.registry import load_model
    except ImportError as error:
        raise UserError(f"model registry unavailable ({error})", where="--model",
                        fix="install the full package, or run with --model omitted for the reference rows")
    models = {}
    for spec in specs:
        label, _, name = spec.partition("=") if "=" in spec else (spec, "", spec)
        if not label or not name or label in models:
            raise UserError(f"bad or repeated model {spec!r}", where="--model",
                            fix="give LABEL=NAME_OR_PATH with distinct labels, e.g. selective=selva-tiny")
        try:
            models[label] = load_model(name)
        except (FileNotFoundError, KeyError, ValueError) as error:
            raise UserError(f"cannot load model {name!r}: {error}", where="--model",
                            fix="give a registry name (otio-foley models list) or a checkpoint path")
    return models


@click.command("eval")
@click.option("-m", "--model", "specs", multiple=True, metavar="LABEL=SPEC",
              help="A model to score (repeatable): registry name or checkpoint path, e.g. selective=selva-tiny.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for selectivity.json and selectivity.md.")
@click.option("--pairs", type=click.IntRange(min=2), default=32, show_default=True,
              help="Synthetic pairs per subset (inter-class, intra-class).")
@click.option("--monoaudio", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Run on the real VGG-MonoAudio folder instead of synthetic pairs.")
@click.option("--limit", type=click.IntRange(min=1), help="With --monoaudio: at most this many pairs per subset.")
@click.option("--duration", type=click.FloatRange(min=1.0, max=30.0), default=8.0, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=25, show_default=True, help="Euler steps.")
@click.option("--cfg", type=click.FloatRange(min=0.0), default=4.5, show_default=True, help="Guidance scale.")
@click.option("--negative/--no-negative", default=True, show_default=True,
              help="Pass the distractor's caption as the negative prompt.")
def evaluate(specs: tuple[str, ...], output: Path, pairs: int, monoaudio: Path | None, limit: int | None,
             duration: float, steps: int, cfg: float, negative: bool) -> None:
    """Measure selectivity: side-by-side pairs, one caption, scored against the target's own sound.

    \b
    Example (the paper's Table 1 comparison on the built-in tiny models):
      otio-foley eval -m selective=selva-tiny -m holistic=PATH -m no-sup=PATH -o eval/
    """
    if monoaudio is not None and not specs:
        raise UserError("--monoaudio needs at least one --model", where="--model",
                        fix="add e.g. -m selective=selva-tiny")
    models = _load_models(specs)

    def progress(name: str) -> None:
        click.echo(f"  {name}", err=True)

    if monoaudio is not None:
        from otio_foley.evaluation.monoaudio import run_monoaudio

        report = run_monoaudio(models, monoaudio, duration=duration, steps=steps, cfg=cfg, negative=negative,
                               limit=limit, progress=progress)
    else:
        from otio_foley.evaluation.selectivity import run_benchmark

        report = run_benchmark(models, pairs_per_subset=pairs, duration=duration, steps=steps, cfg=cfg,
                               negative=negative, progress=progress)
    json_path, md_path = report.write(output)
    sys.stdout.write(report.markdown())
    click.echo(f"-> {json_path}, {md_path}", err=True)
