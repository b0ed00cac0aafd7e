"""The tiny model's own parts: MiniLM text features, the mel codec, and the training loop's resume."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from otio_foley.models.mel_codec import MelCodec, MelCodecConfig, median_over_time
from otio_foley.models.text_encoders import MiniLMEncoder
from otio_foley.training.loop import LoopConfig, learning_rate, train


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return MiniLMEncoder()


def test_minilm_features_mask_and_cache(minilm: MiniLMEncoder) -> None:
    feats, mask = minilm(["a red ball bouncing", "", "a ticking clock"])
    assert feats.shape[0] == 3 and feats.shape[2] == 384 and mask.dtype == torch.bool
    assert mask[1].sum() == 2  # "" is [CLS] [SEP]
    assert (feats[~mask] == 0).all()
    alone, alone_mask = minilm(["a ticking clock"])
    n = int(alone_mask.sum())
    torch.testing.assert_close(alone[0, :n], feats[2, :n])  # padding does not change a prompt's features
    assert not torch.allclose(feats[0, 1], feats[2, 1])  # different words, different features


def test_minilm_fixed_length(minilm: MiniLMEncoder) -> None:
    fixed = minilm.with_length(4)
    feats, mask = fixed(["a", "a bell rings at every swing of the rope"])
    assert feats.shape == (2, 4, 384) and mask[1].all() and mask[0].tolist() == [True, True, True, False]


def test_mel_codec_lengths_and_round_trip() -> None:
    codec = MelCodec(MelCodecConfig(hop=512, max_log_mel=None, output_gain_db=0.0, median_frames=1))  # plain
    sr = codec.sample_rate
    t = torch.arange(2 * sr) / sr
    tone = 0.5 * torch.sin(2 * math.pi * 440 * t) * (t % 0.5 < 0.2)
    latents = codec.encode(tone[None])
    assert latents.shape == (1, codec.frames(2.0), 40) == (1, 63, 40)
    audio = codec.decode(latents)
    assert audio.shape == (1, 63 * 512)
    # Griffin-Lim recovers the magnitudes (phase is free): compare in the latent domain. Most frames match
    # closely; the error sits at the hard onsets, smeared over one 64 ms window.
    error = (codec.encode(audio[:, : 2 * sr]) - latents).abs()
    assert error.median() < 0.05 and error.mean() < 0.4
    torch.testing.assert_close(codec.decode(latents), audio)  # deterministic


def test_mel_codec_output_level_caps_overshoot() -> None:
    """Frames far above the training range (CFG overshoot) decode near full scale, not at x1000."""
    codec = MelCodec(MelCodecConfig(hop=512))
    overshoot = torch.full((1, 32, 40), -4.0)
    overshoot[:, 10:20, 5:15] = 4.0  # 10^4 x a loud tone's magnitude
    peak = float(codec.decode(overshoot).abs().max())
    assert 0.05 < peak < 1.0  # 10 loud bins x 10 frames at the cap, -18 dB
    plain = MelCodec(MelCodecConfig(hop=512, max_log_mel=None, output_gain_db=0.0))
    assert float(plain.decode(overshoot).abs().max()) > 100 * peak
    half = MelCodec(MelCodecConfig(hop=512, output_gain_db=-6.0206))
    relative = -6.0206 - MelCodecConfig().output_gain_db
    torch.testing.assert_close(half.decode(overshoot), codec.decode(overshoot) * 10 ** (relative / 20))


def test_median_over_time_drops_flutter_and_keeps_steps() -> None:
    """The decoder's 3-frame median: a one-frame spike or dip is flutter and goes; a step (an onset) stays on
    its frame; every bin is filtered on its own."""
    latents = torch.full((1, 12, 2), -3.0)
    latents[0, 4, 0] = 1.0  # a one-frame spike in bin 0
    latents[0, 7:, 1] = 0.0  # an onset at frame 7 in bin 1
    latents[0, 9, 1] = -3.0  # a one-frame dip inside it
    out = median_over_time(latents, 3)
    assert (out[0, :, 0] == -3.0).all()
    assert out[0, :, 1].tolist() == [-3.0] * 7 + [0.0] * 5
    assert torch.equal(median_over_time(latents, 1), latents)
    with pytest.raises(ValueError, match="odd"):
        MelCodecConfig(median_frames=2)


def test_mel_codec_cap_leaves_training_range_alone() -> None:
    """A stem as loud as the loudest training frames decodes exactly as the uncapped inverse does."""
    t = torch.arange(16000) / 16000
    tone = 0.3 * torch.sin(2 * math.pi * 440 * t)
    capped = MelCodec(MelCodecConfig(hop=512))
    plain = MelCodec(MelCodecConfig(hop=512, max_log_mel=None, output_gain_db=capped.cfg.output_gain_db))
    latents = plain.encode(tone[None])
    assert latents.max() < MelCodecConfig().max_log_mel
    torch.testing.assert_close(capped.decode(latents), plain.decode(latents))


def test_warmup_and_decay() -> None:
    cfg = LoopConfig(steps=100, lr=1.0, warmup=10, decay_at=(0.8,), decay_gamma=0.1)
    assert learning_rate(cfg, 0) == pytest.approx(0.1)
    assert learning_rate(cfg, 50) == 1.0 and learning_rate(cfg, 85) == pytest.approx(0.1)


class _Crash(Exception):
    pass


def _toy() -> tuple[nn.Module, callable]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.2), nn.Linear(16, 1))  # dropout uses the global RNG

    def loss(step: int, g: torch.Generator) -> torch.Tensor:
        x = torch.randn(8, 4, generator=g)
        return (model(x).squeeze(1) - x.sum(1)).pow(2).mean()

    return model, loss


def test_resumed_run_is_bit_identical(tmp_path) -> None:
    cfg = LoopConfig(steps=30, lr=1e-2, warmup=5, checkpoint_every=10, ema_decay=0.9)
    straight, loss = _toy()
    ema_a, losses_a = train(straight, loss, cfg, checkpoint=tmp_path / "a.ckpt")

    crashed, loss = _toy()

    def dies_at_25(step: int, g: torch.Generator) -> torch.Tensor:
        if step == 25:
            raise _Crash
        return loss(step, g)

    with pytest.raises(_Crash):
        train(crashed, dies_at_25, cfg, checkpoint=tmp_path / "b.ckpt")
    resumed, loss = _toy()  # a fresh process: new model, state only from the checkpoint (step 20)
    torch.manual_seed(123)  # whatever the global RNG holds now, the checkpoint restores it
    ema_b, losses_b = train(resumed, loss, cfg, checkpoint=tmp_path / "b.ckpt")
    assert losses_b == losses_a[20:]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    for name in ema_a.shadow:
        assert torch.equal(ema_a.shadow[name], ema_b.shadow[name]), name
    assert losses_a[-1] < losses_a[0]


def test_both_text_paths_share_one_minilm() -> None:
    """The generator side is a fixed-length view of the video side's loaded model, not a second load."""
    from otio_foley.models.tiny import GENERATOR_TEXT_TOKENS, text_encoders

    video_side, generator_side = text_encoders()
    assert generator_side.model is video_side.model and generator_side._cache is not video_side._cache
    features, mask = generator_side(["a red ball bouncing"])
    assert features.shape[1] == GENERATOR_TEXT_TOKENS and video_side.length is None
    torch.testing.assert_close(features[0, : mask[0].sum()], video_side(["a red ball bouncing"])[0][0])
