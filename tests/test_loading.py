"""Checkpoint registry and loading: a fabricated checkpoint set in the official file layout (random weights
at a small config, via a test-only card) loads through `load_model` from a models directory; missing,
truncated, MD5-mismatched and wrongly shaped files give one-line UserErrors (exit 2 through the CLI)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from otio_foley.cues import SourceCue
from otio_foley.jobs import ModelInfo, window_key
from otio_foley.cli import main as cli
from otio_foley.errors import UserError
from otio_foley.models import registry
from otio_foley.models.audio_decoder import audio_decoder_16k
from otio_foley.models.checkpoints import check_fit, read_state_dict
from otio_foley.models.device import resolve_device
from otio_foley.models.generator import FlowGenerator, GeneratorConfig
from otio_foley.models.pipeline import Prompt
from otio_foley.models.synchformer import SynchformerConfig
from otio_foley.models.text_encoders import clip_text_config
from otio_foley.models.textsynch import TextSynch, TextSynchConfig

from test_text_encoders import HEADS, LAYERS, VOCAB, WIDTH, open_clip_state, tiny_t5

NAME = "selva-test"
VIDEO = SynchformerConfig(embed_dim=32, depth=1, num_heads=2, image_size=32)
T5_DIM = 16


def small_spec() -> registry.OfficialSpec:
    return registry.OfficialSpec(
        mode="selva",
        video_encoder=lambda: TextSynch(TextSynchConfig(video=VIDEO, text_dim=T5_DIM)),
        generator=lambda: FlowGenerator(GeneratorConfig(latent_dim=20, clip_dim=24, sync_dim=VIDEO.embed_dim,
                                                        text_dim=WIDTH, hidden_dim=64, depth=2, fused_depth=1,
                                                        num_heads=2)),
        audio_decoder=lambda: audio_decoder_16k(vae_hidden_dim=16, vocoder_channels=64),
        clip_config=lambda: clip_text_config(WIDTH, HEADS, LAYERS, VOCAB),
        frame_size=VIDEO.image_size,
    )


def legacy_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The released vocoder's (likely) naming: weight_g / weight_v."""
    return {k.replace("parametrizations.weight.original0", "weight_g")
             .replace("parametrizations.weight.original1", "weight_v"): v for k, v in state.items()}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def fabricated(tmp_path_factory) -> tuple[Path, registry.ModelCard]:
    """A models directory holding every file of a small SelVA in the released layout, and its card."""
    root = tmp_path_factory.mktemp("models")
    spec = small_spec()
    torch.manual_seed(0)
    files: dict[str, registry.WeightFile] = {}

    def add(role: str, repo: str, path: str, publish_md5: bool = True) -> Path:
        target = root / repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        files[role] = registry.WeightFile(repo, path, None, "1M", "test licence")
        return target

    video = spec.video_encoder()
    video_state = video.state_dict() | {"afeat_extractor.extra": torch.zeros(3)}  # dropped by the prefix filter
    torch.save(video_state, add("video_encoder", "test/SelVA", "weights/video_enc.pth"))
    generator = spec.generator()
    torch.nn.init.normal_(generator.final_layer.conv.weight, std=0.02)  # non-zero output
    torch.save(generator.state_dict() | {"latent_rot": torch.zeros(2)},  # a legacy buffer, deleted on load
               add("generator", "test/SelVA", "weights/generator.pth"))
    audio = spec.audio_decoder()
    torch.save(audio.vae.state_dict(), add("vae", "test/SelVA", "ext_weights/v1-16.pth"))
    torch.save({"generator": legacy_weight_norm(audio.vocoder.state_dict())},
               add("vocoder", "test/SelVA", "ext_weights/best_netG.pt"))
    torch.save(open_clip_state(), add("clip", "test/clip", "open_clip_pytorch_model.bin"))
    from test_text_encoders import bytes_to_unicode

    alphabet = list(bytes_to_unicode().values())
    vocab = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    add("clip_vocab", "test/tok", "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    add("clip_merges", "test/tok", "merges.txt").write_text("#version: 0.2\n")
    tokenizer, t5 = tiny_t5()
    t5_dir = root / "test/t5"
    t5.save_pretrained(t5_dir)
    tokenizer.save_pretrained(t5_dir)
    for i, name in enumerate(sorted(p.name for p in t5_dir.iterdir())):
        files[f"t5_{name.split('.')[0]}" if name == "config.json" else f"t5_file{i}"] = \
            registry.WeightFile("test/t5", name, None, "1K", "test licence")
    # "Published" MD5s for the SelVA-hosted files, as the real cards have.
    files = {role: dataclasses.replace(f, md5=md5(f.target(root)) if f.repo == "test/SelVA" else None)
             for role, f in files.items()}
    return root, registry.ModelCard(NAME, "small SelVA for tests", files, spec)


@pytest.fixture()
def card(fabricated, monkeypatch) -> registry.ModelCard:
    root, card = fabricated
    monkeypatch.setitem(registry.CARDS, NAME, card)
    monkeypatch.setenv("OTIO_FOLEY_MODELS_DIR", str(root))
    return card


@pytest.fixture()
def broken(fabricated, card, tmp_path, monkeypatch):
    """A writable copy of the models directory to damage; returns (root, card)."""
    import shutil

    root = tmp_path / "models"
    shutil.copytree(fabricated[0], root)
    monkeypatch.setenv("OTIO_FOLEY_MODELS_DIR", str(root))
    return root, card


def test_fabricated_set_loads_and_generates(card) -> None:
    model = registry.load_model(NAME, device="cpu")
    assert model.name == NAME and model.sample_rate == 16_000 and model.frame_size == 32
    assert re.fullmatch(r"[0-9a-f]{16}", model.checksum)
    frames = torch.rand(16, 3, 32, 32) * 2 - 1  # one sync segment: the shortest clip
    prompts = [Prompt("dog barks", seed=1), Prompt("glass", seed=2, onscreen=False)]
    audio = model.generate(frames, prompts, duration=0.64, steps=2)
    assert audio.shape == (2, 10_240) and audio.dtype == torch.float32 and torch.isfinite(audio).all()
    again = model.generate(frames, prompts, duration=0.64, steps=2)
    torch.testing.assert_close(audio, again, atol=0, rtol=0)  # same seed, same device: same audio
    assert not torch.equal(audio[0], audio[1])


def test_built_without_random_init_yet_every_weight_is_the_files(fabricated, card) -> None:
    """build_official skips the random init (checkpoints.skipped_init): the strict loads must still leave
    every parameter and buffer equal to the files or to a normally built module's computed constants."""
    root, _ = fabricated
    model = registry.load_model(NAME, device="cpu")
    generator_file = read_state_dict(card.files["generator"].target(root))
    for key, value in model.generator.state_dict().items():
        torch.testing.assert_close(value, generator_file[key], atol=0, rtol=0, msg=key)
    video_file = read_state_dict(card.files["video_encoder"].target(root))
    for key, value in model.video_encoder.state_dict().items():
        torch.testing.assert_close(value, video_file[key], atol=0, rtol=0, msg=key)
    reference = small_spec().audio_decoder()  # non-persistent buffers (mel basis, window) are computed
    for key, value in reference.named_buffers():
        if key in dict(model.audio_decoder.named_buffers()):
            torch.testing.assert_close(dict(model.audio_decoder.named_buffers())[key], value, msg=key)


def test_skipped_init_skips_and_restores() -> None:
    from otio_foley.models.checkpoints import skipped_init

    original = torch.nn.init.kaiming_uniform_
    with pytest.raises(RuntimeError), skipped_init():
        zeros = torch.zeros(4, 4)
        assert torch.nn.init.kaiming_uniform_(zeros) is zeros and not zeros.any()
        raise RuntimeError("a failed build")
    assert torch.nn.init.kaiming_uniform_ is original


def planning_facts(model) -> dict:
    keys = ("name", "checksum", "fps", "sample_rate", "window_seconds", "min_seconds", "frame_size")
    return {key: getattr(model, key) for key in keys}


@pytest.mark.parametrize("name", [NAME, "selva-tiny"])
def test_model_facts_equal_the_loaded_models(card, name) -> None:
    """`plan` counts cache hits with these facts, so they must be exactly what `render` loads."""
    facts = registry.model_facts(name)
    assert facts == planning_facts(registry.load_model(name, device="cpu"))
    assert window_key_of(ModelInfo(**facts)) == window_key_of(registry.load_model(name, device="cpu"))


def window_key_of(model) -> str:
    source = SourceCue(prompt="dog", negative_prompt="", track="FX dog", gain_db=0.0, seed=1, steps=2, cfg=4.5,
                       mode="onscreen", variations=1, model=None, where="test")
    return window_key(model_info=model, source=source, media="m.mov", source_range=None, time_scalar=1,
                      seed=1, duration=2.0)


def test_model_facts_of_a_model_not_installed_here(tmp_path) -> None:
    facts = registry.model_facts("selva-s16k", models_dir=tmp_path)
    assert facts["checksum"] is None and (facts["sample_rate"], facts["frame_size"]) == (16000, 224)


def test_official_rules_applied(fabricated, card) -> None:
    """Prefix filter and legacy-buffer deletion are needed: without them the same files do not fit."""
    root, _ = fabricated
    spec = small_spec()
    with pytest.raises(UserError, match=r"unexpected key afeat_extractor.extra"):
        check_fit(spec.video_encoder(), read_state_dict(card.files["video_encoder"].target(root)), "video")
    with pytest.raises(UserError, match=r"unexpected key latent_rot"):
        check_fit(spec.generator(), read_state_dict(card.files["generator"].target(root)), "generator")


def test_missing_file(broken) -> None:
    root, card = broken
    target = card.files["generator"].target(root)
    target.unlink()
    with pytest.raises(UserError) as err:
        registry.load_model(NAME, device="cpu")
    assert err.value.format_message() == (
        f"{target}: missing test/SelVA/weights/generator.pth (1M), needed by {NAME} "
        f"(run `otio-foley models pull {NAME}`)")


def test_truncated_file_with_published_md5(broken) -> None:
    root, card = broken
    target = card.files["vocoder"].target(root)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"MD5 [0-9a-f]{32} does not match the published "
                                        rf"{card.files['vocoder'].md5} \(truncated or damaged download\)"):
        registry.load_model(NAME, device="cpu")


