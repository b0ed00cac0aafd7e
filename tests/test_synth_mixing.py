"""Side-by-side mixing: layout, pairing, sides, shares and mixing probability."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from otio_foley.synth.mixing import MixConfig, draw_share, mix_batch, side_by_side


def flat_clips(values: list[float], size: int = 32, t: int = 2) -> torch.Tensor:
    """B clips, each one constant value: easy to see who ended up where."""
    return torch.tensor(values, dtype=torch.float32)[:, None, None, None, None].expand(-1, t, 3, size, size).clone()


def test_layout_target_left_partner_reversed():
    frames = flat_clips([0.1, 0.2, 0.3, 0.4])
    out = mix_batch(frames, MixConfig(share=0.55), np.random.default_rng(0)).frames
    width = int(0.55 * 32)
    for i, partner in enumerate([0.4, 0.3, 0.2, 0.1]):
        assert torch.allclose(out[i, ..., :width], torch.tensor(0.1 * (i + 1)))
        assert torch.allclose(out[i, ..., width:], torch.tensor(partner))


def test_uint8_stays_uint8_and_resizes_to_size():
    frames = torch.randint(0, 256, (2, 3, 3, 40, 40), dtype=torch.uint8)
    out = mix_batch(frames, MixConfig(share=0.3), np.random.default_rng(0), size=24).frames
    assert out.dtype == torch.uint8 and out.shape == (2, 3, 3, 24, 24)


def test_side_by_side_keeps_structure():
    left = torch.zeros(1, 3, 16, 16)
    right = torch.ones(1, 3, 16, 16)
    out = side_by_side(left, right, 0.25, 16)
    assert out.shape == (1, 3, 16, 16)
    assert torch.allclose(out[..., :4], torch.zeros(1, 3, 16, 4)) and torch.allclose(out[..., 4:], torch.ones(1, 3, 16, 12))


def test_training_recipe_sides_shares_and_probability():
    config = MixConfig.training()
    rng = np.random.default_rng(1)
    frames = flat_clips([0.0, 1.0] * 100, size=20, t=1)
    result = mix_batch(frames, config, rng)
    mixed = result.mixed.numpy()
    assert 0.65 < mixed.mean() < 0.85
    lefts = result.target_left.numpy()[mixed]
    assert 0.35 < lefts.mean() < 0.65
    shares = result.share.numpy()[mixed]
    assert shares.min() >= 0.2 and shares.max() <= 0.95 and shares.std() > 0.1
    # Unmixed items are untouched; mixed ones on the right show the target (value of item i) on the right edge.
    for i in np.flatnonzero(~mixed):
        assert torch.equal(result.frames[i], frames[i])
    for i in np.flatnonzero(mixed & ~result.target_left.numpy()):
        assert torch.allclose(result.frames[i, ..., -1], frames[i, ..., -1])


def test_draw_share_rules():
    rng = np.random.default_rng(0)
    assert draw_share(MixConfig(share=0.3), rng) == 0.3
    draws = [draw_share(MixConfig(share=None, alpha=0.2, eps=0.05), rng) for _ in range(500)]
    assert min(draws) == pytest.approx(0.05) and max(draws) == pytest.approx(0.95)
    with pytest.raises(ValueError):
        MixConfig(share=None, alpha=0.0)
