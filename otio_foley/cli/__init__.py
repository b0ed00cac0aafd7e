"""The `otio-foley` command line. Commands are thin: parse, call a library function, format the result.

Exit codes: 0 success, 1 some jobs failed (the rest kept and reported), 2 usage or validation errors.
"""
from __future__ import annotations

import importlib

import click

from otio_foley import __version__

# name -> "module:attribute"; each command lives in its own module and is imported only when used,
# so `otio-foley --help` stays fast and one broken optional dependency cannot break every command.
COMMANDS = {
    "render": "otio_foley.cli.render:render",
    "plan": "otio_foley.cli.plan:plan",
    "assemble": "otio_foley.cli.farm:assemble",
    "cues": "otio_foley.cli.cues:cues",
    "models": "otio_foley.cli.models:models",
    "data": "otio_foley.cli.data:data",
    "train": "otio_foley.cli.train:train",
    "eval": "otio_foley.cli.evaluate:evaluate",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="otio-foley")
def main() -> None:
    """AI Foley for editors: per-clip, per-source sound from SelVA, written back to your timeline.

    \b
    Quick start:
      otio-foley cues init edit.otio > cues.yaml     # scaffold a cue sheet
      otio-foley plan edit.otio cues.yaml            # dry run: jobs, timecodes, cache hits
      otio-foley render edit.otio cues.yaml -o out   # stems + timelines for Resolve/Premiere
    """
