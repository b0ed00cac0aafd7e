"""SelVA's training stages as loss functions for `loop.train`, and which parameters each one trains.

- Stage 0 ("from scratch", only where no pretrained Synchformer/MMAudio exists, as for the tiny model):
  the holistic (MMAudio-style) baseline and the teacher of stage 1, on single-source clips. As in the
  released models, the video encoder is trained first and then frozen for the generator: a pretext task
  (`pretext_loss`, a linear read-out of the clip's mel frames from the time-aligned video features, optionally
  with a within-clip audio-visual contrast, our stand-in for Synchformer's audio-visual pretraining), then the
  generator with conditional flow matching (`holistic_loss`). With no pretext step the two train end to end.
- Stage 1: the frozen plain encoder sees the target clip alone (teacher); TextSynch, initialised from
  it, sees the target side by side with a distractor plus the target's caption (student). L2
  distillation; only the cross-attention block, [SUP] tokens, text projection and spatial pooling train.
- Stage 2: TextSynch frozen; the generator learns from its text-selected features on mixed video with
  conditional flow matching (logit-normal t). Only the sync input path and the adaLN layers that receive
  the per-frame video condition train, unless the stage is run from scratch.

Every random draw (mixing, noise, t, condition dropout) comes from the per-step generator, so a resumed
run is bit-identical (see loop.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from otio_foley.models.flow_matching import flow_loss, interpolate, logit_normal_t
from otio_foley.models.generator import FlowGenerator
from otio_foley.models.sequence import (SYNC_SEGMENT, SYNC_STRIDE, SYNC_TOKENS_PER_SEGMENT, token_instants,
                                        token_means)
from otio_foley.models.synchformer import num_segments, segment_frames
from otio_foley.synth.mixing import MixConfig, mix_batch
from otio_foley.training.data import BatchSource
from otio_foley.training.loop import LossFn

TextEncoder = Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]]
FPS = 25


@dataclass
class StageConfig:
    batch_size: int = 16
    null_prob: float = 0.1  # classifier-free dropout: video (clip + sync) jointly, text independently
    text_drop: float = 0.5  # stage 2: extra generator-text dropout, so the video feature must carry the "what"
    # Location of the logit-normal training times. The official recipe uses 0. At CPU budgets a generator
    # trained so learns an unconditional model: a noisy latent already reveals its class from t ~ 0.2 on, so
    # only the rarely drawn t near 0 reward reading the conditions (selva-tiny after 4000 steps at 0: shuffling
    # the text or the video changed the held-out loss by < 1 % at t = 0.3-0.9). At -1.5 the conditions pay (the
    # shipped model's stage 0: nulling the text raises its loss at t = 0.05 by 12 %, shuffling the video by 49 %).
    t_mean: float = -1.5
    # stages 1-2: target beside item B-1-i, share ~ Beta(1,1) >= 0.2, random side, mixed with p = 0.75
    mix: MixConfig = field(default_factory=MixConfig.training)
    # stage 1 distils on every n-th of the clip's overlapping segments, from an offset drawn per step. TextSynch
    # and its teacher see each segment on its own, so this is the same loss on fewer segments. At 2 the kept
    # segments do not overlap (segments overlap by half): a 2 s clip's 5 become 0, 2, 4 or 1, 3, about half the cost
    segment_stride: int = 1

    def __post_init__(self) -> None:
        if self.segment_stride < 1:
            raise ValueError(f"segment_stride must be >= 1, got {self.segment_stride}")


def train_only(module: nn.Module, named: Iterable[tuple[str, nn.Parameter]]) -> None:
    """Freeze every parameter of `module` except `named` (some of its own named_parameters)."""
    module.requires_grad_(False)
    for _, param in named:
        param.requires_grad_(True)


# Generator parameters that are data, not weights: latent statistics and the stored null-text encoding.
GENERATOR_CONSTANTS = ("latent_mean", "latent_std", "empty_string_feat")


def generator_trainables(generator: FlowGenerator) -> Iterable[tuple[str, nn.Parameter]]:
    """Every generator weight (stage 2 run from scratch), never the stored constants."""
    return ((n, p) for n, p in generator.named_parameters() if n not in GENERATOR_CONSTANTS)


def flow_matching_loss(generator: FlowGenerator, latents: torch.Tensor, sync_f: torch.Tensor,
                       text_f: torch.Tensor, duration: float, g: torch.Generator, null_prob: float,
                       text_drop: float = 0.0, t_mean: float = 0.0) -> torch.Tensor:
    """Conditional flow-matching loss with SelVA's null CLIP-video and classifier-free dropout.

    The CLIP image stream is always the learned null (SelVA replaces it). Sync features are nulled with
    `null_prob`, the text independently with `null_prob`, or else with `text_drop`.
    """
    b, device = latents.shape[0], latents.device
    x1 = generator.normalize(latents)
    null_video = (torch.rand(b, generator=g) < null_prob).view(b, 1, 1).to(device)
    null_text = (torch.rand(b, generator=g) < null_prob) | (torch.rand(b, generator=g) < text_drop)
    null_text = null_text.view(b, 1, 1).to(device)
    sync_f = torch.where(null_video, generator.null_sync(b, sync_f.shape[1]), sync_f)
    # fit_text: the fixed token count the pipeline also pads or truncates to (a no-op for fixed-length encoders)
    text_f = torch.where(null_text, generator.null_text(b), generator.fit_text(text_f))
    clip_f = generator.null_clip(b, generator.lengths(duration).clip)
    x0 = torch.randn(x1.shape, generator=g).to(device)
    t = logit_normal_t(b, g, mean=t_mean).to(device)
    v = generator(interpolate(x0, x1, t), t, clip_f, sync_f, text_f)
    return flow_loss(v, x0, x1).mean()


def mixed_frames(frames: torch.Tensor, g: torch.Generator, mix: MixConfig) -> torch.Tensor:
    """The side-by-side augmentation, its draws seeded from the step's generator."""
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=g)))
    return mix_batch(frames, mix, rng).frames


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _text(encoder: TextEncoder, captions: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    features, mask = encoder(captions)
    return features.to(device), mask.to(device)


def holistic_loss(video: nn.Module, generator: FlowGenerator, source: BatchSource, text_encoder: TextEncoder,
                  cfg: StageConfig) -> LossFn:
    """Stage 0: flow matching for the generator on single-source clips (the encoder too, unless frozen). A batch
    that carries cached features (of this frozen `video`) skips the encoder."""
    device = _device(generator)

    def loss(step: int, g: torch.Generator) -> torch.Tensor:
        batch = source.sample(g, cfg.batch_size)
        frames = batch.frames.to(device)
        sync_f = batch.features.to(device) if batch.features is not None else video(segment_frames(frames))
        text_f, _ = _text(text_encoder, batch.captions, device)
        return flow_matching_loss(generator, batch.latents.to(device), sync_f, text_f,
                                  frames.shape[1] / FPS, g, cfg.null_prob, t_mean=cfg.t_mean)

    return loss


class TemporalContrast(nn.Module):
    """Stage 0 pretext head (not shipped): within each clip, every video token must pick the audio of its own
    instant among the clip's other instants (InfoNCE over the clip's sync tokens). The mel read-out is mostly won
    by saying *what* sounds, which a class guess does; this term is won only by saying *when*. Audio tokens are
    the clip's normalised mel frames averaged per token (`token_means`)."""

    def __init__(self, video_dim: int, n_mels: int, weight: float, dim: int = 64) -> None:
        super().__init__()
        self.weight = weight  # of this term against the mel read-out's L2
        self.video = nn.Linear(video_dim, dim)
        self.audio = nn.Sequential(nn.Linear(n_mels, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))  # cosine similarity × 10 at init

    def forward(self, sync_f: torch.Tensor, audio_tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, video_dim) video tokens, (B, N, n_mels) their audio → the mean InfoNCE loss."""
        v = F.normalize(self.video(sync_f), dim=-1)
        a = F.normalize(self.audio(audio_tokens), dim=-1)
        instants = token_instants(sync_f.shape[1] // SYNC_TOKENS_PER_SEGMENT)
        return instant_nce(self.log_scale.exp() * v @ a.transpose(1, 2), instants)


def instant_nce(logits: torch.Tensor, instants: torch.Tensor) -> torch.Tensor:
    """(B, N, N) video-token × audio-token scores → mean −log P(an audio token of the same instant). Overlapping
    segments encode most frames twice, so each token has one or two right answers."""
    same = (instants[:, None] == instants[None, :]).to(logits.device)
    log_p = logits.log_softmax(-1)
    return -log_p.masked_fill(~same, float("-inf")).logsumexp(-1).mean()


class CaptionContrast(nn.Module):
    """Stage 0 pretext head (not shipped): each clip's mean video feature must pick its own caption among the
    batch's (symmetric InfoNCE; the caption is the text encoder's tokens averaged; equal captions count as
    matches). Sound targets alone let the trunk drop what a caption names but the sound does not tell, such as
    a colour, and stage 1's cross-attention can select a source only by what the trunk's tokens still carry."""

    def __init__(self, video_dim: int, text_dim: int, weight: float, dim: int = 64) -> None:
        super().__init__()
        self.weight = weight  # of this term against the mel read-out's L2
        self.video = nn.Linear(video_dim, dim)
        self.text = nn.Linear(text_dim, dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def forward(self, sync_f: torch.Tensor, captions: list[str], text_f: torch.Tensor,
                text_mask: torch.Tensor) -> torch.Tensor:
        """(B, N, video_dim) features, B captions and their (B, L, text_dim) tokens with mask → the loss."""
        keep = text_mask[..., None].to(text_f.dtype)
        t = F.normalize(self.text((text_f * keep).sum(1) / keep.sum(1)), dim=-1)
        v = F.normalize(self.video(sync_f.mean(1)), dim=-1)
        logits = self.log_scale.exp() * v @ t.T
        ids = torch.tensor([captions.index(c) for c in captions])
        return 0.5 * (instant_nce(logits[None], ids) + instant_nce(logits.T[None], ids))


def kept_segments(count: int, stride: int, g: torch.Generator) -> slice:
    """Every `stride`-th of `count` segments from an offset drawn from `g` (all of them, and no draw, at 1)."""
    if stride == 1:
        return slice(None)
    return slice(int(torch.randint(min(stride, count), (1,), generator=g)), None, stride)


def crop_segments(frames: torch.Tensor, latents: torch.Tensor, count: int, latent_rate: float,
                  g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A run of `count` consecutive sync segments of the clips (one offset per batch, drawn from `g`) and the
    latent frames they span. The encoder reads each segment on its own, so the crop's tokens are the whole clip's
    tokens of those segments; the crop starts on a segment boundary, which falls on a whole latent frame."""
    total = num_segments(frames.shape[1])
    if not 1 <= count <= total:
        raise ValueError(f"a crop of {count} segments does not fit a clip of {total}")
    first = int(torch.randint(total - count + 1, (1,), generator=g)) * SYNC_STRIDE
    length = SYNC_SEGMENT + SYNC_STRIDE * (count - 1)
    start, span = first * latent_rate / FPS, length * latent_rate / FPS
    if not (start.is_integer() and span.is_integer()):
        raise ValueError(f"segment boundaries fall between latent frames at {latent_rate} latent frames/s")
    return frames[:, first:first + length], latents[:, int(start):int(start + span)]