def test_truncated_file_without_md5(broken) -> None:
    root, card = broken
    target = card.files["clip"].target(root)
    target.write_bytes(target.read_bytes()[:5000])
    with pytest.raises(UserError) as err:
        registry.load_model(NAME, device="cpu")
    message = err.value.format_message()
    assert message.startswith(f"{target}: cannot read as a PyTorch checkpoint (")
    assert message.endswith("(the file is truncated or damaged: delete it and download it again)")


def test_md5_mismatch(broken) -> None:
    root, card = broken
    target = card.files["video_encoder"].target(root)
    data = bytearray(target.read_bytes())
    data[-100] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match the published"):
        registry.load_model(NAME, device="cpu")


def test_wrong_shape_names_first_key(broken, monkeypatch) -> None:
    root, card = broken
    target = card.files["generator"].target(root)
    state = torch.load(target, weights_only=True)
    state["audio_input_proj.0.weight"] = torch.zeros(64, 40, 7)
    torch.save(state, target)
    files = dict(card.files)
    files["generator"] = dataclasses.replace(files["generator"], md5=md5(target))
    monkeypatch.setitem(registry.CARDS, NAME, dataclasses.replace(card, files=files))
    with pytest.raises(UserError) as err:
        registry.load_model(NAME, device="cpu")
    assert err.value.format_message() == (
        f"{target}: key audio_input_proj.0.weight has shape (64, 40, 7), the model expects (64, 20, 7) "
        "(the file belongs to another model or variant; check the model name or re-download it)")


