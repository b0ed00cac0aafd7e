"""Model cards (what files a model needs, where they come from, their checksums and licences) and
`load_model`, which turns a card plus a models directory into a ready `FoleyModel`.

Files live at `<models dir>/<Hugging Face repo>/<path in repo>`, the layout `otio-foley models pull`
writes; a file absent there is also looked up in the Hugging Face cache (HF_HOME), where official tools
put FLAN-T5 and CLIP. The models directory is `--models-dir`, else `OTIO_FOLEY_MODELS_DIR` (a farm's
shared cache), else `$HF_HOME/otio-foley`. MD5 sums are the ones in the official download tables
(SelVA docs/MODELS.md and download_utils.py, MMAudio's download_utils.py); files without a published
sum (FLAN-T5, CLIP, tokenizer files, BigVGAN v2) are checked for readability only.
"""
from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from otio_foley.errors import UserError

from . import checkpoints as ckpt
from .device import resolve_device, retain_cpu_heap
from .pipeline import FoleyModel, SelVAPipeline

SELVA_LICENCE = ("no licence published by SelVA; its generator is fine-tuned from MMAudio weights "
                 "(CC-BY-NC 4.0), so treat it as CC-BY-NC 4.0: non-commercial use only")
MMAUDIO_LICENCE = "CC-BY-NC 4.0, non-commercial (MMAudio checkpoints, per its README)"
DFN_LICENCE = "Apple Sample Code License (apple/DFN5B-CLIP-ViT-H-14-384)"
T5_LICENCE = "Apache-2.0 (google/flan-t5-base)"
OPENAI_CLIP_LICENCE = "MIT (OpenAI CLIP tokenizer)"
SYNCHFORMER_LICENCE = "MIT (Synchformer, V. Iashin)"
BIGVGAN_LICENCE = "MIT (BigVGAN)"
DEFAULT_MODEL = "selva-s16k"
FALLBACK_MODEL = "selva-tiny"


@dataclass(frozen=True)
class WeightFile:
    """One downloadable file: Hugging Face repo + path, published MD5 (None if none) and size."""

    repo: str
    path: str
    md5: str | None
    size: str  # as published; "~" marks an estimate where none is published
    licence: str

    def target(self, models_dir: Path) -> Path:
        return models_dir / self.repo / self.path

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo}/resolve/main/{self.path}"


@dataclass(frozen=True)
class OfficialSpec:
    """How to build an official-layout pipeline: network factories (full size for the real cards, small
    ones for tests) and the official loading rules that go with each role's file."""

    mode: str  # "selva" (TextSynch + FLAN-T5) or "mmaudio" (plain Synchformer, holistic)
    video_encoder: Callable[[], nn.Module]
    generator: Callable[[], nn.Module]
    audio_decoder: Callable[[], nn.Module]
    clip_config: Callable[[], object]
    sample_rate: int = 16000  # of the audio decoder, and the frame size of the video encoder: planning
    frame_size: int = 224  # needs both (cache keys) without building any network


@dataclass(frozen=True)
class ModelCard:
    name: str
    summary: str
    files: dict[str, WeightFile]  # role -> file
    spec: OfficialSpec | None = None  # None: the built-in tiny model
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def licences(self) -> list[str]:
        return sorted({f.licence for f in self.files.values()})


# ------------------------------------------------------------------------------------------------ cards

def _selva(path: str, md5: str, size: str, licence: str = SELVA_LICENCE) -> WeightFile:
    return WeightFile("jnwnlee/SelVA", path, md5, size, licence)


VAE_16K = _selva("ext_weights/v1-16.pth", "69f56803f59a549a1a507c93859fd4d7", "687M", MMAUDIO_LICENCE)
VAE_44K = _selva("ext_weights/v1-44.pth", "fab020275fa44c6589820ce025191600", "1.22G", MMAUDIO_LICENCE)
BIGVGAN_16K = _selva("ext_weights/best_netG.pt", "eeaf372a38a9c31c362120aba2dde292", "449M", MMAUDIO_LICENCE)
SYNCHFORMER = _selva("ext_weights/synchformer_state_dict.pth", "5b2f5594b0730f70e41e549b7c94390c", "950M",
                     SYNCHFORMER_LICENCE)
BIGVGAN_44K = WeightFile("nvidia/bigvgan_v2_44khz_128band_512x", "bigvgan_generator.pt", None, "~490M",
                         BIGVGAN_LICENCE)
