"""The audio back-end as one object: generator latents <-> waveform through the mel VAE and a BigVGAN vocoder.

`decode` is what the sampling pipeline needs (un-normalised latents -> audio); `encode` is what generator
training needs (audio -> latent posterior). Latents use the generator's (B, N, latent_dim) layout; one latent
covers 2 mel frames, i.e. `samples_per_latent` = 2 * hop samples (512 at 16 kHz, 1024 at 44.1 kHz).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .bigvgan import BigVGAN, bigvgan_v1_16k, bigvgan_v2_44k
from .mel import MelConverter, mel_16k, mel_44k
from .vae import LatentDistribution, MelVAE, vae_16k, vae_44k


class AudioDecoder(nn.Module):
    """Mel converter + mel VAE + vocoder sharing one sample rate and mel layout. Frozen: no autograd graphs."""

    def __init__(self, mel: MelConverter, vae: MelVAE, vocoder: BigVGAN) -> None:
        super().__init__()
        m, v, g = mel.config, vae.config, vocoder.config
        if not (m.n_mels == v.data_dim == g.num_mels and m.hop == g.hop and m.sample_rate == g.sample_rate):
            raise ValueError(f"mismatched audio back-end: mel {m}, VAE {v}, vocoder {g}")
        self.mel = mel
        self.vae = vae
        self.vocoder = vocoder
        self.sample_rate: int = g.sample_rate
        self.latent_dim: int = v.embed_dim
        self.samples_per_latent: int = 2 * g.hop

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, N, latent_dim) un-normalised latents -> (B, N * samples_per_latent) waveform in [-1, 1]."""
        mel = self.vae.decode(latents.transpose(1, 2))
        return self.vocoder(mel).squeeze(1)

    @torch.no_grad()
    def encode(self, waveform: torch.Tensor) -> LatentDistribution:
        """(B, S) waveform -> posterior over (B, S // samples_per_latent, latent_dim) latents.

        S should be a multiple of samples_per_latent; a remainder is dropped by the VAE's pooling.
        """
        return self.vae.encode(self.mel(waveform)).transpose(1, 2)

    def load_weights(self, vae_state_dict: Mapping[str, torch.Tensor],
                     vocoder_state_dict: Mapping[str, torch.Tensor]) -> AudioDecoder:
        """Strict-load the released state dicts, then fold both weight normalisations for inference.

        vae_state_dict: `v1-16.pth` / `v1-44.pth` as loaded (flat, raw weights, encoder included).
        vocoder_state_dict: the ['generator'] sub-dict of `best_netG.pt` / `bigvgan_generator.pt`, with
        either weight-norm naming (`weight_g`/`weight_v` or `parametrizations.weight.original0/1`) or folded.
        """
        self.vae.load_state_dict(vae_state_dict, strict=True)
        self.vae.fold_weight_norm()
        self.vocoder.load_for_inference(vocoder_state_dict)
        return self


def audio_decoder_16k(*, vae_hidden_dim: int = 384, vocoder_channels: int = 1536) -> AudioDecoder:
    """16 kHz: MMAudio VAE `v1-16` (latent_dim 20) + BigVGAN v1 (`best_netG.pt`). Smaller widths for tests."""
    return AudioDecoder(mel_16k(), vae_16k(vae_hidden_dim), bigvgan_v1_16k(vocoder_channels))


def audio_decoder_44k(*, vae_hidden_dim: int = 512, vocoder_channels: int = 1536) -> AudioDecoder:
    """44.1 kHz: MMAudio VAE `v1-44` (latent_dim 40) + BigVGAN v2 44 kHz 128-band 512x. Smaller widths for tests."""
    return AudioDecoder(mel_44k(), vae_44k(vae_hidden_dim), bigvgan_v2_44k(vocoder_channels))
