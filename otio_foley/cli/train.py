"""`otio-foley train`: SelVA's training stages for the tiny architecture, one command per stage.

\b
  otio-foley train tiny --out runs/tiny                 # the whole shipped recipe (stages 0, 1, 2)
  otio-foley train scratch --out runs/a                 # stage 0: holistic encoder, then generator
  otio-foley train encoder --holistic runs/a/holistic.safetensors --out runs/b        # stage 1
  otio-foley train generator --model runs/b/selective.safetensors --out runs/c        # stage 2

Every stage checkpoints into --out (model, optimiser, EMA, step, RNG) and continues bit-identically when
re-run with the same options; the EMA weights are exported as safetensors. Data is synthetic scenes
(--clips, --seed) unless --data names a real-data CSV manifest (video, audio, caption per row).
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import click

from otio_foley.errors import UserError


def _recipe_options(fn):
    from otio_foley.training.tiny_recipe import Recipe

    for f in reversed(fields(Recipe)):
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool):
            fn = click.option(f"{flag}/--no-{flag[2:]}", default=f.default, show_default=True)(fn)
        else:
            fn = click.option(flag, type=type(f.default), default=f.default, show_default=True)(fn)
    return fn


def _common(fn):
    fn = click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
                      help="real-data CSV manifest (default: synthetic scenes)")(fn)
    fn = click.option("--clips", type=int, default=1200, show_default=True, help="synthetic clips")(fn)
    fn = click.option("--seed", type=int, default=0, show_default=True)(fn)
    fn = click.option("--steps", type=int, default=500, show_default=True)(fn)
    fn = click.option("--lr", type=float, default=1e-3, show_default=True)(fn)
    fn = click.option("--batch-size", type=int, default=8, show_default=True)(fn)
    fn = click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
                      help="folder for checkpoints, weights and train_log.json")(fn)
    return fn


def _source(data: Path | None, clips: int, seed: int):
    """A clip bank of synthetic scenes, or the rows of a real-data manifest read at every step."""
    from otio_foley.models.mel_codec import MelCodec
    from otio_foley.models.tiny import TinyConfig
    from otio_foley.training.data import DatasetSource
    from otio_foley.training.tiny_recipe import build_bank

    cfg = TinyConfig()
    codec = MelCodec(cfg.codec)
    if data is None:
        return build_bank(clips, seed, cfg, codec)
    if not data.is_file():
        raise UserError("no such file", path=str(data), fix="pass the CSV manifest written by `otio-foley data`")
    from otio_foley.training.datasets import VideoTextAudio

    return DatasetSource(VideoTextAudio(data, size=cfg.frame_size, duration=cfg.window_seconds), codec.encode)


def _load(path: Path):
    from otio_foley.models.tiny import load_networks

    if not path.is_file():
        raise UserError("no such weights file", path=str(path), fix="pass a .safetensors written by a stage")
    return load_networks(path)


def _finish(out: Path, log: dict) -> None:
    (out / "train_log.json").write_text(json.dumps(log, indent=2))
    click.echo(json.dumps(log, indent=2))


@click.group()
def train() -> None:
    """Train SelVA's stages (tiny architecture, CPU-sized) on synthetic or real clips.

    \b
      otio-foley train tiny --out runs/tiny        # the shipped recipe: stages 0, 1, 2 (+ no-[SUP] ablation)
      otio-foley train scratch --out runs/a        # stage 0: holistic encoder, then generator
      otio-foley train encoder --holistic runs/a/holistic.safetensors --out runs/b      # stage 1
      otio-foley train generator --model runs/b/selective.safetensors --out runs/c      # stage 2

    Each stage checkpoints into --out and, re-run with the same options, continues bit-identically.
    """


@train.command("tiny")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@_recipe_options
def tiny(out: Path, **recipe) -> None:
    """The shipped selva-tiny recipe: bank, stage 0, 1, 2 (and the no-[SUP] ablation if asked)."""
    from otio_foley.training.tiny_recipe import Recipe, run

    run(Recipe(**recipe), out)


@train.command("scratch")
@_common
@click.option("--pretext-steps", type=int, default=300, show_default=True,
              help="encoder steps on the mel read-out before the generator trains (0: both end to end)")
def scratch(out: Path, data: Path | None, clips: int, seed: int, steps: int, lr: float, batch_size: int,
            pretext_steps: int) -> None:
    """Stage 0 from scratch (the holistic baseline): the plain video encoder learns to read the mel frames
    off the video, then the generator learns with the encoder frozen (--pretext-steps 0: end to end)."""
    from otio_foley.models.tiny import save_networks, text_encoders
    from otio_foley.training.data import ClipBank
    from otio_foley.training.loop import LoopConfig
    from otio_foley.training.tiny_recipe import machine, train_holistic

    source = _source(data, clips, seed)
    log = {"machine": machine()}
    stats = source if isinstance(source, ClipBank) else None
    holistic = train_holistic(source, text_encoders(), LoopConfig(steps=steps, lr=lr, seed=seed), batch_size,
                              out, log, stats, pretext=LoopConfig(steps=pretext_steps, lr=lr, seed=seed))
    save_networks(holistic, out / "holistic.safetensors", {"stages": "0"})
    _finish(out, log)


@train.command("encoder")
@_common
@click.option("--holistic", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="stage-0 weights: the frozen teacher and the student's initialisation")
@click.option("--sup-tokens", type=int, default=5, show_default=True, help="[SUP] tokens (0 = ablation)")
@click.option("--trunk", is_flag=True,
              help="train the student's ViT trunk too, not only SelVA's text path (the teacher stays frozen)")
@click.option("--segment-stride", type=click.IntRange(min=1), default=1, show_default=True,
              help="distil on every n-th of each clip's overlapping segments (2: none overlap, about half the cost)")
def encoder(out: Path, data: Path | None, clips: int, seed: int, steps: int, lr: float, batch_size: int,
            holistic: Path, sup_tokens: int, trunk: bool, segment_stride: int) -> None:
    """Stage 1: distil TextSynch on side-by-side mixes from the frozen plain encoder."""
    from otio_foley.models.tiny import save_networks, text_encoders
    from otio_foley.training.loop import LoopConfig
    from otio_foley.training.tiny_recipe import machine, train_encoder

    teacher = _load(holistic)
    source = _source(data, clips, seed)
    log = {"machine": machine()}
    selective = train_encoder(teacher, sup_tokens, source, text_encoders(),
                              LoopConfig(steps=steps, lr=lr, seed=seed), batch_size, out, log, trunk=trunk,
                              segment_stride=segment_stride)
    save_networks(selective, out / "selective.safetensors", {"stages": "0,1"})
    _finish(out, log)


@train.command("generator")
@_common
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="selective weights after stage 1")
@click.option("--from-scratch", is_flag=True, help="train every generator weight, not only the video path")
def generator(out: Path, data: Path | None, clips: int, seed: int, steps: int, lr: float, batch_size: int,
              model: Path, from_scratch: bool) -> None:
    """Stage 2: flow matching on the frozen TextSynch's features of mixed video."""
    from otio_foley.models.tiny import save_networks, text_encoders
    from otio_foley.training.loop import LoopConfig
    from otio_foley.training.tiny_recipe import machine, train_generator

    selective = _load(model)
    if not selective.selective:
        raise UserError("is a holistic model", path=str(model), fix="run `otio-foley train encoder` on it first")
    source = _source(data, clips, seed)
    log = {"machine": machine()}
    train_generator(selective, source, text_encoders(), LoopConfig(steps=steps, lr=lr, seed=seed), batch_size,
                    out, log, from_scratch=from_scratch)
    save_networks(selective, out / "selective.safetensors", {"stages": "0,1,2"})
    _finish(out, log)