CLIP_FILES = {
    "clip": WeightFile("apple/DFN5B-CLIP-ViT-H-14-384", "open_clip_pytorch_model.bin", None, "~3.9G", DFN_LICENCE),
    "clip_vocab": WeightFile("openai/clip-vit-large-patch14", "vocab.json", None, "~1.6M", OPENAI_CLIP_LICENCE),
    "clip_merges": WeightFile("openai/clip-vit-large-patch14", "merges.txt", None, "~0.5M", OPENAI_CLIP_LICENCE),
}
T5_FILES = {f"t5_{name.split('.')[0]}": WeightFile("google/flan-t5-base", name, None, size, T5_LICENCE)
            for name, size in [("config.json", "~1K"), ("model.safetensors", "~990M"),
                               ("tokenizer.json", "~2.4M"), ("tokenizer_config.json", "~2K"),
                               ("special_tokens_map.json", "~2K")]}


def _official_spec(mode: str, generator: str) -> OfficialSpec:
    from . import audio_decoder, generator as gen, synchformer, text_encoders, textsynch

    sixteen = generator.endswith("16k")
    return OfficialSpec(
        mode=mode,
        video_encoder=textsynch.official_textsynch if mode == "selva" else synchformer.official_synchformer,
        generator=lambda: gen.build_generator(generator),
        audio_decoder=audio_decoder.audio_decoder_16k if sixteen else audio_decoder.audio_decoder_44k,
        clip_config=text_encoders.clip_text_config,
        sample_rate=16000 if sixteen else 44100,
    )


def _mmaudio_card(name: str, variant: str, md5: str, size: str) -> ModelCard:
    sixteen = variant.endswith("16k")
    return ModelCard(
        name=name,
        summary=f"MMAudio {variant} (holistic: every prompt hears the whole scene)",
        files={"generator": WeightFile("hkchengrex/MMAudio", f"weights/mmaudio_{variant}.pth", md5, size,
                                       MMAUDIO_LICENCE),
               "video_encoder": SYNCHFORMER,
               "vae": VAE_16K if sixteen else VAE_44K,
               "vocoder": BIGVGAN_16K if sixteen else BIGVGAN_44K,
               **CLIP_FILES},
        spec=_official_spec("mmaudio", variant),
        notes=("CLIP image features use the learned null feature: the CLIP image tower is not implemented, "
               "so this is MMAudio conditioned on sync features and text only",),
    )


def _cards() -> dict[str, ModelCard]:
    selva = ModelCard(
        name="selva-s16k",
        summary="SelVA (text-selective video-to-audio), MMAudio S-16k generator, 16 kHz",
        files={"video_encoder": _selva("weights/video_enc_sup_5.pth", "ff09a6dc36148536ee4db97eba081d05", "539M"),
               "generator": _selva("weights/generator_small_16k_sup_5.pth", "1cb0f0deec52de37f67b1fd9965337d0",
                                   "629M"),
               "vae": VAE_16K, "vocoder": BIGVGAN_16K, **T5_FILES, **CLIP_FILES},
        spec=_official_spec("selva", "small_16k"),
    )
    tiny = ModelCard(
        name="selva-tiny",
        summary="SelVA architecture at toy size, trained here on synthetic scenes; built in, 16 kHz",
        files={"weights": WeightFile("(built in)", "selva-tiny.safetensors", None, "~10M",
                                     "ships with otio-foley; MiniLM text encoder Apache-2.0")},
    )
    cards = [selva, tiny] + [
        _mmaudio_card("mmaudio-s16k", "small_16k", "af93cde404179f58e3919ac085b8033b", "601M"),
        _mmaudio_card("mmaudio-s44k", "small_44k", "babd74c884783d13701ea2820a5f5b6d", "601M"),
        _mmaudio_card("mmaudio-m44k", "medium_44k", "5a56b6665e45a1e65ada534defa903d0", "2.4G"),
        _mmaudio_card("mmaudio-l44k", "large_44k", "fed96c325a6785b85ce75ae1aafd2673", "3.9G"),
        _mmaudio_card("mmaudio-l44k-v2", "large_44k_v2", "01ad4464f049b2d7efdaa4c1a59b8dfe", "3.9G"),
    ]
    return {card.name: card for card in cards}


CARDS: dict[str, ModelCard] = _cards()


def get_card(name: str) -> ModelCard:
    if name not in CARDS:
        raise UserError(f"unknown model {name!r}", where="--model",
                        fix=f"choose one of {', '.join(CARDS)} (see `otio-foley models list`)")
    return CARDS[name]


# ------------------------------------------------------------------------------------------ locations

