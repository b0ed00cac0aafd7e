"""The contract between the render code and any Foley model (official SelVA, MMAudio, built-in tiny).

The render code only sees `FoleyModel`: it decodes frames at `fps` and `frame_size`, then asks for
audio. Concrete pipelines (composing text encoders, video encoder, generator, sampler, audio decoder)
implement it; `otio_foley.models.registry.load_model` builds one by name.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .flow_matching import euler_sample, guided_velocity
from .generator import Conditions, FlowGenerator
from .sequence import CLIP_FPS, SYNC_FPS, SequenceLengths, min_duration
from .synchformer import segment_frames


@dataclass(frozen=True)
class Prompt:
    """One source to sonify in a clip. `onscreen=False` = text-only generation (null video features)."""

    text: str
    negative: str = ""
    seed: int = 42
    onscreen: bool = True


class FoleyModel(Protocol):
    name: str  # registry name, e.g. "selva-s16k" or "selva-tiny"
    checksum: str  # identity of the weights (sha256 prefix), part of every cache key
    sample_rate: int  # native output rate of `generate`
    fps: float  # frame rate the video encoder expects (25)
    frame_size: int  # frames are square, frame_size x frame_size, RGB in [-1, 1]
    window_seconds: float  # the duration the model was trained on (8.0 for SelVA)
    min_seconds: float  # shortest duration it can generate (one sync segment)
    device: torch.device

    def generate(
        self,
        frames: torch.Tensor | None,
        prompts: Sequence[Prompt],
        *,
        duration: float,
        steps: int = 25,
        cfg: float = 4.5,
    ) -> torch.Tensor:
        """Audio for every prompt of one clip: (K, round(duration * sample_rate)) float32 on CPU.

        `frames` is (T, 3, frame_size, frame_size) in [-1, 1] at `fps` with T = int(fps * duration)
        (None when every prompt is offscreen). The video trunk runs once for all K prompts.
        """
        ...


# ------------------------------------------------------------------------------------- SelVA / MMAudio

class TextEncoder(Protocol):
    """`encoder(texts) -> (features (B, L, D) float32, mask (B, L) bool, True = keep)`, cached per string."""

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]: ...


class AudioDecoder(Protocol):
    sample_rate: int
    latent_dim: int

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Un-normalised latents (B, N, latent_dim) -> waveform (B, samples)."""
        ...


