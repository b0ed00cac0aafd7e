"""`otio-foley models list|pull|verify`: which models are installed, downloading them, checking them."""
from __future__ import annotations

from pathlib import Path

import click

from otio_foley.errors import UserError

models_dir_option = click.option(
    "--models-dir", type=click.Path(file_okay=False, path_type=Path), envvar="OTIO_FOLEY_MODELS_DIR",
    help="Where model files live (default: $OTIO_FOLEY_MODELS_DIR, else $HF_HOME/otio-foley).")


@click.group()
def models() -> None:
    """Model weights: list what is installed, download (pull) and check (verify) them."""


@models.command("list")
@models_dir_option
def list_models(models_dir: Path | None) -> None:
    """Every known model: files present, download size, licence."""
    from otio_foley.models import registry

    directory = registry.resolve_models_dir(models_dir)
    click.echo(f"models directory: {directory}")
    for card in registry.CARDS.values():
        present = len(card.files) - len(registry.missing_files(card, directory))
        marker = " (default)" if card.name == registry.DEFAULT_MODEL else ""
        total = sum(_megabytes(f.size) for f in card.files.values())
        click.echo(f"{card.name}{marker}: {card.summary}")
        click.echo(f"  files: {present}/{len(card.files)} present, about {total / 1000:.1f} GB in all")
        click.echo(f"  licence: {'; '.join(card.licences)}")


def _megabytes(size: str) -> float:
    """'539M', '1.22G', '~2K' -> megabytes (the tables mix MB and MiB; a listing only needs the scale)."""
    value, unit = float(size.lstrip("~")[:-1]), size[-1]
    return value * {"K": 1e-3, "M": 1.0, "G": 1e3}[unit]


@models.command()
@click.argument("name")
@models_dir_option
def pull(name: str, models_dir: Path | None) -> None:
    """Download NAME's files from the Hugging Face Hub (resumable), then verify their MD5 sums."""
    from otio_foley.models import registry

    card = registry.get_card(name)
    if card.spec is None:
        click.echo(f"{name} is built in; nothing to download.")
        return
    directory = registry.resolve_models_dir(models_dir)
    click.echo(f"{name}: licences of the files you are about to download:")
    for licence in card.licences:
        click.echo(f"  - {licence}")
    for role, file in card.files.items():
        if registry.locate(card, role, directory) is None:
            _download(file, directory)
        path, md5 = registry.verified_path(card, role, directory)
        status = "MD5 ok" if file.md5 else "no published MD5"
        click.echo(f"  {file.repo}/{file.path}: {status} ({path})")
    click.echo(f"{name} is ready.")


def _download(file, directory: Path) -> Path:
    """hf_hub_download into `<models dir>/<repo>/`: resumes partial downloads, shows a progress bar,
    honours HF_HUB_OFFLINE / HF_ENDPOINT / HF_TOKEN."""
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    click.echo(f"  downloading {file.repo}/{file.path} ({file.size}) ...")
    try:
        return Path(huggingface_hub.hf_hub_download(file.repo, file.path,
                                                    local_dir=directory / file.repo))
    except (OfflineModeIsEnabled, LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise UserError(f"cannot download {file.url} ({reason})", path=str(file.target(directory)),
                        fix="check the network and HF_HUB_OFFLINE, or copy the file to that path")


@models.command()
@click.argument("name")
@models_dir_option
def verify(name: str, models_dir: Path | None) -> None:
    """Check the MD5 sum of every file of NAME; exit 2 if any is missing or damaged."""
    from otio_foley.models import registry

    card = registry.get_card(name)
    directory = registry.resolve_models_dir(models_dir)
    failures = []
    for role in card.files:
        try:
            path, md5 = registry.verified_path(card, role, directory)
        except UserError as err:
            failures.append(err)
            click.echo(f"  FAIL {err.format_message()}")
            continue
        state = "built in" if card.spec is None else "ok" if card.files[role].md5 else f"no published MD5 (md5 {md5})"
        click.echo(f"  {state}: {path}")
    if failures:
        raise UserError(f"{len(failures)} of {len(card.files)} files failed: {failures[0].format_message()}")
    click.echo(f"{name}: all {len(card.files)} files verified.")