def pretext_loss(video: nn.Module, head: nn.Module, generator: FlowGenerator, source: BatchSource,
                 cfg: StageConfig, contrast: TemporalContrast | None = None,
                 caption: CaptionContrast | None = None, text_encoder: TextEncoder | None = None,
                 caption_from: int = 0, crop: int = 0) -> LossFn:
    """Stage 0, encoder step: predict the clip's normalised mel frames from its video features, placed on the
    latent frames by the generator's own `place_sync`. Forces the features to say what sounds when; with a
    `contrast` head, also the within-clip timing term; with a `caption` head (and the `text_encoder` it reads),
    the clip-caption match from step `caption_from` on (once the sound terms have shaped the timing). With a
    `crop`, each step reads that many consecutive segments of the clips, not all of them (cheaper steps)."""
    device = _device(video)
    if caption is not None and text_encoder is None:
        raise ValueError("the caption contrast needs a text encoder")

    def loss(step: int, g: torch.Generator) -> torch.Tensor:
        batch = source.sample(g, cfg.batch_size)
        frames, latents = batch.frames.to(device), batch.latents.to(device)
        if crop:
            frames, latents = crop_segments(frames, latents, crop, generator.config.latent_rate, g)
        target = generator.normalize(latents)
        segments = segment_frames(frames)
        sync_f = video(segments)
        loss = F.mse_loss(head(generator.place_sync(sync_f, target.shape[1])), target)
        if contrast is not None:
            audio = token_means(target, segments.shape[1], generator.config.latent_rate)
            loss = loss + contrast.weight * contrast(sync_f, audio)
        if caption is not None and step >= caption_from:
            loss = loss + caption.weight * caption(sync_f, batch.captions,
                                                   *_text(text_encoder, batch.captions, device))
        return loss

    return loss


