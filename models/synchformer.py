"""Synchformer's visual branch: a divided space-time ViT over 16-frame segments, pooled to 8 tokens each.

This is the video half of Synchformer as MMAudio and SelVA use it (the "sync features": 24 tokens per
second). Parameter names follow the official state_dict (`vfeat_extractor.*`) so the released
`synchformer_state_dict.pth` and the ViT inside SelVA's `video_enc_sup_5.pth` load strictly.

Per 16-frame segment: a Conv3d tubelet embedding (2×16×16) gives t×h×w tokens (8×14×14 at 224²) plus a
CLS token; spatial and temporal position embeddings are added separately; each block runs time attention,
then space attention, then an MLP (pre-norm, residual; LayerNorm eps 1e-6); the final norm is applied
with the CLS token dropped. A pooling layer then reduces the h×w tokens of every temporal slot to one
token through a learned CLS query, so a segment yields t tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

VIT_NORM_EPS = 1e-6


@dataclass(frozen=True)
class SynchformerConfig:
    """Sizes of the visual branch. The defaults are the official ViT-B (divided_224_16x4)."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: int = 4
    image_size: int = 224  # frames are square, image_size × image_size
    patch_size: int = 16
    tubelet: int = 2  # frames per token along time
    segment_frames: int = 16  # frames per segment (0.64 s at 25 fps)
    segment_stride: int = 8  # frames between segment starts (0.32 s at 25 fps)

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.image_size % self.patch_size or self.segment_frames % self.tubelet:
            raise ValueError("image_size must be a multiple of patch_size and segment_frames of tubelet")

    @property
    def temporal_tokens(self) -> int:
        """Tokens per segment along time (8), which is also the pooled tokens per segment."""
        return self.segment_frames // self.tubelet

    @property
    def spatial_tokens(self) -> int:
        """Tokens per temporal slot (14 × 14 = 196 at 224²)."""
        return (self.image_size // self.patch_size) ** 2


def official_synchformer_config() -> SynchformerConfig:
    """The released Synchformer / SelVA visual branch (122.4M parameters)."""
    return SynchformerConfig()


def num_segments(num_frames: int, size: int = 16, stride: int = 8) -> int:
    """Whole segments in `num_frames` frames; trailing frames that do not fill one are dropped."""
    return max(0, (num_frames - size) // stride + 1)


def segment_frames(frames: torch.Tensor, size: int = 16, stride: int = 8) -> torch.Tensor:
    """(B, T, 3, H, W) → (B, S, size, 3, H, W) overlapping segments, S = (T - size) // stride + 1.

    Returns a strided view (no copy); 8 s at 25 fps gives 24 segments.
    """
    if frames.ndim != 5:
        raise ValueError(f"frames must be (B, T, 3, H, W), got shape {tuple(frames.shape)}")
    if frames.shape[1] < size:
        raise ValueError(f"need at least {size} frames for one segment, got {frames.shape[1]}")
    return frames.unfold(1, size, stride).permute(0, 1, 5, 2, 3, 4)


def filter_prefixes(state_dict: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Keep the keys starting with one of `prefixes` (the official loaders' plain string test)."""
    return {k: v for k, v in state_dict.items() if k.startswith(prefixes)}


def map_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int) -> torch.Tensor:
    """fn over slices of at most `chunk` rows of x, concatenated (bounds peak memory)."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    return torch.cat([fn(x[i:i + chunk]) for i in range(0, x.shape[0], chunk)], dim=0)


class DividedAttention(nn.Module):
    """Multi-head attention restricted to the tokens of one time line or one frame, plus CLS.

    `qkv` is split in blocked [q | k | v] layout. The CLS query attends to every token; a patch query
    attends to the CLS key and to the patches that share its spatial position (`over_time`) or its
    temporal slot (space).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, temporal_tokens: int, over_time: bool) -> torch.Tensor:
        b, n, d = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)  # each (B, H, N, hd)
        cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v)

        patches = (n - 1) // temporal_tokens

        def grouped(t: torch.Tensor) -> torch.Tensor:
            """Patch tokens as (B, H, groups, group length, hd): groups are time lines or frames."""
            t = t[:, :, 1:].unflatten(2, (temporal_tokens, patches))
            return t.transpose(2, 3) if over_time else t

        def with_cls(t: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
            return torch.cat([cls.unsqueeze(2).expand(-1, -1, t.shape[2], -1, -1), t], dim=3)

        qg = grouped(q)
        kg, vg = with_cls(grouped(k), k[:, :, :1]), with_cls(grouped(v), v[:, :, :1])
        out = F.scaled_dot_product_attention(qg.flatten(1, 2), kg.flatten(1, 2), vg.flatten(1, 2))
        out = out.unflatten(1, (h, qg.shape[2]))
        if over_time:
            out = out.transpose(2, 3)
        out = torch.cat([cls_out, out.flatten(2, 3)], dim=2)  # (B, H, N, hd)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class ViTMLP(nn.Module):
    """fc1 → exact GELU → fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class DividedSpaceTimeBlock(nn.Module):
    """Time attention (norm3), then space attention (norm1), then MLP (norm2); all pre-norm residual."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=VIT_NORM_EPS)
        self.attn = DividedAttention(dim, num_heads)
        self.timeattn = DividedAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=VIT_NORM_EPS)
        self.mlp = ViTMLP(dim, dim * mlp_ratio)
        self.norm3 = nn.LayerNorm(dim, eps=VIT_NORM_EPS)

    def forward(self, x: torch.Tensor, temporal_tokens: int) -> torch.Tensor:
        x = x + self.timeattn(self.norm3(x), temporal_tokens, over_time=True)
        x = x + self.attn(self.norm1(x), temporal_tokens, over_time=False)
        return x + self.mlp(self.norm2(x))


