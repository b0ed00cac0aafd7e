"""SelVA's TextSynch: Synchformer's visual branch with one text cross-attention block before the pooling.

The prompt's text features (FLAN-T5 `last_hidden_state` for the released model, 768-d; MiniLM, 384-d, for
the built-in tiny one) get learned [SUP] tokens prepended in the text space, are projected to the ViT
width, and serve as keys/values of a cross-attention whose queries are the ViT's output tokens. The block
is a gated residual that is an exact identity at initialisation (its `norm1` and `ffn.w2` start at zero),
so an untrained TextSynch reproduces plain Synchformer features. Parameter names follow the released
`video_enc_sup_5.pth`.

For K prompts on one clip the expensive, text-independent ViT trunk runs once (`encode_trunk`); the
cross-attention and pooling then run per prompt (`condition`).

`trunk_text` (off in SelVA; an option of the built-in tiny model) adds a second cross-attention block before
the trunk's last ViT block, so that block's space attention can already tell the named source from the rest
of the frame. The trunk then stops before that block, and the block runs per prompt.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .layers import MLP, RMSNorm
from .synchformer import (Synchformer, SynchformerConfig, VideoViT, filter_prefixes, map_chunks,
                          official_synchformer_config)


@dataclass(frozen=True)
class TextSynchConfig:
    """TextSynch sizes. The defaults are the released SelVA video encoder (`depth1`, 5 [SUP] tokens)."""

    video: SynchformerConfig = field(default_factory=SynchformerConfig)
    text_dim: int = 768  # width of the text encoder's token features
    num_sup_tokens: int = 5  # learned tokens prepended to the text; 0 for the "no [SUP]" ablation
    xattn_depth: int = 1
    trunk_text: bool = False  # a text cross-attention block before the last ViT block too (not in SelVA)


def official_textsynch_config() -> TextSynchConfig:
    """The released `video_enc_sup_5.pth` (134.8M parameters, FLAN-T5-base text features)."""
    return TextSynchConfig(video=official_synchformer_config())


class CrossAttention(nn.Module):
    """Video queries, text keys/values; per-head RMSNorm on q and k; boolean key mask (True = keep).

    `kv_proj` output is interleaved per head channel, (…, H, head_dim, 2) → k = [..., 0], v = [..., 1].
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.kv_proj = nn.Linear(dim, dim * 2)
        self.q_norm = RMSNorm(dim // num_heads)
        self.k_norm = RMSNorm(dim // num_heads)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        """x (B or 1, N, D), context (B, L, D), context_mask (B, L) bool → (B, N, D), heads merged.

        One x row serves all B contexts (K prompts on one clip): its queries are projected once."""
        n, d = x.shape[1:]
        b, h = context.shape[0], self.num_heads
        q = self.q_norm(self.q_proj(x).view(x.shape[0], n, h, d // h).transpose(1, 2)).expand(b, -1, -1, -1)
        k, v = self.kv_proj(context).view(b, -1, h, d // h, 2).transpose(1, 2).unbind(-1)
        mask = context_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, self.k_norm(k), v, attn_mask=mask)
        return out.transpose(1, 2).reshape(b, n, d)


class CrossAttentionBlock(nn.Module):
    """x + norm1(linear1(xattn(x, text))), then x + ffn(norm2(x)); q input is not normalised."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, num_heads)
        self.linear1 = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MLP(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.norm1(self.linear1(self.attn(x, context, context_mask)))
        return x + self.ffn(self.norm2(x))


class TextSynch(nn.Module):
    """Text-conditioned sync features: (B, S, F, 3, H, W) segments + text → (B, S·t, D).

    Text features are (K, L, text_dim) with a (K, L) bool mask (True = real token). `chunk_segments`
    bounds how many segments are processed at once; results do not depend on it.
    """

    OFFICIAL_PREFIXES = ("vfeat_extractor", "text_proj", "synch_text_cross_blocks", "sup_text_feat",
                         "empty_string_feat")
    STAGE1_GROUPS = {
        "cross_attention": "synch_text_cross_blocks.",
        "trunk_cross_attention": "trunk_text_cross_block.",  # only with `trunk_text`
        "sup_tokens": "sup_text_feat",
        "text_proj": "text_proj.",
        "spatial_pooling": "vfeat_extractor.spatial_attn_agg.",
    }

    def __init__(self, cfg: TextSynchConfig | None = None, chunk_segments: int = 8) -> None:
        super().__init__()
        self.cfg = cfg or TextSynchConfig()
        self.chunk_segments = chunk_segments
        video = self.cfg.video
        d = video.embed_dim
        self.vfeat_extractor = VideoViT(video)
        self.text_proj = nn.Sequential(nn.Linear(self.cfg.text_dim, d), nn.SiLU(), MLP(d, d * 4))
        self.synch_text_cross_blocks = nn.ModuleList(
            CrossAttentionBlock(d, video.num_heads, video.mlp_ratio) for _ in range(self.cfg.xattn_depth)
        )
        if self.cfg.trunk_text:
            self.trunk_text_cross_block = CrossAttentionBlock(d, video.num_heads, video.mlp_ratio)
        if self.cfg.num_sup_tokens > 0:
            self.sup_text_feat = nn.Parameter(torch.zeros(self.cfg.num_sup_tokens, self.cfg.text_dim))
        # Text features of "no text" (a single token), stored in the checkpoint but never trained.
        self.empty_string_feat = nn.Parameter(torch.zeros(1, self.cfg.text_dim), requires_grad=False)
        self.reset_text_parameters()

    def reset_text_parameters(self) -> None:
        """Official init of the new layers: xavier linears, zero biases, cross blocks an exact identity."""
        for part in (self.text_proj, *self.cross_blocks()):
            for module in part.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
        for block in self.cross_blocks():
            nn.init.zeros_(block.norm1.weight)
            nn.init.zeros_(block.norm1.bias)
            nn.init.zeros_(block.ffn.w2.weight)
        if self.cfg.num_sup_tokens > 0:
            nn.init.zeros_(self.sup_text_feat)

    def cross_blocks(self) -> list[CrossAttentionBlock]:
        """Every text cross-attention block: SelVA's, and the one inside the trunk where there is one."""
        trunk = [self.trunk_text_cross_block] if self.cfg.trunk_text else []
        return [*self.synch_text_cross_blocks, *trunk]

    # -- text side -------------------------------------------------------------------------------
    def empty_text(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and mask standing for "no text": (batch, 1, text_dim), (batch, 1) all True."""
        feat = self.empty_string_feat.unsqueeze(0).expand(batch, -1, -1)
        return feat, torch.ones(batch, 1, dtype=torch.bool, device=feat.device)

    def prepend_sup(self, text_f: torch.Tensor, text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prepend the [SUP] tokens (always kept) in the text space: (K, n_sup + L, text_dim), (K, n_sup + L)."""
        text_mask = text_mask.to(torch.bool)  # a float mask would become an additive bias in SDPA
        if self.cfg.num_sup_tokens == 0:
            return text_f, text_mask
        k = text_f.shape[0]
        sup = self.sup_text_feat.to(text_f.dtype).expand(k, -1, -1)
        sup_mask = torch.ones(k, self.cfg.num_sup_tokens, dtype=torch.bool, device=text_mask.device)
        return torch.cat([sup, text_f], dim=1), torch.cat([sup_mask, text_mask], dim=1)

    def encode_text(self, text_f: torch.Tensor, text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[SUP] prepend + text_proj: the keys/values source of the cross-attention, (K, n_sup + L, D)."""
        text_f, text_mask = self.prepend_sup(text_f, text_mask)
        if not bool(text_mask.any(dim=1).all()):
            raise ValueError("every prompt needs at least one unmasked text token")
        return self.text_proj(text_f), text_mask

    # -- video side ------------------------------------------------------------------------------
    def encode_trunk(self, segments: torch.Tensor) -> torch.Tensor:
        """(B, S, F, 3, H, W) → (B, S, t, h·w, D): text-independent ViT tokens after the final norm.

        With `trunk_text`: (B, S, 1 + t·h·w, D), the tokens (CLS first) before the last ViT block."""
        if not self.cfg.trunk_text:
            return self.vfeat_extractor.encode_segments(segments, self.chunk_segments)
        vit = self.vfeat_extractor
        tokens = map_chunks(lambda seg: vit.run_blocks(vit.embed(seg), vit.blocks[:-1]), segments.flatten(0, 1),
                            self.chunk_segments)
        return tokens.unflatten(0, segments.shape[:2])

    def finish_trunk(self, chunk: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """`trunk_text` only: (K or 1, c, 1 + t·h·w, D) tokens + projected text (K, L, D) → (K, c, t, h·w, D)
        through the trunk's text block, the last ViT block and the final norm."""
        c, n, d = chunk.shape[1:]
        tokens = self.trunk_text_cross_block(chunk.flatten(1, 2), text, text_mask).reshape(-1, n, d)
        vit = self.vfeat_extractor
        return vit.finish(vit.run_blocks(tokens, vit.blocks[-1:])).unflatten(0, (text.shape[0], c))

    def cross_attend(self, tokens: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """Video tokens (K, or 1 shared by the K prompts, N, D) through the cross-attention blocks with projected
        text (K, L, D)."""
        for block in self.synch_text_cross_blocks:
            tokens = block(tokens, text, text_mask)
        return tokens

    def condition(self, trunk: torch.Tensor, text_f: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """Trunk (B, S, t, h·w, D), as `encode_trunk` gives it, + text (K, L, text_dim) → sync features (K, S·t, D).

        B must be K, or 1 to share one clip's trunk between K prompts.
        """
        b, s = trunk.shape[:2]
        t, p, d = (self.cfg.video.temporal_tokens, self.cfg.video.spatial_tokens, self.cfg.video.embed_dim)
        k = text_f.shape[0]
        if b not in (1, k):
            raise ValueError(f"trunk batch {b} must be 1 or match the {k} prompts")
        text, text_mask = self.encode_text(text_f, text_mask)
        pooled = []
        for start in range(0, s, self.chunk_segments):
            chunk = trunk[:, start:start + self.chunk_segments]
            if self.cfg.trunk_text:
                chunk = self.finish_trunk(chunk, text, text_mask)
            c = chunk.shape[1]
            tokens = self.cross_attend(chunk.flatten(1, 3), text, text_mask)  # a shared trunk broadcasts
            pooled.append(self.vfeat_extractor.pool(tokens.reshape(k * c, t, p, d)).reshape(k, c * t, d))
        return torch.cat(pooled, dim=1)

    def forward(self, segments: torch.Tensor, text_f: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        return self.condition(self.encode_trunk(segments), text_f, text_mask)

    # -- training and loading --------------------------------------------------------------------
    def stage1_parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """What training stage 1 tunes, by group: cross-attention (and the trunk's, with `trunk_text`), [SUP]
        tokens, text projection, pooling."""
        groups = {group: [(n, p) for n, p in self.named_parameters() if n.startswith(prefix)]
                  for group, prefix in self.STAGE1_GROUPS.items()}
        return {group: named for group, named in groups.items() if named}

    def stage1_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """All stage-1 parameters (the ViT trunk and `empty_string_feat` are not among them)."""
        return [item for group in self.stage1_parameter_groups().values() for item in group]

    def trainable_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Every weight, trunk included: not the stored `empty_string_feat` nor the never-called 2-D patch embed."""
        frozen = {id(p) for p in self.vfeat_extractor.patch_embed.parameters()} | {id(self.empty_string_feat)}
        return [(n, p) for n, p in self.named_parameters() if id(p) not in frozen]

    def freeze_for_stage1(self) -> None:
        """requires_grad only on the stage-1 parameters (the ViT trunk stays frozen)."""
        stage1 = {id(p) for _, p in self.stage1_named_parameters()}
        for p in self.parameters():
            p.requires_grad_(id(p) in stage1)

    def load_video_from(self, synchformer: Synchformer) -> None:
        """Start from a plain Synchformer's visual branch (stage 1's student = the stage-0 teacher's ViT)."""
        self.vfeat_extractor.load_state_dict(synchformer.vfeat_extractor.state_dict())

    def load_official(self, state_dict: Mapping[str, torch.Tensor]):
        """Load `video_enc_sup_5.pth`: the official prefix filter, then a strict load."""
        return self.load_state_dict(filter_prefixes(state_dict, self.OFFICIAL_PREFIXES), strict=True)


def official_textsynch(chunk_segments: int = 8) -> TextSynch:
    """The released SelVA video encoder (`get_my_textsynch('depth1')`, 5 [SUP] tokens)."""
    return TextSynch(official_textsynch_config(), chunk_segments)
