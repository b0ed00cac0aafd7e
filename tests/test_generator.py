"""MM-DiT generator, flow matching and the SelVA pipeline (small random components; parity is in test_parity)."""
from __future__ import annotations

import zlib
from dataclasses import replace

import pytest
import torch
from torch import nn

from manifests import assert_state_dict_matches
from otio_foley.models.flow_matching import euler_sample, flow_loss, guided_velocity, interpolate, logit_normal_t
from otio_foley.models.generator import CONFIGS, Conditions, FlowGenerator, GeneratorConfig, build_generator
from otio_foley.models.pipeline import Prompt, SelVAPipeline
from otio_foley.models.sequence import sequence_lengths
from otio_foley.models.synchformer import Synchformer, SynchformerConfig
from otio_foley.models.textsynch import TextSynch, TextSynchConfig

TINY = GeneratorConfig(latent_dim=8, clip_dim=16, sync_dim=32, text_dim=24, hidden_dim=32, depth=3,
                       fused_depth=1, num_heads=2, text_seq_len=12)
VIDEO = SynchformerConfig(embed_dim=32, depth=1, num_heads=2, image_size=32)


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Random non-zero weights everywhere, as the parity fixtures draw them (the training init zeroes adaLN and
    makes TextSynch's cross block an identity, which would hide most bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() > 1:
                p.copy_(noise / p[0].numel() ** 0.5)
            else:
                p.copy_(noise * 0.1 + (1.0 if "norm" in name else 0.0))
    return module.eval()


def tiny_generator(seed: int = 0) -> FlowGenerator:
    net = randomize(FlowGenerator(TINY), seed)
    with torch.no_grad():
        net.latent_std.abs_().add_(0.5)
    return net


# ----------------------------------------------------------------------------------------------- network

@pytest.mark.parametrize("variant, manifest", [
    ("small_16k", "mmaudio_small_16k"), ("small_44k", "mmaudio_small_44k"), ("medium_44k", "mmaudio_medium_44k"),
    ("large_44k", "mmaudio_large_44k"), ("large_44k_v2", "mmaudio_large_44k_v2"),
    ("small_16k", "selva_generator_small_16k_sup_5"),
])
def test_official_keys_and_shapes(variant: str, manifest: str) -> None:
    with torch.device("meta"):
        net = build_generator(variant)
    assert_state_dict_matches(net, manifest)


def test_load_official_drops_legacy_buffers_and_is_strict() -> None:
    source = tiny_generator(1).state_dict()
    legacy = {"t_embed.freqs": torch.zeros(128), "latent_rot": torch.zeros(1), "clip_rot": torch.zeros(1)}
    net = FlowGenerator(TINY)
    net.load_official({**source, **legacy})
    assert torch.equal(net.empty_sync_feat, source["empty_sync_feat"])
    source.pop("latent_std")
    with pytest.raises(RuntimeError, match="latent_std"):
        net.load_official(source)


@pytest.mark.parametrize("duration, latent, clip, sync", [
    (8.0, 250, 64, 192), (2.0, 63, 16, 40), (3.2, 100, 25, 72), (5.0, 157, 40, 112)])
def test_sequence_lengths_16k(duration: float, latent: int, clip: int, sync: int) -> None:
    lengths = CONFIGS["small_16k"].lengths(duration)
    assert (lengths.latent, lengths.clip, lengths.sync, lengths.text) == (latent, clip, sync, 77)
    assert lengths.sync_segments * 8 == sync


def test_sequence_lengths_44k_and_too_short() -> None:
    assert CONFIGS["large_44k_v2"].lengths(8.0).latent == 345
    with pytest.raises(ValueError, match="shorter than one sync segment"):
        sequence_lengths(0.5)


def test_any_duration_runs() -> None:
    net = tiny_generator()
    for duration in (0.64, 3.2, 8.0):
        n = TINY.lengths(duration)
        g = torch.Generator().manual_seed(0)
        v = net(torch.randn(2, n.latent, 8, generator=g), torch.rand(2, generator=g),
                torch.randn(2, n.clip, 16, generator=g), torch.randn(2, n.sync, 32, generator=g),
                torch.randn(2, n.text, 24, generator=g))
        assert v.shape == (2, n.latent, 8) and torch.isfinite(v).all()


@pytest.mark.parametrize("duration", [0.64, 2.0, 3.2, 8.0])
def test_timed_sync_placement_puts_each_token_on_its_own_frames(duration: float) -> None:
    """Give every token the mid-time of the frames it encodes (token j of segment s: frames 8s+2j and 8s+2j+1):
    placed "timed", each latent frame must read a time within one video frame of its own; the official
    "stretch" is off by several frames, which is why selva-tiny does not use it."""
    lengths = TINY.lengths(duration)
    segments = lengths.sync_segments
    token_frame = torch.tensor([8.0 * s + 2 * j + 1 for s in range(segments) for j in range(8)]).view(1, -1, 1)
    frame = (torch.arange(lengths.latent) + 0.5) / TINY.latent_rate * 25
    covered = frame < 8 * (segments - 1) + 16
    errors = {}
    for placement in ("timed", "stretch"):
        net = FlowGenerator(replace(TINY, sync_placement=placement))
        placed = net.place_sync(token_frame, lengths.latent)[0, :, 0]
        errors[placement] = (placed - frame)[covered].abs().max().item()
    assert errors["timed"] <= 1.0 + 1e-4
    if segments > 1:
        assert errors["stretch"] > 3.0


def test_unknown_sync_placement_is_refused() -> None:
    with pytest.raises(ValueError, match="sync_placement"):
        replace(TINY, sync_placement="nearest")


def test_training_init_predicts_zero_velocity() -> None:
    net = FlowGenerator(TINY)
    n = TINY.lengths(1.0)
    v = net(torch.randn(1, n.latent, 8), torch.rand(1), torch.randn(1, n.clip, 16), torch.randn(1, n.sync, 32),
            torch.randn(1, n.text, 24))
    assert torch.count_nonzero(v) == 0


def test_stage2_parameters_are_the_video_path() -> None:
    net = FlowGenerator(TINY)
    names = {name for name, _ in net.stage2_parameters()}
    expected = {"sync_pos_emb"} | {n for n, _ in net.named_parameters() if n.startswith("sync_input_proj.")}
    expected |= {f"joint_blocks.{i}.latent_block.adaLN_modulation.1.{w}" for i in range(2) for w in ("weight", "bias")}
    expected |= {f"fused_blocks.0.adaLN_modulation.1.{w}" for w in ("weight", "bias")}
    assert names == expected


# ----------------------------------------------------------------------------------------------- flow matching

def random_conditions(net: FlowGenerator, batch: int, g: torch.Generator) -> Conditions:
    n = TINY.lengths(2.0)
    return net.prepare(torch.randn(batch, n.clip, 16, generator=g), torch.randn(batch, n.sync, 32, generator=g),
                       torch.randn(batch, n.text, 24, generator=g), n.latent)


def test_batched_cfg_equals_separate_passes() -> None:
    net = tiny_generator()
    n = TINY.lengths(2.0)
    g = torch.Generator().manual_seed(3)
    cond = random_conditions(net, 2, g)
    uncond = net.null_conditions(2, n, torch.randn(2, n.text, 24, generator=g))
    x, t = torch.randn(2, n.latent, 8, generator=g), torch.tensor(0.3)
    with torch.no_grad():
        separate = 4.5 * net.velocity(x, t.expand(2), cond) - 3.5 * net.velocity(x, t.expand(2), uncond)
        batched = guided_velocity(net.velocity, cond, uncond, 4.5)(t, x)
        conditional_only = guided_velocity(net.velocity, cond, uncond, 0.5)(t, x)
    torch.testing.assert_close(batched, separate, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conditional_only, net.velocity(x, t.expand(2), cond).detach())


def test_shared_condition_rows_equal_repeated_rows() -> None:
    """CFG's unconditional rows shared by several prompts (`Conditions.rows`) give what repeating them gives."""
    net = tiny_generator()
    n = TINY.lengths(2.0)
    g = torch.Generator().manual_seed(4)
    cond = random_conditions(net, 3, g)
    negatives = torch.randn(2, n.text, 24, generator=g)
    rows = torch.tensor([1, 0, 1])
    shared = net.null_conditions(2, n, negatives).select(rows)
    repeated = net.null_conditions(3, n, negatives[rows])
    x, t = torch.randn(3, n.latent, 8, generator=g), torch.tensor(0.6)
    with torch.no_grad():
        torch.testing.assert_close(guided_velocity(net.velocity, cond, shared, 4.5)(t, x),
                                   guided_velocity(net.velocity, cond, repeated, 4.5)(t, x), atol=1e-5, rtol=1e-5)
        assert shared.batch == 3 and cond.cat(shared).batch == 6
        with pytest.raises(ValueError, match="one t"):
            net.velocity(x, torch.tensor([0.1, 0.2, 0.3]), shared)


def test_euler_is_exact_on_a_straight_path() -> None:
    x0, x1 = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    calls: list[float] = []

    def velocity(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        calls.append(float(t))
        return x1 - x0

    torch.testing.assert_close(euler_sample(velocity, x0, steps=4), x1)
    assert calls == [0.0, 0.25, 0.5, 0.75]


def test_training_terms() -> None:
    x0, x1 = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    t = torch.tensor([0.0, 0.5, 1.0])
    xt = interpolate(x0, x1, t)
    torch.testing.assert_close(xt[0], x0[0])
    torch.testing.assert_close(xt[2], x1[2])
    loss = flow_loss(x1 - x0 + torch.tensor([0.0, 1.0, 2.0]).view(3, 1, 1), x0, x1)
    torch.testing.assert_close(loss, torch.tensor([0.0, 1.0, 4.0]))


def test_logit_normal_location_moves_times_towards_noise() -> None:
    g = torch.Generator().manual_seed(0)
    official, shifted = logit_normal_t(20_000, g), logit_normal_t(20_000, g, mean=-1.5)
    assert abs(float(official.median()) - 0.5) < 0.01
    assert abs(float(shifted.median()) - float(torch.sigmoid(torch.tensor(-1.5)))) < 0.01
    assert 0.0 < float(shifted.min()) and float(shifted.max()) < 1.0


# ----------------------------------------------------------------------------------------------- pipeline

class HashTextEncoder:
    """Deterministic fake text encoder: random token features seeded by the string, a few masked pads."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        length = 6
        feats, masks = torch.zeros(len(texts), length, self.dim), torch.zeros(len(texts), length, dtype=torch.bool)
        for i, text in enumerate(texts):
            n = 3 + len(text) % 4
            g = torch.Generator().manual_seed(zlib.crc32(text.encode()))
            feats[i, :n] = torch.randn(n, self.dim, generator=g)
            masks[i, :n] = True
        return feats, masks


class LinearDecoder(nn.Module):
    """Fake audio decoder: 512 samples per latent frame, as the 16 kHz VAE + BigVGAN produce."""

    sample_rate = 16_000

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.proj = nn.Linear(latent_dim, 512)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.proj(latents).flatten(1)


class CountingTextSynch(TextSynch):
    trunk_calls = 0

    def encode_trunk(self, segments: torch.Tensor) -> torch.Tensor:
        self.trunk_calls += 1
        return super().encode_trunk(segments)


def make_pipeline(mode: str = "selva", image_encoder=None) -> SelVAPipeline:
    video = (CountingTextSynch(TextSynchConfig(video=VIDEO, text_dim=20, num_sup_tokens=2)) if mode == "selva"
             else Synchformer(VIDEO))
    return SelVAPipeline(name="test", checksum="0", generator=tiny_generator(), video_encoder=randomize(video, 1),
                         audio_decoder=randomize(LinearDecoder(8), 2), generator_text_encoder=HashTextEncoder(24),
                         video_text_encoder=HashTextEncoder(20) if mode == "selva" else None,
                         image_encoder=image_encoder, mode=mode, frame_size=32)


def frames(duration: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(int(25 * duration), 3, 32, 32, generator=g) * 2 - 1


PROMPTS = [Prompt("dog barking"), Prompt("rain on a tin roof", negative="music", seed=7),
           Prompt("distant thunder", onscreen=False, seed=3)]


def test_same_seed_same_audio_and_length() -> None:
    pipe = make_pipeline()
    clip = frames(3.2)
    a = pipe.generate(clip, PROMPTS[:1], duration=3.2, steps=3)
    b = pipe.generate(clip, PROMPTS[:1], duration=3.2, steps=3)
    c = pipe.generate(clip, [Prompt("dog barking", seed=43)], duration=3.2, steps=3)
    assert a.shape == (1, 51200) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("mode", ["selva", "mmaudio"])
def test_k_prompts_batched_equal_one_by_one(mode: str) -> None:
    image = randomize(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 16)), 5) if mode == "mmaudio" else None
    pipe = make_pipeline(mode, image)
    clip = frames(2.0)
    together = pipe.generate(clip, PROMPTS, duration=2.0, steps=3)
    alone = torch.cat([pipe.generate(clip, [p], duration=2.0, steps=3) for p in PROMPTS])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)
    if mode == "selva":
        assert pipe.video_encoder.trunk_calls == 1 + 2  # one per generate() with an onscreen prompt


def test_sample_latents_are_what_generate_decodes() -> None:
    """The split that benchmarks/sample_noise.py reads: normalised latents from the seeds' noise, then decoding."""
    pipe, clip = make_pipeline(), frames(2.0)
    latents = pipe.sample_latents([(clip, PROMPTS[:2])], duration=2.0, steps=3)
    assert latents.shape == (2, *pipe.initial_noise(PROMPTS[:1], 2.0).shape[1:])
    decoded = torch.cat([pipe.audio_decoder.decode(row[None]) for row in pipe.generator.unnormalize(latents)])
    audio = pipe.generate(clip, PROMPTS[:2], duration=2.0, steps=3)
    torch.testing.assert_close(audio, decoded[:, :audio.shape[1]])
    # with zero steps the sample is the prompt's own starting noise
    torch.testing.assert_close(pipe.sample_latents([(clip, PROMPTS[:1])], duration=2.0, steps=0),
                               pipe.initial_noise(PROMPTS[:1], 2.0))


def test_selva_conditions_video_per_prompt_and_offscreen_ignores_video() -> None:
    pipe = make_pipeline()
    a = pipe.generate(frames(2.0, seed=1), PROMPTS, duration=2.0, steps=2)
    b = pipe.generate(frames(2.0, seed=2), PROMPTS, duration=2.0, steps=2)
    assert not torch.allclose(a[0], b[0])  # onscreen: follows the video
    torch.testing.assert_close(a[2], b[2])  # offscreen: text only
    text_only = pipe.generate(None, [PROMPTS[2]], duration=2.0, steps=2)
    torch.testing.assert_close(text_only[0], a[2], atol=1e-4, rtol=1e-4)


def test_missing_frames_for_onscreen_prompt_is_an_error() -> None:
    with pytest.raises(ValueError, match="frames are required"):
        make_pipeline().generate(None, PROMPTS[:1], duration=2.0, steps=1)


def test_pipeline_with_the_real_16k_audio_decoder() -> None:
    """The protocol holds for models/audio_decoder.py: waveform of round(duration * 16000) samples."""
    from otio_foley.models.audio_decoder import audio_decoder_16k

    decoder = audio_decoder_16k(vae_hidden_dim=16, vocoder_channels=64).eval()
    config = GeneratorConfig(**{**TINY.__dict__, "latent_dim": 20})
    pipe = SelVAPipeline(name="test", checksum="0", generator=randomize(FlowGenerator(config), 4),
                         video_encoder=randomize(Synchformer(VIDEO), 1), audio_decoder=decoder,
                         generator_text_encoder=HashTextEncoder(24), mode="mmaudio", frame_size=32)
    audio = pipe.generate(frames(1.3), [Prompt("door slam")], duration=1.3, steps=2)
    assert audio.shape == (1, 20800) and torch.isfinite(audio).all() and audio.abs().max() <= 1


def test_negative_prompt_replaces_the_stored_empty_string_only_when_given() -> None:
    pipe = make_pipeline()
    clip, prompts = frames(2.0), [Prompt("dog barking"), Prompt("dog barking", negative="music")]
    before = pipe.generate(clip, prompts, duration=2.0, steps=2)
    with torch.no_grad():
        pipe.generator.empty_string_feat.mul_(-1)
    after = pipe.generate(clip, prompts, duration=2.0, steps=2)
    assert not torch.allclose(before[0], after[0], atol=1e-3)  # empty negative: the stored feature
    torch.testing.assert_close(before[1], after[1])  # given negative: its own encoding
