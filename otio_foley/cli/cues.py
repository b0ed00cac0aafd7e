"""`otio-foley cues init EDIT` (scaffold a cue sheet) and `otio-foley cues validate CUES [EDIT]`."""
from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path

import click

from otio_foley.cli.plan import allow_unmatched_option, edit_options, read_inputs
from otio_foley.cues import load_cue_sheet
from otio_foley.errors import UserError
from otio_foley.shots import Shot


def scaffold(shots: list[Shot], edit: str) -> str:
    """A valid cue sheet listing every clip with an empty `sources: []` for the user to fill in.

    Entries match by name when the name is unique in the edit, else by index. Names are glob-escaped
    (a clip called `shot [v2]` must not act as a pattern) and written as JSON strings, which YAML reads
    verbatim, so odd clip names need no quoting rules of their own.
    """
    rate = f"{shots[0].rate:.3f}".rstrip("0").rstrip(".") if shots else "?"
    lines = [
        f"# otio-foley cue sheet for {Path(edit).name} ({len(shots)} clips, {rate} fps). Grammar: docs/cue-sheet.md",
        "# Give each clip the sounds it needs, e.g.",
        "#   sources:",
        '#     - prompt: "footsteps on gravel"',
        '#     - {prompt: "distant traffic", mode: offscreen, gain_db: -12}',
        "# A clip left at `sources: []` stays silent.",
        "version: 1",
        "defaults:",
        "  steps: 25",
        "  cfg: 4.5",
        "  seed: 42",
        "clips:",
    ]
    names = [s.name for s in shots]
    for shot in shots:
        seconds = shot.record_range.duration.to_seconds()
        media = shot.media_path.name if shot.media_path else f"NO MEDIA: {shot.media_problem}"
        lines.append(f"  # {shot.index}. {shot.record_start_tc}  {seconds:.2f} s  {shot.track_name}  {media}")
        unique = names.count(shot.name) == 1
        matcher = f"clip: {json.dumps(glob.escape(shot.name), ensure_ascii=False)}" if unique else f"index: {shot.index}"
        lines += [f"  - {matcher}", "    sources: []"]
    if not shots:
        lines[-1] = "clips: []  # the edit has no enabled video clips"
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.group()
def cues() -> None:
    """Write and check cue sheets (which sounds each clip gets)."""


@cues.command()
@click.argument("edit", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the scaffold here instead of stdout (refuses to overwrite without --force).")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@edit_options
def init(edit: str, output: str | None, force: bool, rate: float | None, media_root: tuple[str, ...]) -> None:
    """Scaffold a cue sheet listing every clip of EDIT (name, record TC, duration, media).

    \b
    Example:
      otio-foley cues init edit.otio -o cues.yaml
    """
    shots, _, _ = read_inputs(edit, None, rate=rate, media_root=media_root, allow_unmatched=False)
    text = scaffold(shots, edit)
    if output is None:
        click.echo(text, nl=False)
        return
    target = Path(output)
    if target.exists() and not force:
        raise UserError("already exists", path=output, fix="pass --force to overwrite, or choose another -o")
    if not target.parent.is_dir():
        raise UserError("folder does not exist", path=str(target.parent), fix="create it first")
    write_atomic(target, text)
    click.echo(f"wrote {output} ({len(shots)} clips)", err=True)


@cues.command()
@click.argument("cues_path", metavar="CUES", type=click.Path(dir_okay=False))
@click.argument("edit", required=False, type=click.Path(dir_okay=False))
@edit_options
@allow_unmatched_option
def validate(cues_path: str, edit: str | None, rate: float | None, media_root: tuple[str, ...],
             allow_unmatched: bool) -> None:
    """Check CUES; with EDIT also check that every entry matches a clip and that media exist.

    \b
    Examples:
      otio-foley cues validate cues.yaml
      otio-foley cues validate cues.yaml edit.otio
    """
    if edit is None:
        sheet = load_cue_sheet(cues_path)
        count = sum(len(c.sources) for c in sheet.clips)
        click.echo(f"{cues_path}: ok ({len(sheet.clips)} entries, {count} sources)")
        return
    shots, _, matches = read_inputs(edit, cues_path, rate=rate, media_root=media_root,
                                    allow_unmatched=allow_unmatched)
    stems = sum(s.variations for m in matches for s in m.sources)
    click.echo(f"{cues_path}: ok with {Path(edit).name} ({len(matches)} of {len(shots)} clips get sound, {stems} stems)")
