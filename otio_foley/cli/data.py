"""`otio-foley data`: make training / evaluation data."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from otio_foley.errors import UserError


@click.group()
def data() -> None:
    """Make training and evaluation data (synthetic audio-visual scenes)."""


def _resolution(value: str) -> tuple[int, int]:
    """"64" -> (64, 64); "160x90" -> (height 90, width 160)."""
    try:
        parts = [int(p) for p in value.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 16 or any(p % 2 for p in parts):
        raise UserError(f"bad resolution {value!r}", where="--resolution",
                        fix="give an even size >= 16 such as 64, or WIDTHxHEIGHT such as 160x90")
    width, height = parts
    return height, width


@data.command()
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the .mp4 files, one WAV per source and manifest.csv.")
@click.option("-n", "--count", type=click.IntRange(min=1), default=10, show_default=True, help="Scenes to make.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="First scene seed.")
@click.option("--split", type=click.Choice(["train", "eval"]), default="train", show_default=True,
              help="eval = the held-out seeds and caption phrasings.")
@click.option("--resolution", default="224", show_default=True, help="SIZE or WIDTHxHEIGHT (even).")
@click.option("--duration", type=click.FloatRange(min=0.5, max=600), default=8.0, show_default=True,
              help="Seconds per scene.")
@click.option("--fps", default="25", show_default=True, help="Frame rate, e.g. 25, 23.976 or 24000/1001.")
@click.option("--sources", type=click.IntRange(1, 4), default=1, show_default=True,
              help="Sound sources per scene, side by side.")
def synth(output: Path, count: int, seed: int, split: str, resolution: str, duration: float, fps: str,
          sources: int) -> None:
    """Render synthetic scenes: OUTPUT/scene_SEED.mp4, a WAV stem per source, and manifest.csv."""
    from otio_foley.synth.media import frame_rate, write_manifest, write_scene
    from otio_foley.synth.scenes import EVAL_SEED_BASE, make_scene

    size = _resolution(resolution)
    try:
        rate = frame_rate(fps)
    except (ValueError, ZeroDivisionError):
        raise UserError(f"bad frame rate {fps!r}", where="--fps", fix="give e.g. 25, 23.976 or 24000/1001")
    if not 1 <= rate <= 120:
        raise UserError(f"frame rate {fps} out of range", where="--fps", fix="use 1 to 120 fps")
    if output.exists() and not output.is_dir():
        raise UserError("exists and is not a folder", path=str(output), fix="choose another --output")
    first = seed + (EVAL_SEED_BASE if split == "eval" else 0)
    if split == "train" and first + count > EVAL_SEED_BASE:
        raise UserError(f"training seeds must stay below {EVAL_SEED_BASE}", where="--seed",
                        fix="use a smaller --seed or --split eval")
    rows = []
    with click.progressbar(range(first, first + count), label="scenes", file=sys.stderr) as bar:
        for scene_seed in bar:
            scene = make_scene(scene_seed, size=size, duration=duration, fps=float(rate), sources=sources)
            rows += write_scene(scene, output, f"scene_{scene_seed}")
    write_manifest(output / "manifest.csv", rows)
    click.echo(f"{count} scenes, {len(rows)} stems -> {output / 'manifest.csv'}")
