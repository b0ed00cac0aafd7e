"""`otio-foley assemble EDIT CUES OUTDIR`: the last step of a farm render (see docs/farm.md)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from otio_foley.writeback import TARGETS


def _media_root(ctx, param, values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    from otio_foley.edit import parse_media_root

    return tuple(parse_media_root(value) for value in values)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("edit", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("cues", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--target", "targets", multiple=True, type=click.Choice(list(TARGETS)),
              help="Timeline to write (repeatable). Default: the targets the shards were given.")
@click.option("--media-root", multiple=True, callback=_media_root, metavar="OLD=NEW",
              help="Relink media paths starting with OLD to NEW on this machine (repeatable).")
@click.option("--rate", type=float, default=None, help="Frame rate of an EDL (EDLs do not store one).")
@click.option("--no-review", is_flag=True, help="Skip the review sheet (it decodes thumbnails from the media).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest (or the missing jobs) as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and missing jobs.")
def assemble(edit: Path, cues: Path, outdir: Path, targets: tuple[str, ...], media_root: tuple, rate: float | None,
             no_review: bool, as_json: bool, quiet: bool) -> None:
    """Timelines, review sheet and manifest from the stems that `render --shard K/N` tasks wrote to OUTDIR.

    Run it once every shard has finished (a farm job depending on all shard tasks). Settings (handles,
    seed, sample rate, ...) and the model come from the shard manifests in OUTDIR/shards; no model is
    loaded. If a job is missing or out of date, nothing is written: each missing stem is listed with
    its clip and why (shard not run, still running, or failed there) and the exit code is 1.

    \b
    Example:
      for k in 1 2 3 4; do otio-foley render cut.otio cues.yaml -o /mnt/farm/out --shard $k/4; done
      otio-foley assemble cut.otio cues.yaml /mnt/farm/out --target aaf

    \b
    Exit codes: 0 written, 1 jobs missing, 2 bad input.
    """
    from otio_foley.farm.assemble import Missing, assemble as run_assemble
    from otio_foley.render import RenderOptions

    options = RenderOptions(output_dir=outdir, targets=tuple(dict.fromkeys(targets)), media_root=media_root,
                            rate=rate, review=not no_review)
    log = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    outcome = run_assemble(edit, cues, options, log=log)
    if isinstance(outcome, Missing):
        if as_json:
            click.echo(json.dumps({"missing": outcome.lines}, indent=2))
        else:
            for line in outcome.lines:
                click.echo(line)
        click.echo(f"otio-foley: {len(outcome.lines)} jobs missing in {outdir}: nothing assembled", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(json.loads(outcome.manifest.read_text(encoding="utf-8")), indent=2))
    elif not quiet:
        for target, path in outcome.timelines.items():
            click.echo(f"timeline {target}: {path}")
        if outcome.review:
            click.echo(f"review   {outcome.review}")
        click.echo(f"manifest {outcome.manifest}")