class PatchEmbed3D(nn.Module):
    """Tubelet embedding: (N, 3, F, H, W) → (N, t·h·w, D), token index t·(h·w) + y·w + x."""

    def __init__(self, cfg: SynchformerConfig) -> None:
        super().__init__()
        kernel = (cfg.tubelet, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(3, cfg.embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class UnusedPatchEmbed2D(nn.Module):
    """A 2-D patch embedding that the official ViT builds but never calls.

    Kept (frozen) only because the released checkpoints contain `patch_embed.proj.*` and load strictly.
    """

    def __init__(self, cfg: SynchformerConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.requires_grad_(False)


class SpatialPooling(nn.Module):
    """Pools each temporal slot's h·w tokens into one through a learned CLS query.

    Equivalent to the official `nn.TransformerEncoderLayer` (norm_first, exact GELU, eps 1e-6, no dropout)
    run on [CLS, tokens] and read at CLS, with the same parameter names; since only the CLS row is kept,
    only that row is computed (every other token just supplies keys and values).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.self_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.linear1 = nn.Linear(dim, dim * mlp_ratio)
        self.linear2 = nn.Linear(dim * mlp_ratio, dim)
        self.norm1 = nn.LayerNorm(dim, eps=VIT_NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=VIT_NORM_EPS)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, P, D) → (N, D)."""
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        h = self.norm1(x)
        cls = x[:, :1] + self.self_attn(h[:, :1], h, h, need_weights=False)[0]
        cls = cls + self.linear2(F.gelu(self.linear1(self.norm2(cls))))
        return cls[:, 0]


class VideoViT(nn.Module):
    """The official `vfeat_extractor`: tubelet embedding, divided space-time blocks, final norm, pooling."""

    def __init__(self, cfg: SynchformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.spatial_tokens, d))
        self.temp_embed = nn.Parameter(torch.zeros(1, cfg.temporal_tokens, d))
        self.patch_embed = UnusedPatchEmbed2D(cfg)
        self.patch_embed_3d = PatchEmbed3D(cfg)
        self.blocks = nn.ModuleList(
            DividedSpaceTimeBlock(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(d, eps=VIT_NORM_EPS)
        self.spatial_attn_agg = SpatialPooling(d, cfg.num_heads, cfg.mlp_ratio)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """ViT-style init for training from scratch (the official one zeroes the tubelet embedding)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        for p in (self.cls_token, self.pos_embed, self.temp_embed, self.spatial_attn_agg.cls_token):
            nn.init.trunc_normal_(p, std=0.02)

    def embed(self, segments: torch.Tensor) -> torch.Tensor:
        """(N, F, 3, H, W) segments → (N, 1 + t·h·w, D): [CLS] + tubelet tokens with position embeddings."""
        cfg = self.cfg
        expected = (cfg.segment_frames, 3, cfg.image_size, cfg.image_size)
        if tuple(segments.shape[1:]) != expected:
            raise ValueError(f"segments must be (N, {', '.join(map(str, expected))}), got {tuple(segments.shape)}")
        x = self.patch_embed_3d(segments.transpose(1, 2))
        pos = self.pos_embed[:, 1:].repeat(1, cfg.temporal_tokens, 1)
        pos = pos + self.temp_embed.repeat_interleave(cfg.spatial_tokens, dim=1)
        pos = torch.cat([self.pos_embed[:, :1], pos], dim=1)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], dim=1) + pos

    def run_blocks(self, x: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
        """(N, 1 + t·h·w, D) tokens through `blocks` (some or all of `self.blocks`)."""
        for block in blocks:
            x = block(x, self.cfg.temporal_tokens)
        return x

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1 + t·h·w, D) block outputs → (N, t, h·w, D): the final norm, CLS dropped."""
        return self.norm(x[:, 1:]).unflatten(1, (self.cfg.temporal_tokens, self.cfg.spatial_tokens))

    def trunk(self, segments: torch.Tensor) -> torch.Tensor:
        """(N, F, 3, H, W) → (N, t, h·w, D): block outputs after the final norm, CLS dropped."""
        return self.finish(self.run_blocks(self.embed(segments), self.blocks))

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, t, h·w, D) → (N, t, D): one token per temporal slot."""
        return self.spatial_attn_agg(tokens.flatten(0, 1)).unflatten(0, tokens.shape[:2])

    def encode_segments(self, segments: torch.Tensor, chunk: int) -> torch.Tensor:
        """(B, S, F, 3, H, W) → (B, S, t, h·w, D), at most `chunk` segments through the ViT at once."""
        b, s = segments.shape[:2]
        flat = segments.flatten(0, 1)
        return map_chunks(self.trunk, flat, chunk).unflatten(0, (b, s))


class Synchformer(nn.Module):
    """Plain Synchformer sync features: forward((B, S, F, 3, H, W) segments) → (B, S·t, D).

    Frames are RGB in [-1, 1] ((u8/255 − 0.5)/0.5), resized to image_size². `chunk_segments` bounds how
    many segments go through the ViT at once; the result does not depend on it.
    """

    OFFICIAL_PREFIXES = ("vfeat_extractor",)

    def __init__(self, cfg: SynchformerConfig | None = None, chunk_segments: int = 8) -> None:
        super().__init__()
        self.cfg = cfg or SynchformerConfig()
        self.chunk_segments = chunk_segments
        self.vfeat_extractor = VideoViT(self.cfg)

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        vit = self.vfeat_extractor
        tokens = map_chunks(lambda seg: vit.pool(vit.trunk(seg)), segments.flatten(0, 1), self.chunk_segments)
        return tokens.unflatten(0, segments.shape[:2]).flatten(1, 2)

    def load_official(self, state_dict: Mapping[str, torch.Tensor]):
        """Load `synchformer_state_dict.pth` (the whole sync model): keep `vfeat_extractor*`, strict."""
        return self.load_state_dict(filter_prefixes(state_dict, self.OFFICIAL_PREFIXES), strict=True)


def official_synchformer(chunk_segments: int = 8) -> Synchformer:
    """The released MMAudio/SelVA plain Synchformer visual branch."""
    return Synchformer(official_synchformer_config(), chunk_segments)
