"""Video encoders (models/synchformer.py, models/textsynch.py): checkpoint layout, loading, trunk sharing.

Numerical parity with the official code is in test_parity.py (fixtures synchformer_small, textsynch_small).
"""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from conftest import parity_dir
from manifests import assert_state_dict_matches, manifest_keys
from otio_foley.models.synchformer import (
    Synchformer,
    SynchformerConfig,
    num_segments,
    official_synchformer,
    segment_frames,
)
from otio_foley.models.textsynch import TextSynch, TextSynchConfig, official_textsynch

SMALL_VIDEO = SynchformerConfig(embed_dim=32, depth=1, num_heads=2, image_size=32)


def small_textsynch(num_sup_tokens: int = 3, chunk_segments: int = 2, trunk_text: bool = False) -> TextSynch:
    """A small TextSynch whose cross blocks are NOT identities (random norm1 / ffn.w2 / [SUP] tokens); with
    `trunk_text`, two ViT blocks and a text block before the second."""
    torch.manual_seed(0)
    video = replace(SMALL_VIDEO, depth=2) if trunk_text else SMALL_VIDEO
    model = TextSynch(TextSynchConfig(video=video, text_dim=24, num_sup_tokens=num_sup_tokens, trunk_text=trunk_text),
                      chunk_segments=chunk_segments).eval()
    with torch.no_grad():
        for block in model.cross_blocks():
            for p in (block.norm1.weight, block.norm1.bias, block.ffn.w2.weight):
                p.normal_(0, 0.3)
        if num_sup_tokens:
            model.sup_text_feat.normal_(0, 0.5)
    return model


def random_segments(batch: int, frames: int, size: int = 32) -> torch.Tensor:
    torch.manual_seed(1)
    return segment_frames(torch.rand(batch, frames, 3, size, size) * 2 - 1)


def random_text(k: int, length: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(2)
    mask = torch.arange(length)[None] < torch.tensor([length, 3, 1][:k] + [2] * max(0, k - 3))[:, None]
    return torch.randn(k, length, 24), mask


# -- full-size layout (meta device: no memory, no time) -------------------------------------------
def test_synchformer_keys_match_released_checkpoint() -> None:
    with torch.device("meta"):
        model = official_synchformer()
    assert_state_dict_matches(model, "synchformer_vfeat")
    assert sum(p.numel() for p in model.parameters()) == 122_440_704


def test_textsynch_keys_match_released_checkpoint() -> None:
    with torch.device("meta"):
        model = official_textsynch()
    assert_state_dict_matches(model, "selva_video_enc_sup_5")
    assert sum(p.numel() for p in model.parameters()) == 134_838_656


def test_released_layouts_load_through_prefix_filters() -> None:
    """Full-size files (as meta tensors) with the extra keys the official loaders drop load strictly."""
    with torch.device("meta"):
        textsynch, synchformer = official_textsynch(), official_synchformer()
    video_enc = {k: torch.empty(s, device="meta") for k, s in manifest_keys("selva_video_enc_sup_5").items()}
    textsynch.load_official({**video_enc, "afeat_extractor.blocks.0.w": torch.empty(1, device="meta")})
    sync_model = {k: torch.empty(s, device="meta") for k, s in manifest_keys("synchformer_vfeat").items()}
    extras = ("afeat_extractor.norm.weight", "vproj.weight", "aproj.weight", "transformer.blocks.0.w")
    synchformer.load_official({**sync_model, **{k: torch.empty(3, device="meta") for k in extras}})
    del video_enc["synch_text_cross_blocks.0.attn.q_norm.weight"]
    with pytest.raises(RuntimeError, match="q_norm"):
        textsynch.load_official(video_enc)


def test_fabricated_official_state_dict_loads_values() -> None:
    """The official key list of the reduced fixture model, with random values, lands in the right tensors."""
    meta = json.loads((parity_dir() / "textsynch_small.json").read_text())
    torch.manual_seed(3)
    official = {k: torch.randn(shape) for k, (shape, _) in meta["params"]["keys"].items()}
    cfg = TextSynchConfig(video=SynchformerConfig(embed_dim=64, depth=2, num_heads=2))
    model = TextSynch(cfg)
    model.load_official({**official, "latent_mean": torch.zeros(1)})
    ours = model.state_dict()
    assert set(ours) == set(official)
    assert all(torch.equal(ours[k], v) for k, v in official.items())

    plain = Synchformer(cfg.video)
    plain.load_official(official)  # drops the text layers
    assert all(torch.equal(v, official[k]) for k, v in plain.state_dict().items())


# -- segments ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds, segments", [(8.0, 24), (2.0, 5), (5.0, 14)])
def test_segment_counts(seconds: float, segments: int) -> None:
    frames = int(25 * seconds)
    assert num_segments(frames) == segments
    video = torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1, 1).expand(1, frames, 3, 2, 2)
    seg = segment_frames(video)
    assert seg.shape == (1, segments, 16, 3, 2, 2)
    for s in (0, segments - 1):
        assert torch.equal(seg[0, s, :, 0, 0, 0], torch.arange(8 * s, 8 * s + 16, dtype=torch.float32))