def resolve_models_dir(explicit: str | Path | None = None) -> Path:
    """--models-dir, else OTIO_FOLEY_MODELS_DIR, else $HF_HOME/otio-foley (HF_HOME default ~/.cache/huggingface)."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("OTIO_FOLEY_MODELS_DIR"):
        return Path(os.environ["OTIO_FOLEY_MODELS_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
    return Path(os.environ.get("HF_HOME", cache / "huggingface")).expanduser() / "otio-foley"


def builtin_weights() -> Path:
    from .tiny import WEIGHTS

    return WEIGHTS


def locate(card: ModelCard, role: str, directory: Path) -> Path | None:
    """Where a card's file is on disk: the models directory, else the Hugging Face cache; None if absent."""
    file = card.files[role]
    if card.spec is None:
        path = builtin_weights()
        return path if path.exists() else None
    path = file.target(directory)
    if path.exists():
        return path
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(file.repo, file.path)
    return Path(cached) if isinstance(cached, str) else None


def missing_files(card: ModelCard, directory: Path) -> list[str]:
    return [role for role in card.files if locate(card, role, directory) is None]


def verified_path(card: ModelCard, role: str, directory: Path) -> tuple[Path, str]:
    """(path, md5) of a present file whose MD5 matches the published one; UserError otherwise."""
    file = card.files[role]
    path = locate(card, role, directory)
    if path is None:
        if card.spec is None:
            raise UserError("the built-in selva-tiny weights are missing from the installed package",
                            path=str(builtin_weights()), fix="reinstall otio-foley")
        raise UserError(f"missing {file.repo}/{file.path} ({file.size}), needed by {card.name}",
                        path=str(file.target(directory)), fix=f"run `otio-foley models pull {card.name}`")
    if card.spec is None:  # built in: identified by its sha256 (`tiny.checksum`), nothing to compare
        return path, ""
    md5 = ckpt.cached_md5(path, directory)
    if file.md5 is not None and md5 != file.md5:
        raise UserError(f"MD5 {md5} does not match the published {file.md5} (truncated or damaged "
                        f"download)", path=str(path),
                        fix=f"delete it and run `otio-foley models pull {card.name}`")
    return path, md5


# ---------------------------------------------------------------------------------------------- loading

def _resolve(name_or_path: str | Path | None, directory: Path, announce: bool) -> tuple[ModelCard | None, Path | None]:
    """(card, None) for a registry name, (None, path) for a tiny-format weights file. No name: `selva-s16k` when
    all its files are present, else the built-in `selva-tiny` (said on stderr when `announce`)."""
    if name_or_path is None:
        missing = missing_files(CARDS[DEFAULT_MODEL], directory)
        name_or_path = DEFAULT_MODEL if not missing else FALLBACK_MODEL
        if missing and announce:
            print(f"otio-foley: using the built-in {FALLBACK_MODEL}: {DEFAULT_MODEL} is not installed in "
                  f"{directory} (`otio-foley models pull {DEFAULT_MODEL}` to get it)", file=sys.stderr)
    name = str(name_or_path)
    if name not in CARDS and (name.endswith(".safetensors") or Path(name).exists()):
        path = Path(name)
        if not path.is_file():
            raise UserError("no such weights file", path=name, fix="give a model name or a .safetensors file")
        return None, path
    return get_card(name), None


def load_model(name_or_path: str | Path | None = None, *, device: str | torch.device = "auto",
               models_dir: str | Path | None = None) -> FoleyModel:
    """A ready model by registry name, or from a tiny-format `.safetensors` written by `otio-foley train`.

    No name: `selva-s16k` when all its files are present, else the built-in `selva-tiny` (said on stderr).
    Every file is MD5-checked (cached) and strictly loaded; problems are one-line UserErrors.
    """
    directory = resolve_models_dir(models_dir)
    target = resolve_device(device)
    if target.type == "cpu":
        retain_cpu_heap()
    card, path = _resolve(name_or_path, directory, announce=True)
    if card is None:
        return _build_tiny(path, target, name=path.stem)
    files = {role: verified_path(card, role, directory) for role in card.files}
    if card.spec is None:
        return _build_tiny(files["weights"][0], target, name=card.name)
    return build_official(card, files, target)