def distillation_loss(teacher: nn.Module, student: nn.Module, source: BatchSource, text_encoder: TextEncoder,
                      cfg: StageConfig) -> LossFn:
    """Stage 1: L2 between TextSynch(mixed video, target caption) and the frozen plain encoder(target), read
    from the batch when it carries the teacher's cached features."""
    device = _device(student)
    teacher.eval().requires_grad_(False)

    def loss(step: int, g: torch.Generator) -> torch.Tensor:
        batch = source.sample(g, cfg.batch_size)
        frames = batch.frames.to(device)
        mixed = mixed_frames(frames, g, cfg.mix)
        segments = segment_frames(mixed)
        kept = kept_segments(segments.shape[1], cfg.segment_stride, g)
        if batch.features is not None:  # (B, S·t, D) -> the kept segments' tokens
            target = batch.features.to(device).unflatten(1, (segments.shape[1], -1))[:, kept].flatten(1, 2)
        else:
            with torch.no_grad():
                target = teacher(segment_frames(frames)[:, kept])
        text_f, mask = _text(text_encoder, batch.captions, device)
        return F.mse_loss(student(segments[:, kept], text_f, mask), target)

    return loss


def selective_flow_loss(encoder: nn.Module, generator: FlowGenerator, source: BatchSource,
                        video_text: TextEncoder, generator_text: TextEncoder, cfg: StageConfig) -> LossFn:
    """Stage 2: flow matching on the frozen TextSynch's features of mixed video, target audio."""
    device = _device(generator)
    encoder.eval().requires_grad_(False)

    def loss(step: int, g: torch.Generator) -> torch.Tensor:
        batch = source.sample(g, cfg.batch_size)
        frames = batch.frames.to(device)
        mixed = mixed_frames(frames, g, cfg.mix)
        with torch.no_grad():
            sync_f = encoder(segment_frames(mixed), *_text(video_text, batch.captions, device))
        text_f, _ = _text(generator_text, batch.captions, device)
        return flow_matching_loss(generator, batch.latents.to(device), sync_f, text_f,
                                  frames.shape[1] / FPS, g, cfg.null_prob, cfg.text_drop, cfg.t_mean)

    return loss