def test_too_few_frames_is_refused() -> None:
    assert num_segments(15) == 0
    with pytest.raises(ValueError, match="16 frames"):
        segment_frames(torch.zeros(1, 15, 3, 4, 4))


def test_sync_feature_shape_two_seconds() -> None:
    model = small_textsynch()
    text_f, mask = random_text(1)
    with torch.inference_mode():
        out = model(random_segments(1, 50), text_f, mask)
    assert out.shape == (1, 5 * 8, 32)


# -- trunk once, prompts many --------------------------------------------------------------------
@pytest.mark.parametrize("trunk_text", [False, True])
def test_shared_trunk_equals_per_prompt_forward(trunk_text: bool) -> None:
    model = small_textsynch(trunk_text=trunk_text)
    segments = random_segments(1, 40)  # 4 segments, chunks of 2
    text_f, mask = random_text(3)
    with torch.inference_mode():
        shared = model.condition(model.encode_trunk(segments), text_f, mask)
        one_by_one = torch.cat([model(segments, text_f[i:i + 1], mask[i:i + 1]) for i in range(3)])
    assert shared.shape == (3, 4 * 8, 32)
    torch.testing.assert_close(shared, one_by_one, atol=1e-5, rtol=1e-5)
    assert (shared[0] - shared[1]).abs().max() > 1e-3  # the prompts do change the features


@pytest.mark.parametrize("trunk_text", [False, True])
def test_chunking_does_not_change_results(trunk_text: bool) -> None:
    segments = random_segments(2, 40)
    text_f, mask = random_text(2)
    with torch.inference_mode():
        whole = small_textsynch(chunk_segments=8, trunk_text=trunk_text)(segments, text_f, mask)
        chunked = small_textsynch(chunk_segments=1, trunk_text=trunk_text)(segments, text_f, mask)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


def test_masked_tokens_are_ignored_and_float_masks_act_as_bool() -> None:
    model = small_textsynch()
    trunk = model.encode_trunk(random_segments(1, 16)).detach()
    text_f, mask = random_text(2)
    changed = text_f.clone()
    changed[~mask] = 100.0
    with torch.inference_mode():
        ref = model.condition(trunk, text_f, mask)
        torch.testing.assert_close(model.condition(trunk, changed, mask), ref)
        torch.testing.assert_close(model.condition(trunk, text_f, mask.float()), ref)


def test_prompt_with_no_visible_token_is_refused() -> None:
    model = small_textsynch(num_sup_tokens=0)
    text_f, mask = random_text(1)
    with pytest.raises(ValueError, match="unmasked"):
        model.condition(model.encode_trunk(random_segments(1, 16)), text_f, torch.zeros_like(mask))


# -- initialisation and training groups ----------------------------------------------------------
def test_fresh_textsynch_reproduces_plain_synchformer() -> None:
    """Official init: norm1 and ffn.w2 zero, so the cross block is an identity and [SUP] tokens are zero."""
    torch.manual_seed(4)
    plain = Synchformer(SMALL_VIDEO).eval()
    textsynch = TextSynch(TextSynchConfig(video=SMALL_VIDEO, text_dim=24)).eval()
    textsynch.load_video_from(plain)
    segments = random_segments(1, 24)
    text_f, mask = random_text(2)
    with torch.inference_mode():
        trunk = textsynch.encode_trunk(segments)
        text, text_mask = textsynch.encode_text(text_f, mask)
        tokens = trunk.flatten(1, 3).expand(2, -1, -1)
        assert torch.equal(textsynch.cross_attend(tokens, text, text_mask), tokens)
        torch.testing.assert_close(textsynch(segments, text_f, mask), plain(segments).expand(2, -1, -1))
    assert not textsynch.sup_text_feat.any()