def test_cli_verify(card, broken) -> None:
    runner = CliRunner()
    root, _ = broken
    ok = runner.invoke(cli, ["models", "verify", NAME])
    assert ok.exit_code == 0, ok.output
    assert f"{NAME}: all {len(card.files)} files verified." in ok.output
    card.files["vae"].target(root).write_bytes(b"not a checkpoint")
    bad = runner.invoke(cli, ["models", "verify", NAME])
    assert bad.exit_code == 2
    assert "1 of" in bad.output and "does not match the published" in bad.output
    assert "Traceback" not in bad.output


def test_cli_pull_offline_and_with_fake_hub(card, tmp_path, monkeypatch) -> None:
    import huggingface_hub

    empty = tmp_path / "empty"
    runner = CliRunner()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # HF_HUB_OFFLINE is read when huggingface_hub is imported; patch the live constant the same way.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    offline = runner.invoke(cli, ["models", "pull", NAME, "--models-dir", str(empty)])
    assert offline.exit_code == 2
    assert "cannot download https://huggingface.co/test/SelVA/resolve/main/weights/video_enc.pth" in offline.output
    assert "test licence" in offline.output  # licences are printed before anything is fetched

    source = registry.resolve_models_dir()  # the fabricated set stands in for the Hub
    calls = []

    def fake_download(repo_id: str, filename: str, *, local_dir: Path, **_) -> str:
        calls.append((repo_id, filename))
        target = Path(local_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((source / repo_id / filename).read_bytes())
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    pulled = runner.invoke(cli, ["models", "pull", NAME, "--models-dir", str(empty)])
    assert pulled.exit_code == 0, pulled.output
    assert len(calls) == len(card.files) and "MD5 ok" in pulled.output
    assert registry.missing_files(card, empty) == []


def test_default_model_falls_back_to_tiny(tmp_path, monkeypatch, capsys) -> None:
    from otio_foley.models import tiny

    weights = tmp_path / "selva-tiny.safetensors"
    tiny.save_networks(tiny.selva_tiny(), weights)
    monkeypatch.setattr(registry, "builtin_weights", lambda: weights)
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *a, **k: None)
    model = registry.load_model(device="cpu", models_dir=tmp_path / "none")
    assert model.name == "selva-tiny" and model.checksum == tiny.checksum(weights)
    assert "using the built-in selva-tiny: selva-s16k is not installed" in capsys.readouterr().err


