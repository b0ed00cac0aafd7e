"""Parity runners for the video encoders: plain Synchformer and SelVA's TextSynch (parity README §5)."""
from __future__ import annotations

import torch

from otio_foley.models.synchformer import Synchformer, SynchformerConfig, segment_frames
from otio_foley.models.textsynch import TextSynch, TextSynchConfig

from . import params


def _video_config(meta: dict) -> SynchformerConfig:
    """The reduced ViT of the fixture: the official config with the JSON's VIT.* overrides."""
    overrides = meta["motionformer_config_overrides"]
    return SynchformerConfig(embed_dim=overrides["VIT.EMBED_DIM"], num_heads=overrides["VIT.NUM_HEADS"],
                             depth=overrides["VIT.DEPTH"])


def _segments(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    frames = (tensors["in.frames_u8"].float() / 255 - 0.5) / 0.5
    return segment_frames(frames)


def _as_grid(tokens: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, S, t, h·w, D) → the fixture's (B·S, D, t, h, w) layout."""
    return tokens.flatten(0, 1).unflatten(2, (grid, grid)).permute(0, 4, 1, 2, 3)


def run_synchformer(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, torch.Tensor]:
    model = Synchformer(_video_config(meta), chunk_segments=2).eval()
    model.load_official(params(tensors))
    return {"out.sync_features": model(_segments(tensors))}


def run_textsynch(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, torch.Tensor]:
    args = meta["constructor_args"]
    cfg = TextSynchConfig(video=_video_config(meta), text_dim=args["text_dim"],
                          num_sup_tokens=args["num_sup_text_tokens"], xattn_depth=args["xattn_depth"])
    model = TextSynch(cfg, chunk_segments=2).eval()
    model.load_official(params(tensors))
    vit = model.vfeat_extractor
    grid = cfg.video.image_size // cfg.video.patch_size
    segments = _segments(tensors)
    text_f, text_mask = tensors["in.text_f"], tensors["in.text_mask"]

    out: dict[str, torch.Tensor] = {}
    out["mid.text_f_with_sup"], out["mid.text_mask_with_sup"] = model.prepend_sup(text_f, text_mask)
    text, mask = model.encode_text(text_f, text_mask)
    out["mid.text_proj"] = text

    seg0 = segments[0, :1]
    out["mid.seg0.patch_embed"] = vit.patch_embed_3d(seg0.transpose(1, 2))[0]
    x = vit.embed(seg0)
    out["mid.seg0.tokens_in"] = x[0]
    for i, block in enumerate(vit.blocks):
        x = block(x, cfg.video.temporal_tokens)
        out[f"mid.seg0.block{i}"] = x[0]

    trunk = model.encode_trunk(segments)
    out["mid.vit_tokens"] = _as_grid(trunk, grid)
    crossed = model.cross_attend(trunk.flatten(1, 3), text, mask).view(trunk.shape)
    out["mid.xattn_out"] = _as_grid(crossed, grid)
    out["mid.seg0.xattn_attn"] = model.synch_text_cross_blocks[0].attn(trunk[0, 0].flatten(0, 1)[None], text[:1],
                                                                        mask[:1])[0]
    out["out.sync_features"] = model(segments, text_f, text_mask)
    return out


RUNNERS = {
    "selva.ext.synchformer.Synchformer": run_synchformer,
    "selva.model.networks_video_enc.TextSynch": run_textsynch,
}
