"""Audio back-end: full-size key/shape parity with the released checkpoints (meta device), weight-norm
naming, lengths through decode/encode, and the mel converter's conventions. Numerics: test_parity.py."""
from __future__ import annotations

import copy
import json
import math
import re

import pytest
import torch

from conftest import parity_dir
from manifests import assert_state_dict_matches
from otio_foley.models.audio_decoder import AudioDecoder, audio_decoder_16k, audio_decoder_44k
from otio_foley.models.bigvgan import bigvgan_v1_16k, bigvgan_v2_44k
from otio_foley.models.mel import MelConverter, mel_16k, mel_44k
from otio_foley.models.vae import vae_16k, vae_44k


def legacy_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`.parametrizations.weight.original0/1` -> `.weight_g/_v` (the old torch.nn.utils.weight_norm names)."""
    rename = {"0": "weight_g", "1": "weight_v"}
    return {re.sub(r"parametrizations\.weight\.original([01])$", lambda m: rename[m.group(1)], k): v
            for k, v in state_dict.items()}


@pytest.fixture(scope="module")
def full_bigvgan_v1_state() -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return bigvgan_v1_16k().state_dict()


@pytest.mark.parametrize("factory, manifest", [(vae_16k, "vae_16k"), (vae_44k, "vae_44k")])
def test_full_size_vae_keys_match_released_checkpoint(factory, manifest: str) -> None:
    with torch.device("meta"):
        module = factory()
    assert_state_dict_matches(module, manifest)


def test_full_size_bigvgan_keys_match_released_checkpoint(full_bigvgan_v1_state) -> None:
    assert_state_dict_matches(full_bigvgan_v1_state, "bigvgan_v1_16k_generator")


def test_bigvgan_legacy_names_match_released_checkpoint(full_bigvgan_v1_state) -> None:
    data = json.loads((parity_dir() / "manifests" / "bigvgan_v1_16k_generator.json").read_text())
    expected = {k: tuple(v[0]) for k, v in data["keys_legacy_naming"].items()}
    ours = legacy_names(full_bigvgan_v1_state)
    assert {k: tuple(v.shape) for k, v in ours.items()} == expected
    with torch.device("meta"):
        fresh = bigvgan_v1_16k()
    fresh.load_state_dict(ours, strict=True, assign=True)


def test_bigvgan_v2_44k_shape() -> None:
    with torch.device("meta"):
        vocoder = bigvgan_v2_44k()
    sd = vocoder.state_dict()
    assert "conv_post.bias" not in sd  # use_bias_at_final = False
    assert sd["ups.0.0.parametrizations.weight.original1"].shape == (1536, 768, 16)
    assert sd["conv_pre.parametrizations.weight.original1"].shape == (1536, 128, 7)
    assert vocoder.config.hop == 512


def test_both_weight_norm_namings_and_folded_weights_load_strict_and_agree() -> None:
    torch.manual_seed(0)
    reference = bigvgan_v1_16k(upsample_initial_channel=64).eval()
    with torch.no_grad():  # make g differ from ||v|| so the norm actually matters
        for name, p in reference.named_parameters():
            if name.endswith("original0"):
                p.mul_(1.5)
    sd = reference.state_dict()
    mel = torch.randn(1, 80, 6)
    expected = reference(mel)
    folded = copy.deepcopy(reference).fold_weight_norm().state_dict()
    for weights in (sd, legacy_names(sd), folded):
        model = bigvgan_v1_16k(upsample_initial_channel=64).eval().load_for_inference(weights)
        torch.testing.assert_close(model(mel), expected, atol=1e-6, rtol=1e-5)
    with pytest.raises(RuntimeError):  # folded: key names changed, a second raw load cannot slip in
        model.load_state_dict(sd, strict=True)


def small_16k() -> AudioDecoder:
    return audio_decoder_16k(vae_hidden_dim=8, vocoder_channels=64).eval()


def test_decode_length_16k() -> None:
    decoder = small_16k()
    assert (decoder.sample_rate, decoder.latent_dim, decoder.samples_per_latent) == (16_000, 20, 512)
    audio = decoder.decode(torch.randn(1, 250, 20))
    assert audio.shape == (1, 128_000)
    assert audio.abs().max() <= 1.0 and audio.std() > 0


def test_decode_length_44k() -> None:
    decoder = audio_decoder_44k(vae_hidden_dim=8, vocoder_channels=64).eval()
    assert (decoder.sample_rate, decoder.latent_dim, decoder.samples_per_latent) == (44_100, 40, 1024)
    latents = math.ceil(2.0 * 44_100 / 512 / 2)  # the generator's latent length for 2 s
    assert decoder.decode(torch.randn(2, latents, 40)).shape == (2, latents * 1024)


def test_encode_gives_generator_layout() -> None:
    decoder = small_16k()
    posterior = decoder.encode(torch.randn(2, 32_000).clamp(-1, 1) * 0.3)
    assert posterior.mean.shape == posterior.std.shape == (2, 62, 20)
    assert bool((posterior.std > 0).all())
    sample = posterior.sample(torch.Generator().manual_seed(0))
    assert sample.shape == (2, 62, 20) and not torch.equal(sample, posterior.mean)


def test_load_weights_folds_both_normalisations_without_changing_the_output() -> None:
    source = small_16k()
    vae_sd, vocoder_sd = source.vae.state_dict(), legacy_names(source.vocoder.state_dict())
    decoder = small_16k().load_weights(vae_sd, vocoder_sd)
    latents = torch.randn(1, 4, 20)
    torch.testing.assert_close(decoder.decode(latents), source.decode(latents), atol=1e-5, rtol=1e-5)
    # folded: the key names changed, so neither half can take a raw checkpoint (or be saved as one) again
    assert "decoder.conv_in.folded_weight" in decoder.vae.state_dict()
    assert "conv_pre.weight" in decoder.vocoder.state_dict()
    with pytest.raises(RuntimeError):
        decoder.vae.load_state_dict(vae_sd, strict=True)


def test_dropped_encoder_still_decodes_and_says_why_encode_fails() -> None:
    decoder = small_16k()
    decoder.vae.drop_encoder()
    assert not any(k.startswith("encoder.") for k in decoder.vae.state_dict())
    assert decoder.decode(torch.randn(1, 2, 20)).shape == (1, 1024)
    with pytest.raises(RuntimeError, match="drop_encoder"):
        decoder.encode(torch.zeros(1, 1024))


def test_mismatched_parts_are_refused() -> None:
    with pytest.raises(ValueError, match="mismatched"):
        AudioDecoder(mel_44k(), vae_16k(hidden_dim=8), bigvgan_v1_16k(upsample_initial_channel=64))


@pytest.mark.parametrize("converter, floor", [(mel_16k(), -5.0), (mel_44k(), math.log(1e-5))])
def test_mel_frames_floor_and_peak(converter: MelConverter, floor: float) -> None:
    c = converter.config
    seconds = 1.0
    n = int(seconds * c.sample_rate) // c.hop * c.hop
    assert converter(torch.zeros(1, n)).shape == (1, c.n_mels, n // c.hop)
    # silence hits the 1e-5 floor in the converter's log base (log10 at 16 kHz, ln at 44.1 kHz)
    assert converter(torch.zeros(1, n)).max().item() == pytest.approx(floor, abs=1e-3)
    # a 2 kHz tone peaks in the mel band whose centre is nearest 2 kHz
    t = torch.arange(n) / c.sample_rate
    mel = converter((0.5 * torch.sin(2 * math.pi * 2000.0 * t))[None])
    freqs = torch.linspace(0, c.sample_rate / 2, c.n_fft // 2 + 1)
    centres = freqs[converter.mel_basis.argmax(dim=1)]
    assert abs(centres[mel[0].mean(dim=1).argmax()].item() - 2000.0) < 150.0