def test_tiny_files_are_byte_identical_for_identical_networks(tmp_path) -> None:
    """A rerun of the recipe must reproduce the shipped file's sha256, not only its tensors: safetensors writes
    metadata in a random order, which `save_networks` undoes (with three keys, eight saves all agreeing by chance
    has odds of 1 in 6**7)."""
    from safetensors.torch import load_file

    from otio_foley.models import tiny

    networks = tiny.selva_tiny()
    paths = [tmp_path / f"{i}.safetensors" for i in range(8)]
    for path in paths:
        tiny.save_networks(networks, path, {"stages": "0,1,2", "num_sup_tokens": "5"})
    assert len({tiny.checksum(path) for path in paths}) == 1
    with open(paths[0], "rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    assert list(header["__metadata__"]) == ["config", "info", "selective"]
    assert all(torch.equal(v, networks.state_dict()[k]) for k, v in load_file(paths[0]).items())
    assert tiny.read_config(paths[0]) == (networks.cfg, True)


def test_tiny_files_from_before_the_patch_option_load_with_16_pixel_patches(tmp_path) -> None:
    """The first selva-tiny releases wrote no `video_patch` into their config: they used 16×16 patches, which
    is no longer the default, and such files (users' fine-tunes too) must keep loading strictly."""
    from safetensors.torch import load_file, save_file

    from otio_foley.models import tiny

    old = tmp_path / "old.safetensors"
    tiny.save_networks(tiny.TinyNetworks(dataclasses.replace(tiny.TinyConfig(), video_patch=16)), old)
    with open(old, "rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))["__metadata__"]
    config = json.loads(header["config"])
    del config["video_patch"]
    save_file(load_file(old), old, metadata={**header, "config": json.dumps(config)})
    assert tiny.TinyConfig().video_patch != 16 and tiny.load_networks(old).cfg.video_patch == 16


def test_device_resolution() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(UserError, match=r"--device: unknown device 'gpu' \(use auto, cpu, cuda, cuda:N or mps\)"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda:1")


FAULTS = """
import resource, sys, torch
from otio_foley.models.device import retain_cpu_heap
if sys.argv[1] == "retain":
    assert retain_cpu_heap()
torch.set_num_threads(1)
x, w = torch.randn(1, 32, 1 << 19), torch.randn(32, 32, 3) / 10  # 64 MiB activations, as in an 8 s vocoder pass

def layers() -> None:
    y = x
    for _ in range(4):
        y = torch.nn.functional.conv1d(y, w, padding=1).sin()

layers()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    layers()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_retained_heap_reuses_large_blocks_without_page_faults() -> None:
    """glibc's defaults map each 64 MiB layer output afresh (16,384 page faults each, 262,000 a pass here);
    retained, they are reused. Now and then a block still lands in fresh pages (over three passes, 20 runs on a
    2-core dev machine: 0 faults 13 times, one block of 16,384 six times, two once), so the bound leaves room for four
    such blocks, a tenth of what the defaults cost."""
    def faults(mode: str) -> int:
        return int(subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True,
                                  check=True).stdout)

    default = faults("default")
    assert default > 3 * 4 * 16_000
    assert faults("retain") < 0.1 * default


def test_unknown_model_name() -> None:
    with pytest.raises(UserError, match=r"unknown model 'selva-xl'.*selva-s16k, selva-tiny"):
        registry.load_model("selva-xl", device="cpu")


def test_real_cards_are_complete() -> None:
    """Every official card carries the roles its builder reads, with MD5s where the tables publish them."""
    selva = registry.CARDS["selva-s16k"]
    assert {"video_encoder", "generator", "vae", "vocoder", "clip", "clip_vocab", "clip_merges",
            "t5_config", "t5_model"} <= set(selva.files)
    assert selva.files["generator"].md5 == "1cb0f0deec52de37f67b1fd9965337d0"
    for card in registry.CARDS.values():
        if card.spec is not None:
            for role in ("video_encoder", "generator", "vae", "vocoder"):
                assert role in card.files and (card.files[role].md5 or card.files[role].repo.startswith("nvidia/"))


def test_not_a_tiny_weights_file(tmp_path) -> None:
    bad = tmp_path / "mine.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(UserError, match=rf"^{re.escape(str(bad))}: not a selva-tiny weights file \("):
        registry.load_model(str(bad), device="cpu")
