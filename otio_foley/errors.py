"""User-facing errors: one line, naming the file, the place and the fix; the CLI exits 2 on them."""
from __future__ import annotations

import click


class UserError(click.ClickException):
    """Bad input (edit, cue sheet, media, options). Printed as one line, exit code 2, no traceback."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, where: str | None = None,
                 fix: str | None = None) -> None:
        parts = [p for p in (path, where) if p]
        text = ":".join(parts) + (": " if parts else "") + message
        if fix:
            text += f" ({fix})"
        super().__init__(text)

    def show(self, file=None) -> None:  # one line, no "Error:" noise from Click
        click.echo(f"otio-foley: error: {self.format_message()}", err=True, file=file)