@pytest.mark.parametrize("trunk_text", [False, True])
def test_new_layers_get_the_official_init(trunk_text: bool) -> None:
    """Xavier-uniform weights and zero biases in the text projection and every cross block; the blocks' ffn.w2 is
    zero (identity start). PyTorch's own Linear init would draw non-zero biases and narrower weights."""
    model = TextSynch(TextSynchConfig(video=replace(SMALL_VIDEO, depth=2), text_dim=24, trunk_text=trunk_text))
    linears = [m for part in (model.text_proj, *model.cross_blocks()) for m in part.modules()
               if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4 + 6 * len(model.cross_blocks())
    for block in model.cross_blocks():
        assert not block.ffn.w2.weight.any()
    for linear in linears:
        assert linear.bias is None or not linear.bias.any()
        if linear.weight.any():
            bound = (6 / sum(linear.weight.shape)) ** 0.5
            assert 0.75 * bound < linear.weight.abs().max() <= bound


def test_trunk_text_block_starts_as_identity_and_lets_the_last_block_read_the_text() -> None:
    torch.manual_seed(4)
    video = replace(SMALL_VIDEO, depth=2)
    plain = Synchformer(video).eval()
    fresh = TextSynch(TextSynchConfig(video=video, text_dim=24, trunk_text=True)).eval()
    fresh.load_video_from(plain)
    segments = random_segments(1, 24)
    text_f, mask = random_text(2)
    with torch.inference_mode():
        torch.testing.assert_close(fresh(segments, text_f, mask), plain(segments).expand(2, -1, -1))
        model = small_textsynch(trunk_text=True)
        trunk = model.encode_trunk(segments)  # stops before the last ViT block: CLS kept, no final norm
        assert trunk.shape == (1, 2, 1 + 8 * 4, 32)
        text, text_mask = model.encode_text(text_f, mask)
        finished = model.finish_trunk(trunk, text, text_mask)
    assert finished.shape == (2, 2, 8, 4, 32)
    assert (finished[0] - finished[1]).abs().max() > 1e-3  # the last block's output depends on the prompt


@pytest.mark.parametrize("trunk_text", [False, True])
def test_stage1_trains_only_the_new_layers_and_pooling(trunk_text: bool) -> None:
    model = small_textsynch(trunk_text=trunk_text)
    model.freeze_for_stage1()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.stage1_named_parameters()}
    groups = model.stage1_parameter_groups()
    trunk_group = {"trunk_cross_attention"} if trunk_text else set()
    assert set(groups) == {"cross_attention", "sup_tokens", "text_proj", "spatial_pooling", *trunk_group}
    assert all(groups.values())
    assert "sup_text_feat" in trainable and "vfeat_extractor.spatial_attn_agg.cls_token" in trainable
    assert any(n.startswith("text_proj.") for n in trainable)
    assert any(n.startswith("synch_text_cross_blocks.0.attn.") for n in trainable)
    assert not any(n.startswith(("vfeat_extractor.blocks", "vfeat_extractor.patch_embed", "empty_string_feat"))
                   for n in trainable)

    text_f, mask = random_text(2)
    model(random_segments(2, 16), text_f, mask).square().mean().backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == trainable


def test_no_sup_ablation() -> None:
    model = small_textsynch(num_sup_tokens=0)
    assert "sup_text_feat" not in model.state_dict()
    text_f, mask = random_text(2)
    prepended, prepended_mask = model.prepend_sup(text_f, mask)
    assert torch.equal(prepended, text_f) and torch.equal(prepended_mask, mask)
    with torch.inference_mode():
        assert model(random_segments(1, 16), text_f, mask).shape == (2, 8, 32)


def test_empty_text_is_one_visible_token() -> None:
    model = small_textsynch()
    feat, mask = model.empty_text(3)
    assert feat.shape == (3, 1, 24) and mask.all()
    with torch.inference_mode():
        assert model(random_segments(1, 16), feat, mask).shape == (3, 8, 32)