class ImageEncoder(Protocol):
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (N, 3, H, W) in [-1, 1] -> CLIP image features (N, clip_dim).

        The encoder resizes and normalises for its own model (officially 384 px with CLIP mean/std).
        """
        ...


Mode = Literal["selva", "mmaudio"]


class SelVAPipeline:
    """SelVA (text-selective) or MMAudio (holistic) Foley generation from its components.

    mode "selva": `video_encoder` is TextSynch (`encode_trunk(segments)`, `condition(trunk, text_f, mask)`),
    conditioned per prompt on `video_text_encoder` (FLAN-T5) features; CLIP-video is always the learned null.
    mode "mmaudio": `video_encoder(segments)` is a plain Synchformer, shared by every prompt; CLIP image
    features come from `image_encoder` when given (on frames resampled to 8 fps), else the learned null.
    In both modes the generator reads `generator_text_encoder` (CLIP text) features, offscreen prompts get
    null video features (text only), and the unconditional CFG branch uses null clip, null sync and the
    negative prompt's text (the stored empty-string feature when the negative prompt is empty).
    """

    def __init__(self, *, name: str, checksum: str, generator: FlowGenerator, video_encoder: nn.Module,
                 audio_decoder: AudioDecoder, generator_text_encoder: TextEncoder,
                 video_text_encoder: TextEncoder | None = None, image_encoder: ImageEncoder | None = None,
                 mode: Mode = "selva", fps: float = SYNC_FPS, frame_size: int = 224,
                 window_seconds: float = 8.0) -> None:
        if mode == "selva" and video_text_encoder is None:
            raise ValueError("SelVA mode needs the video-side text encoder")
        ours = (audio_decoder.latent_dim, audio_decoder.sample_rate)
        theirs = (generator.config.latent_dim, generator.config.sample_rate)
        if ours != theirs:
            raise ValueError(f"audio decoder (latent_dim, sample_rate) {ours} != generator's {theirs}")
        self.name, self.checksum, self.mode = name, checksum, mode
        self.generator, self.video_encoder, self.audio_decoder = generator, video_encoder, audio_decoder
        self.generator_text_encoder, self.video_text_encoder = generator_text_encoder, video_text_encoder
        self.image_encoder = image_encoder
        self.sample_rate = audio_decoder.sample_rate
        self.fps, self.frame_size, self.window_seconds = fps, frame_size, window_seconds
        self.min_seconds = min_duration()

    @property
    def device(self) -> torch.device:
        return self.generator.latent_mean.device

    def to(self, device: torch.device | str) -> SelVAPipeline:
        """Move the networks; text encoders return CPU tensors that are moved on use."""
        for part in (self.generator, self.video_encoder, self.audio_decoder, self.image_encoder):
            if isinstance(part, nn.Module):
                part.to(device)
        return self

    def _precision(self) -> AbstractContextManager:
        """bf16 autocast on CUDA as the official inference runs in bf16; fp32 elsewhere. RoPE and the
        timestep embedding switch autocast off themselves, and the Euler state stays fp32."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def generate(self, frames: torch.Tensor | None, prompts: Sequence[Prompt], *, duration: float,
                 steps: int = 25, cfg: float = 4.5) -> torch.Tensor:
        """See `FoleyModel.generate`. The K prompts are sampled together: one network call per Euler step."""
        return self.generate_batch([(frames, prompts)], duration=duration, steps=steps, cfg=cfg)[0]

    @torch.inference_mode()
    def generate_batch(self, items: Sequence[tuple[torch.Tensor | None, Sequence[Prompt]]], *, duration: float,
                       steps: int = 25, cfg: float = 4.5) -> list[torch.Tensor]:
        """`generate` for several clips of one duration at once: the video features are computed per
        clip, then every prompt of every clip goes through the sampler as one batch (render farms,
        `--batch-size`). Each prompt draws its own noise from its seed, so the audio matches separate
        `generate` calls up to floating-point batching differences."""
        items = [(frames, list(prompts)) for frames, prompts in items]
        samples = round(duration * self.sample_rate)
        if not any(group for _, group in items):
            return [torch.zeros(0, samples) for _ in items]
        latents = self.sample_latents(items, duration=duration, steps=steps, cfg=cfg)
        # One prompt at a time: the vocoder is memory-bound and batching it is super-linear on CPU
        # (benchmarks/bench_models.py, K = 2: 81 CPU s batched against 23 for one prompt).
        audio = torch.cat([self.audio_decoder.decode(row[None]).float()
                           for row in self.generator.unnormalize(latents)])
        audio = audio[:, :samples]
        audio = F.pad(audio, (0, samples - audio.shape[1])).cpu()
        return list(audio.split([len(group) for _, group in items]))

    @torch.inference_mode()
    def sample_latents(self, items: Sequence[tuple[torch.Tensor | None, Sequence[Prompt]]], *, duration: float,
                       steps: int = 25, cfg: float = 4.5) -> torch.Tensor:
        """The sampler's normalised latents (prompts, latent frames, latent_dim), in prompt order, before the
        audio decoder: what `generate_batch` decodes, for measuring the generator apart from the vocoder."""
        prompts = [p for _, group in items for p in group]
        net = self.generator
        lengths = net.lengths(duration)
        for frames, group in items:
            if frames is None and any(p.onscreen for p in group):
                raise ValueError("frames are required when a prompt is onscreen")
        live = [(frames, list(group)) for frames, group in items if group]
        with self._precision():
            sync = torch.cat([self._sync_features(frames, group, lengths) for frames, group in live])
            clip = torch.cat([self._clip_features(frames, [p.onscreen for p in group], lengths)
                              for frames, group in live])
            text = self._generator_text([p.text for p in prompts])
            cond = net.prepare(clip, sync, text, lengths.latent)
            uncond = self._unconditional(prompts, lengths)
            velocity = guided_velocity(lambda x, t, c: net.velocity(x, t, c).float(), cond, uncond, cfg)
            return euler_sample(velocity, self.initial_noise(prompts, duration), steps)

    def initial_noise(self, prompts: Sequence[Prompt], duration: float) -> torch.Tensor:
        """x0 per prompt from its own seed, drawn on the CPU so a seed means the same noise on any device."""
        shape = (self.generator.lengths(duration).latent, self.generator.config.latent_dim)
        noise = [torch.randn(shape, generator=torch.Generator().manual_seed(p.seed)) for p in prompts]
        return torch.stack(noise).to(self.device)

    def _generator_text(self, texts: list[str]) -> torch.Tensor:
        features, _ = self.generator_text_encoder(texts)
        return self.generator.fit_text(features.to(self.device))

    def _unconditional(self, prompts: list[Prompt], lengths: SequenceLengths) -> Conditions:
        """CFG's unconditional branch: null video and CLIP features and each prompt's negative text. Prompts
        with the same negative prompt share one condition row (`Conditions.rows`)."""
        negatives = list(dict.fromkeys(p.negative for p in prompts))
        rows = torch.tensor([negatives.index(p.negative) for p in prompts], device=self.device)
        return self.generator.null_conditions(len(negatives), lengths, self._negative_text(negatives)).select(rows)

    def _negative_text(self, negatives: list[str]) -> torch.Tensor | None:
        """Negative text features; an empty negative keeps the stored empty-string feature."""
        rows = [i for i, text in enumerate(negatives) if text]
        if not rows:
            return None
        features = self.generator.null_text(len(negatives)).clone()
        features[rows] = self._generator_text([negatives[i] for i in rows]).to(features.dtype)
        return features

    def _segments(self, frames: torch.Tensor, lengths: SequenceLengths) -> torch.Tensor:
        """(1, S, 16, 3, H, W) sync segments of the first int(fps*duration) frames."""
        segments = segment_frames(frames[None].to(self.device))
        if segments.shape[1] < lengths.sync_segments:
            raise ValueError(f"{frames.shape[0]} frames give {segments.shape[1]} sync segments, "
                             f"the duration needs {lengths.sync_segments}")
        return segments[:, : lengths.sync_segments]

    def _sync_features(self, frames: torch.Tensor | None, prompts: list[Prompt],
                       lengths: SequenceLengths) -> torch.Tensor:
        """Raw sync features (K, sync_len, sync_dim): per prompt (SelVA) or shared (MMAudio); null offscreen."""
        sync = self.generator.null_sync(len(prompts), lengths.sync).clone()
        rows = [i for i, p in enumerate(prompts) if p.onscreen]
        if not rows:
            return sync
        segments = self._segments(frames, lengths)
        if self.mode == "selva":
            trunk = self.video_encoder.encode_trunk(segments)  # the frozen ViT runs once for all prompts
            text_f, mask = self.video_text_encoder([prompts[i].text for i in rows])
            features = self.video_encoder.condition(trunk, text_f.to(self.device), mask.to(self.device))
        else:
            features = self.video_encoder(segments).expand(len(rows), -1, -1)
        sync[rows] = features.to(sync.dtype)
        return sync

    def _clip_features(self, frames: torch.Tensor | None, onscreen: list[bool],
                       lengths: SequenceLengths) -> torch.Tensor:
        """CLIP image features (K, clip_len, clip_dim): real only in MMAudio mode with an image encoder."""
        clip = self.generator.null_clip(len(onscreen), lengths.clip).clone()
        rows = [i for i, on in enumerate(onscreen) if on]
        if self.mode == "mmaudio" and self.image_encoder is not None and rows:
            # Sample-and-hold to CLIP_FPS, as the official decoder does on frame timestamps.
            index = (torch.arange(lengths.clip) * self.fps / CLIP_FPS).long().clamp(max=frames.shape[0] - 1)
            clip[rows] = self.image_encoder(frames[index].to(self.device)).to(clip.dtype)
        return clip