def model_facts(name_or_path: str | Path | None = None, *, models_dir: str | Path | None = None) -> dict:
    """What planning needs (name, checksum, fps, sample rate, window, minimum, frame size) without building any
    network, so `otio-foley plan` can count cache hits: the checksum is the one `load_model` gives these files."""
    from . import tiny
    from .sequence import min_duration

    directory = resolve_models_dir(models_dir)
    card, path = _resolve(name_or_path, directory, announce=False)
    facts = {"fps": 25.0, "min_seconds": min_duration()}
    if card is not None and card.spec is not None:  # checksum None: not installed here, nothing to compare yet
        checksum = None
        if not missing_files(card, directory):
            checksum = _checksum([verified_path(card, role, directory)[1] for role in card.files])
        return {**facts, "name": card.name, "checksum": checksum,
                "sample_rate": card.spec.sample_rate, "window_seconds": 8.0, "frame_size": card.spec.frame_size}
    if card is not None:
        path = verified_path(card, "weights", directory)[0]
    try:
        cfg, _ = tiny.read_config(path)
    except (KeyError, ValueError, OSError) as err:
        raise UserError(f"not a selva-tiny weights file ({ckpt.first_line(err)})", path=str(path),
                        fix="give a file written by `otio-foley train`")
    return {**facts, "name": card.name if card else path.stem, "checksum": tiny.checksum(path),
            "sample_rate": cfg.codec.sample_rate, "window_seconds": cfg.window_seconds, "frame_size": cfg.frame_size}


def _checksum(md5s: list[str]) -> str:
    return hashlib.sha256("\n".join(md5s).encode()).hexdigest()[:16]


def _build_tiny(path: Path, device: torch.device, name: str) -> SelVAPipeline:
    from safetensors import SafetensorError

    from . import tiny

    try:
        return tiny.load_tiny(path, device, name=name)
    except (KeyError, ValueError, RuntimeError, OSError, SafetensorError) as err:
        raise UserError(f"not a selva-tiny weights file ({ckpt.first_line(err)})", path=str(path),
                        fix="give a file written by `otio-foley train`")


def build_official(card: ModelCard, files: dict[str, tuple[Path, str]], device: torch.device) -> SelVAPipeline:
    """Build the card's networks and load each released file by its official rules:
    video encoder: prefix filter (TextSynch's five prefixes / `vfeat_extractor`), then strict;
    generator: legacy non-persistent buffers dropped, then strict; VAE: flat, strict (encoder included);
    vocoder: the ['generator'] sub-dict, either weight-norm naming, strict, then weight norm folded;
    CLIP: text-tower keys only; FLAN-T5: a Hugging Face folder."""
    from .generator import LEGACY_BUFFER_KEYS
    from .synchformer import filter_prefixes
    from .text_encoders import ClipTextEncoder, ClipTokenizer, T5TextEncoder, is_open_clip_text_key

    spec = card.spec
    path = {role: p for role, (p, _) in files.items()}

    with ckpt.skipped_init():  # every weight is loaded strictly below: no random init first
        video, generator, audio = spec.video_encoder(), spec.generator(), spec.audio_decoder()
    if device.type == "cpu":  # one ViT segment at a time: ~10 % fewer CPU seconds than 4 or 8 (cache-bound)
        video.chunk_segments = 1
    state = ckpt.read_state_dict(path["video_encoder"])
    ckpt.load_checked(video, filter_prefixes(state, type(video).OFFICIAL_PREFIXES), str(path["video_encoder"]))

    state = ckpt.read_state_dict(path["generator"], keep=lambda k: k not in LEGACY_BUFFER_KEYS)
    ckpt.load_checked(generator, state, str(path["generator"]))

    vae_state = ckpt.read_state_dict(path["vae"])
    vocoder_state = ckpt.with_parametrized_weight_norm(ckpt.read_state_dict(path["vocoder"], sub_dict="generator"))
    ckpt.check_fit(audio.vae, vae_state, str(path["vae"]))
    ckpt.check_fit(audio.vocoder, vocoder_state, str(path["vocoder"]))
    audio.load_weights(vae_state, vocoder_state).vae.drop_encoder()  # both weight norms folded; encoder freed
    del state, vae_state, vocoder_state

    tokenizer = ClipTokenizer(path["clip_vocab"], path["clip_merges"])
    clip_state = ckpt.read_state_dict(path["clip"], keep=is_open_clip_text_key)
    clip_text = ClipTextEncoder.from_open_clip_state(tokenizer, clip_state, spec.clip_config(), str(path["clip"]))
    t5 = T5TextEncoder.from_folder(path["t5_config"].parent).to(device) if spec.mode == "selva" else None

    for note in card.notes:
        print(f"otio-foley: {card.name}: {note}", file=sys.stderr)
    pipeline = SelVAPipeline(name=card.name, checksum=_checksum([md5 for _, md5 in files.values()]),
                             generator=generator.eval(), video_encoder=video.eval(), audio_decoder=audio.eval(),
                             generator_text_encoder=clip_text.to(device), video_text_encoder=t5,
                             mode=spec.mode, frame_size=getattr(video.cfg, "video", video.cfg).image_size)
    return pipeline.to(device)
