"""Parity runners for the audio back-end: mel converter, mel VAE, BigVGAN v1 vocoder."""
from __future__ import annotations

import torch

from otio_foley.models.bigvgan import BigVGAN, BigVGANConfig
from otio_foley.models.mel import MEL_16K, MelConverter
from otio_foley.models.vae import MelVAE, VAEConfig

from . import params


def run_mel(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, torch.Tensor]:
    args = meta["constructor_args"]
    c = MEL_16K
    assert (args["sampling_rate"], args["n_fft"], args["win_size"], args["hop_size"], args["num_mels"],
            args["fmin"], args["fmax"], args["norm_fn"]) == (
        c.sample_rate, c.n_fft, c.n_fft, c.hop, c.n_mels, c.f_min, c.f_max, "torch.log10"), args
    mel = MelConverter(c)
    return {"out.mel": mel(tensors["in.waveform"]), "mid.mel_basis": mel.mel_basis, "mid.hann_window": mel.window}


def run_vae(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, torch.Tensor]:
    vae = MelVAE(VAEConfig(**meta["constructor_args"])).eval()
    vae.load_state_dict(params(tensors), strict=True)
    vae.fold_weight_norm()  # the inference path; the unfolded one is checked against it in test_audio_backend
    got = {}
    for name in tensors:
        if name.startswith("mid.normalized_weight."):
            layer = name[len("mid.normalized_weight."):].removesuffix(".weight")
            got[name] = vae.get_submodule(layer).normalized_weight()
    mel, z = tensors["in.mel"], tensors["in.z"]
    got["mid.encoder_input_normalized"] = vae.normalize(mel)
    got["mid.encoder_moments"] = vae.encoder(vae.normalize(mel))
    posterior = vae.encode(mel)
    got.update({
        "out.posterior_mean": posterior.mean,
        "out.posterior_logvar": posterior.logvar,
        "out.posterior_std": posterior.std,
        "out.decoded_normalized": vae.decoder(z),
        "out.decoded_mel": vae.decode(z),
    })
    return got


def run_bigvgan(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, torch.Tensor]:
    args = dict(meta["constructor_args"])
    assert (args.pop("resblock"), args.pop("activation"), args.pop("snake_logscale")) == ("1", "snakebeta", True)
    config = BigVGANConfig(
        sample_rate=16_000, num_mels=args["num_mels"], upsample_rates=tuple(args["upsample_rates"]),
        upsample_kernel_sizes=tuple(args["upsample_kernel_sizes"]),
        upsample_initial_channel=args["upsample_initial_channel"],
        resblock_kernel_sizes=tuple(args["resblock_kernel_sizes"]),
        resblock_dilation_sizes=tuple(tuple(d) for d in args["resblock_dilation_sizes"]),
    )
    vocoder = BigVGAN(config).eval().load_for_inference(params(tensors))  # legacy weight_g / weight_v names

    got: dict[str, torch.Tensor] = {}
    taps = {"conv_pre": vocoder.conv_pre, "activation_post": vocoder.activation_post,
            "conv_post_pre_tanh": vocoder.conv_post}
    taps.update({f"ups{i}": up[0] for i, up in enumerate(vocoder.ups)})
    taps.update({f"resblock{i}": block for i, block in enumerate(vocoder.resblocks)})
    for name, module in taps.items():
        module.register_forward_hook(lambda _m, _in, out, name=name: got.__setitem__(f"mid.{name}", out))
    got["out.waveform"] = vocoder(tensors["in.mel"])
    got["mid.filter.upsample"] = vocoder.activation_post.upsample.filter
    got["mid.filter.downsample"] = vocoder.activation_post.downsample.lowpass.filter
    return got


RUNNERS = {
    "selva.ext.mel_converter.MelConverter": run_mel,
    "selva.ext.autoencoder.vae.VAE": run_vae,
    "selva.ext.bigvgan.models.BigVGANVocoder": run_bigvgan,
}
