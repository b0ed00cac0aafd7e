"""SelVA's training stages on a miniature tiny-architecture config: losses fall, only the intended
parameters move, a resumed stage is bit-identical, and the shipped model generates offline."""
from __future__ import annotations

import json
import socket
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from otio_foley.models.mel_codec import MelCodec, MelCodecConfig
from otio_foley.models.pipeline import Prompt
from otio_foley.models.sequence import token_instants, token_means
from otio_foley.models.synchformer import segment_frames
from otio_foley.models.tiny import WEIGHTS, TinyConfig, TinyNetworks, load_networks, load_tiny, save_networks
from otio_foley.synth.scenes import make_scene
from otio_foley.training.data import ClipBank, to_float
from otio_foley.training import tiny_recipe
from otio_foley.training.loop import LoopConfig, step_generator, train
from otio_foley.training.stages import (CaptionContrast, StageConfig, crop_segments, distillation_loss,
                                        holistic_loss, instant_nce, mixed_frames, pretext_loss,
                                        selective_flow_loss)
from otio_foley.training.tiny_recipe import build_bank, train_encoder, train_generator, train_holistic

MINI = TinyConfig(frame_size=32, window_seconds=0.96, video_dim=32, video_depth=1, video_heads=2, hidden_dim=64,
                  depth=2, fused_depth=1, clip_dim=8, codec=MelCodecConfig(hop=512, n_mels=16))


class WordEncoder:
    """A stand-in text encoder: one fixed random 384-d vector per word (MiniLM is tested elsewhere)."""

    dim = 384

    def __init__(self, length: int | None = None) -> None:
        self.length = length

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        words = [t.split() or [""] for t in texts]
        n = self.length or max(map(len, words))
        feats, mask = torch.zeros(len(texts), n, self.dim), torch.zeros(len(texts), n, dtype=torch.bool)
        for i, ws in enumerate(words):
            for j, w in enumerate(ws[:n]):
                feats[i, j] = torch.randn(self.dim, generator=torch.Generator().manual_seed(zlib.crc32(w.encode())))
                mask[i, j] = True
        return feats, mask


TEXTS = (WordEncoder(), WordEncoder(length=16))


@pytest.fixture(scope="module")
def bank() -> ClipBank:
    return build_bank(6, 0, MINI, MelCodec(MINI.codec))


def _mean_loss(loss_fn, seeds=range(12)) -> float:
    with torch.no_grad():
        return float(torch.stack([loss_fn(0, step_generator(99, s)) for s in seeds]).mean())


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


@pytest.fixture(scope="module")
def stages(bank: ClipBank, tmp_path_factory):
    """Run stages 0, 1, 2 for a few steps each, recording losses and changed parameters."""
    out = tmp_path_factory.mktemp("stages")
    loop = LoopConfig(steps=40, lr=3e-3, warmup=3, decay_at=(), ema_decay=0.5, checkpoint_every=10)
    facts, log = {}, {}
    torch.manual_seed(0)
    probe = TinyNetworks(MINI, selective=False)  # an untrained copy to measure stage 0's loss before
    probe_loss = holistic_loss(probe.video, probe.generator, bank, TEXTS[1], StageConfig(batch_size=4))
    runs = {}
    original = tiny_recipe._stage

    def recording(name, networks, loss, loop_, out_, log_):
        before = {k: v.clone() for k, v in networks.state_dict().items()}
        expected = {n for n, p in networks.named_parameters() if p.requires_grad}
        first = _mean_loss(loss)
        original(name, networks, loss, loop_, out_, log_)
        runs[name] = (first, _mean_loss(loss), _changed(before, networks), expected)

    with pytest.MonkeyPatch.context() as patch:  # record around every stage the recipe runs
        patch.setattr(tiny_recipe, "_stage", recording)
        holistic = train_holistic(bank, TEXTS, loop, 4, out, log, bank, MINI, pretext=loop, contrast_weight=0.3)
        after = holistic_loss(holistic.video, holistic.generator, bank, TEXTS[1], StageConfig(batch_size=4))
        facts["stage0_loss"] = (_mean_loss(probe_loss), _mean_loss(after))
        # stage 1's signal is small (the teacher's features differ little between clips): a gentler lr
        selective = train_encoder(holistic, 2, bank, TEXTS, replace(loop, lr=1e-3), 4, out, log)
        train_generator(selective, bank, TEXTS, loop, 4, out, log)
    facts.update(runs)
    return facts, holistic, selective


def test_each_stage_lowers_its_loss(stages) -> None:
    facts, _, _ = stages
    before, after = facts["stage0_loss"]
    assert after < 0.9 * before, facts["stage0_loss"]
    for name in ("stage0_encoder", "stage0", "stage1", "stage2"):
        first, last, _, _ = facts[name]
        assert last < first, (name, first, last)


def test_only_the_intended_parameters_change(stages) -> None:
    facts, _, _ = stages
    _, _, changed, expected = facts["stage0_encoder"]  # the plain encoder, its mel read-out and contrast head
    assert changed == expected and {n.split(".")[0] for n in changed} == {"video", "head", "contrast"}
    # The generator alone, never its stored constants. The CLIP-image stream only ever carries the null
    # feature (zeros at init), so its input projection's weights get no gradient and may not move.
    _, _, changed, expected = facts["stage0"]
    assert changed <= expected and all(n.startswith("generator.") for n in expected)
    assert any("sync_input_proj" in n for n in changed) and any("text_input_proj" in n for n in changed)
    assert not any(k in n for n in expected for k in ("latent_mean", "latent_std", "empty_string_feat"))
    _, _, changed, expected = facts["stage1"]
    assert changed == expected
    assert {n.split(".")[1] for n in changed} == {"synch_text_cross_blocks", "sup_text_feat", "text_proj",
                                                  "vfeat_extractor"}
    assert all(n.startswith("video.vfeat_extractor.spatial_attn_agg.") for n in changed
               if n.startswith("video.vfeat_extractor."))
    _, _, changed, expected = facts["stage2"]
    assert changed == expected and all(n.startswith("generator.") for n in changed)
    assert any("sync_input_proj" in n for n in changed) and any("adaLN" in n for n in changed)
    assert not any(k in n for n in changed for k in ("text_input_proj", "audio_input_proj", "attn.qkv"))


def test_stage2_all_trains_the_whole_generator(stages, bank: ClipBank, tmp_path: Path) -> None:
    """The issue's explicit flag for a model trained from scratch: stage 2 moves every generator weight the
    data reaches (text and audio paths too), still never the encoder or the stored constants."""
    _, _, trained = stages
    selective = TinyNetworks(trained.cfg, selective=True)
    selective.load_state_dict(trained.state_dict())
    before = {k: v.clone() for k, v in selective.state_dict().items()}
    loop = LoopConfig(steps=3, lr=1e-3, warmup=1, decay_at=())
    train_generator(selective, bank, TEXTS, loop, 4, tmp_path, {}, from_scratch=True)
    changed = _changed(before, selective)
    assert all(n.startswith("generator.") for n in changed)
    assert all(any(k in n for n in changed) for k in ("text_input_proj", "audio_input_proj", "attn.qkv", "adaLN"))
    assert not any(k in n for n in changed for k in ("latent_mean", "latent_std", "empty_string_feat"))


def test_stage1_trunk_trains_the_students_whole_encoder(stages, bank: ClipBank, tmp_path: Path) -> None:
    """With the switch, stage 1 moves the student's ViT trunk as well as SelVA's four groups; never the generator,
    the stored empty-text feature, the never-called 2-D patch embed, or the teacher."""
    _, holistic, _ = stages
    teacher = {k: v.clone() for k, v in holistic.state_dict().items()}
    loop = LoopConfig(steps=3, lr=1e-3, warmup=1, decay_at=())
    selective = train_encoder(holistic, 2, bank, TEXTS, loop, 4, tmp_path, {}, trunk=True)
    trunk = _changed(holistic.video.vfeat_extractor.state_dict(), selective.video.vfeat_extractor)
    assert all(any(k in n for n in trunk) for k in ("patch_embed_3d.", "blocks.", "spatial_attn_agg."))
    assert not any(n.startswith("patch_embed.") for n in trunk)
    trainable = {n for n, p in selective.named_parameters() if p.requires_grad}
    assert {n.split(".")[1] for n in trainable} == {"synch_text_cross_blocks", "sup_text_feat", "text_proj",
                                                    "vfeat_extractor"}
    assert not _changed(holistic.generator.state_dict(), selective.generator)
    assert not _changed(teacher, holistic)


def test_stage1_trains_the_trunk_text_block_but_not_the_trunk(stages, bank: ClipBank, tmp_path: Path) -> None:
    """`trunk_text` adds a text block inside the trunk; stage 1 trains it with SelVA's groups, not the ViT."""
    _, holistic, _ = stages
    teacher = TinyNetworks(replace(holistic.cfg, trunk_text=True), selective=False)
    teacher.load_state_dict(holistic.state_dict())
    loop = LoopConfig(steps=3, lr=1e-3, warmup=1, decay_at=())
    selective = train_encoder(teacher, 2, bank, TEXTS, loop, 4, tmp_path, {})
    block = selective.video.trunk_text_cross_block
    assert block.norm1.weight.abs().sum() > 0  # it left its identity start
    trunk = _changed(holistic.video.vfeat_extractor.state_dict(), selective.video.vfeat_extractor)
    assert trunk and all(n.startswith("spatial_attn_agg.") for n in trunk)


def test_recipe_switches_reach_the_recipe(tmp_path: Path, monkeypatch) -> None:
    """Boolean recipe fields are on/off switches on both command lines (argparse's type=bool would read
    "--stage2-all False" as True)."""
    from click.testing import CliRunner

    from otio_foley.cli.train import train as train_cli

    seen = []
    monkeypatch.setattr(tiny_recipe, "run", lambda recipe, out: seen.append(recipe) or {})
    tiny_recipe.main(["--out", str(tmp_path)])
    tiny_recipe.main(["--out", str(tmp_path), "--stage2-all", "--steps2", "7", "--no-stage1-trunk", "--trunk-text",
                      "--stage1-segment-stride", "1", "--ablation"])
    for args in (["--stage2-all"], ["--no-stage2-all", "--no-stage1-trunk", "--trunk-text"]):
        result = CliRunner().invoke(train_cli, ["tiny", "--out", str(tmp_path), *args])
        assert result.exit_code == 0, result.output
    assert [r.stage2_all for r in seen] == [False, True, True, False] and seen[1].steps2 == 7
    assert [r.stage1_segment_stride for r in seen[:2]] == [2, 1]
    assert [r.ablation for r in seen[:2]] == [False, True]  # the shipped model's command trains no ablation
    assert [r.stage1_trunk for r in seen] == [True, False, True, False]
    assert [r.trunk_text for r in seen] == [False, True, False, True]


def test_stage0_without_pretext_trains_end_to_end(bank: ClipBank, tmp_path: Path) -> None:
    torch.manual_seed(0)
    fresh = TinyNetworks(MINI, selective=False)
    tiny_recipe.set_latent_stats(fresh, bank)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    torch.manual_seed(0)  # train_holistic builds the same initial networks
    trained = train_holistic(bank, TEXTS, LoopConfig(steps=3, lr=1e-3, warmup=1), 4, tmp_path, {}, bank, MINI)
    changed = _changed(before, trained)
    assert {n.split(".")[0] for n in changed} == {"video", "generator"}
    assert not any(k in n for n in changed for k in ("latent_mean", "latent_std"))


def test_pretext_pool_renders_fresh_training_scenes_per_batch() -> None:
    source = tiny_recipe.scene_source(50, 2, MINI, MelCodec(MINI.codec))
    scenes = source.dataset
    assert len(scenes) == 50 and scenes[0]["seed"] == 100 and scenes[49]["seed"] == 149  # training seeds only
    batch, again = (source.sample(torch.Generator().manual_seed(5), 4) for _ in range(2))
    other = source.sample(torch.Generator().manual_seed(6), 4)
    assert torch.equal(batch.frames, again.frames) and batch.captions == again.captions  # resumable: a pure draw
    assert not torch.equal(batch.frames, other.frames)
    assert batch.frames.shape[1:] == (24, 3, 32, 32) and batch.latents.shape[-1] == MINI.codec.n_mels
    assert any(torch.equal(batch.frames[0], scenes[i]["frames"]) for i in range(50))  # a clip as rendered


def test_pretext_samples_its_own_source(bank: ClipBank, tmp_path: Path) -> None:
    class Counting:  # a source that counts the batches drawn from it
        def __init__(self) -> None:
            self.calls = 0

        def sample(self, generator: torch.Generator, batch_size: int):
            self.calls += 1
            return bank.sample(generator, batch_size)

    pretext, stage0 = Counting(), Counting()
    train_holistic(stage0, TEXTS, LoopConfig(steps=2, lr=1e-3, warmup=1), 4, tmp_path, {}, bank, MINI,
                   pretext=LoopConfig(steps=3, lr=1e-3, warmup=1), pretext_source=pretext)
    assert (pretext.calls, stage0.calls) == (3, 2)


def test_pretext_caption_contrast_trains_the_encoder_and_its_head(bank: ClipBank) -> None:
    """With a caption weight the pretext's loss reads the captions: its gradient reaches the caption head and
    the encoder, and a loss without the video-side text encoder is refused."""
    networks = TinyNetworks(MINI, selective=False)
    wrapper = tiny_recipe.Pretext(networks.video, MINI, contrast_weight=1.0, caption_weight=1.0)
    embed = networks.video.vfeat_extractor.patch_embed_3d.proj.weight
    grads = []
    for caption in (None, wrapper.caption):
        embed.grad = None
        pretext_loss(wrapper.video, wrapper.head, networks.generator, bank, StageConfig(batch_size=4),
                     wrapper.contrast, caption, TEXTS[0])(0, step_generator(0, 0)).backward()
        grads.append(embed.grad.clone())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in wrapper.caption.parameters())
    assert not torch.allclose(*grads)  # the caption term reaches the encoder
    late = pretext_loss(wrapper.video, wrapper.head, networks.generator, bank, StageConfig(batch_size=4),
                        wrapper.contrast, wrapper.caption, TEXTS[0], caption_from=5)
    plain = pretext_loss(wrapper.video, wrapper.head, networks.generator, bank, StageConfig(batch_size=4),
                         wrapper.contrast)
    with torch.no_grad():
        for step, joined in ((4, False), (5, True)):  # the caption term starts at `caption_from`
            same = torch.equal(late(step, step_generator(0, step)), plain(step, step_generator(0, step)))
            assert same != joined
    with pytest.raises(ValueError, match="text encoder"):
        pretext_loss(wrapper.video, wrapper.head, networks.generator, bank, StageConfig(), caption=wrapper.caption)


def test_pretext_crop_reads_whole_segments_and_their_own_latent_frames(bank: ClipBank) -> None:
    """A crop's frames start on a segment boundary and its latent frames start at the same instant (2 s clips at
    62.5 latent frames/s: frame 8c <-> latent frame 20c); every offset is drawn; the encoder's tokens of the crop
    are the whole clip's tokens of those segments; a crop longer than the clip is refused."""
    frames = torch.arange(50.0).view(1, 50, 1, 1, 1).expand(2, 50, 3, 4, 4)
    latents = torch.arange(125.0).view(1, 125, 1).expand(2, 125, 64)
    starts = set()
    for seed in range(20):
        f, z = crop_segments(frames, latents, 3, 62.5, torch.Generator().manual_seed(seed))
        assert (f.shape[1], z.shape[1]) == (32, 80)
        first = int(f[0, 0, 0, 0, 0])
        assert int(z[0, 0, 0]) == first * 62.5 / 25 and first % 8 == 0
        starts.add(first)
    assert starts == {0, 8, 16}
    with pytest.raises(ValueError, match="does not fit"):
        crop_segments(frames, latents, 6, 62.5, torch.Generator())

    networks = TinyNetworks(MINI, selective=False).eval()  # 24-frame clips: 2 segments
    clips, rate = to_float(bank.frames_u8[:2]), networks.generator.config.latent_rate
    index = torch.arange(24.0).view(1, 24, 1, 1, 1)
    with torch.no_grad():
        whole = networks.video(segment_frames(clips))
        for seed in range(6):  # the same draw crops the frame indices and the clips
            first = int(crop_segments(index, bank.latents[:1], 1, rate, torch.Generator().manual_seed(seed))[0][0, 0])
            f, _ = crop_segments(clips, bank.latents[:2], 1, rate, torch.Generator().manual_seed(seed))
            tokens = slice(8 * (first // 8), 8 * (first // 8) + 8)  # 8 tokens per segment, one every 8 frames
            assert torch.allclose(networks.video(segment_frames(f)), whole[:, tokens], atol=1e-6)
    wrapper = tiny_recipe.Pretext(networks.video, MINI, contrast_weight=1.0)
    losses = [pretext_loss(wrapper.video, wrapper.head, networks.generator, bank, StageConfig(batch_size=4),
                           wrapper.contrast, crop=crop)(0, step_generator(0, 0)) for crop in (0, 1)]
    assert torch.isfinite(losses[1]) and not torch.equal(*losses)  # the pretext reads the crop


def test_recipe_encoder_sizes_reach_the_saved_networks(tmp_path: Path) -> None:
    """`--video-depth`, `--video-dim`, `--frame-size`, `--xattn-depth` and `--trunk-text` shape the encoder (and
    the generator's sync input), and the file the recipe writes loads back so."""
    assert tiny_recipe.Recipe().networks() == TinyConfig()
    cfg = tiny_recipe.Recipe(video_depth=3, video_dim=48, frame_size=80, xattn_depth=2, trunk_text=True).networks()
    save_networks(TinyNetworks(cfg), tmp_path / "sized.safetensors")
    loaded = load_networks(tmp_path / "sized.safetensors")
    assert loaded.cfg == cfg and len(loaded.video.vfeat_extractor.blocks) == 3
    assert len(loaded.video.synch_text_cross_blocks) == 2 and loaded.generator.config.sync_dim == 48
    assert len(loaded.video.cross_blocks()) == 3


def test_cached_encoder_features_give_the_same_losses(stages, bank: ClipBank) -> None:
    """Stage 0's generator step and stage 1's teacher read the frozen encoder's cached features: the same
    features and losses as running the encoder, per clip whatever the batch."""
    _, holistic, selective = stages
    cached = tiny_recipe.with_frozen_features(bank, holistic.video)
    batch = cached.sample(torch.Generator().manual_seed(3), 4)
    with torch.no_grad():
        torch.testing.assert_close(batch.features, holistic.video(segment_frames(batch.frames)))
    assert bank.features is None and bank.sample(torch.Generator(), 2).features is None
    stage, strided = StageConfig(batch_size=4), StageConfig(batch_size=4, segment_stride=2)
    for loss in (lambda source: holistic_loss(holistic.video, holistic.generator, source, TEXTS[1], stage),
                 lambda source: distillation_loss(holistic.video, selective.video, source, TEXTS[0], stage),
                 lambda source: distillation_loss(holistic.video, selective.video, source, TEXTS[0], strided)):
        assert _mean_loss(loss(cached)) == pytest.approx(_mean_loss(loss(bank)), rel=1e-5)
    dataset_like = object()
    assert tiny_recipe.with_frozen_features(dataset_like, holistic.video) is dataset_like


def test_segment_stride_distils_on_every_other_segment(stages, bank: ClipBank) -> None:
    """Stride 2: each step's loss is the distillation loss of the segments at one offset (drawn per step; both
    are drawn), as TextSynch and its teacher encode every segment on its own."""
    _, holistic, selective = stages
    cached = tiny_recipe.with_frozen_features(bank, holistic.video)
    stage = StageConfig(batch_size=4, segment_stride=2)
    strided = distillation_loss(holistic.video, selective.video, cached, TEXTS[0], stage)
    offsets = []
    for seed in range(8):
        g = step_generator(5, seed)
        batch = cached.sample(g, 4)
        segments = segment_frames(mixed_frames(batch.frames, g, stage.mix))
        with torch.no_grad():
            error = (selective.video(segments, *TEXTS[0](batch.captions)) - batch.features).square()
            per_segment = error.unflatten(1, (segments.shape[1], -1)).mean((0, 2, 3))
            loss = strided(0, step_generator(5, seed))
        assert segments.shape[1] == 2
        offsets += [o for o in range(2) if torch.isclose(loss, per_segment[o], rtol=1e-5, atol=0)]
    assert len(offsets) == 8 and set(offsets) == {0, 1}
    with pytest.raises(ValueError, match="segment_stride"):
        distillation_loss(holistic.video, selective.video, cached, TEXTS[0], StageConfig(segment_stride=0))(
            0, step_generator(0, 0))
    with pytest.raises(ValueError, match="segment_stride"):
        tiny_recipe.Recipe(stage1_segment_stride=0)  # refused before any stage runs


def test_frozen_encoder_stages_read_cached_features(bank: ClipBank, tmp_path: Path) -> None:
    seen = {}

    def spy(name):
        original = getattr(tiny_recipe, name)

        def wrapped(*args):
            seen[name] = next(a for a in args if isinstance(a, ClipBank)).features
            return original(*args)
        return wrapped

    with pytest.MonkeyPatch.context() as patch:
        for name in ("holistic_loss", "distillation_loss"):
            patch.setattr(tiny_recipe, name, spy(name))
        loop = LoopConfig(steps=1, lr=1e-3, warmup=1)
        holistic = train_holistic(bank, TEXTS, loop, 4, tmp_path, {}, bank, MINI, pretext=loop)
        train_encoder(holistic, 2, bank, TEXTS, loop, 4, tmp_path, {})
    with torch.no_grad():  # the trained encoder's features of every clip, cached before its first use
        expected = holistic.video(segment_frames(to_float(bank.frames_u8)))
    torch.testing.assert_close(seen["holistic_loss"], expected)
    torch.testing.assert_close(seen["distillation_loss"], expected)


def test_stage1_student_starts_as_the_teacher(stages, bank: ClipBank) -> None:
    """Identity-at-init cross block: before stage 1, TextSynch on an unmixed clip == the plain encoder."""
    _, holistic, _ = stages
    fresh = TinyNetworks(replace(MINI, num_sup_tokens=2), selective=True)
    fresh.video.vfeat_extractor.load_state_dict(holistic.video.vfeat_extractor.state_dict())
    batch = bank.sample(torch.Generator().manual_seed(0), 2)
    segments = segment_frames(batch.frames)
    with torch.no_grad():
        torch.testing.assert_close(fresh.video(segments, *TEXTS[0](batch.captions)), holistic.video(segments))


def test_resumed_stage2_is_bit_identical(stages, bank: ClipBank, tmp_path: Path) -> None:
    """Stage 2 draws mixing, noise, t and dropout per step: a crash + resume must replay them exactly."""
    _, _, selective = stages
    start = {k: v.clone() for k, v in selective.state_dict().items()}
    loop = LoopConfig(steps=8, lr=1e-3, warmup=2, checkpoint_every=3, seed=5)

    def run(ckpt: Path, crash_at: int | None):
        selective.load_state_dict(start)
        loss = selective_flow_loss(selective.video, selective.generator, bank, *TEXTS, StageConfig(batch_size=3))

        def maybe_crash(step, g):
            if step == crash_at:
                raise KeyboardInterrupt
            return loss(step, g)

        return train(selective, maybe_crash, loop, checkpoint=ckpt)

    _, straight = run(tmp_path / "a.ckpt", None)
    final = {k: v.clone() for k, v in selective.state_dict().items()}
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.ckpt", 7)
    selective.load_state_dict(start)  # a new process would rebuild the model from scratch
    torch.manual_seed(1234)
    _, resumed = train(selective, selective_flow_loss(selective.video, selective.generator, bank, *TEXTS,
                                                      StageConfig(batch_size=3)), loop, checkpoint=tmp_path / "b.ckpt")
    assert resumed == straight[6:]
    for k, v in selective.state_dict().items():
        assert torch.equal(v, final[k]), k


@pytest.mark.skipif(not WEIGHTS.exists(), reason="shipped weights not built yet")
def test_shipped_model_generates_offline(monkeypatch) -> None:
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    model = load_tiny()
    assert model.name == "selva-tiny" and model.sample_rate == 16000 and model.frame_size == 64
    scene = make_scene(1_000_000_007, size=model.frame_size, duration=1.5)
    frames = torch.from_numpy(scene.frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    audio = model.generate(frames, [Prompt(next(iter(scene.captions.values()))), Prompt("a clock ticking", seed=3)],
                           duration=1.5, steps=4)
    assert audio.shape == (2, 24000) and audio.dtype == torch.float32
    assert torch.isfinite(audio).all() and audio.abs().max() > 1e-3


def test_cli_refuses_bad_inputs(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from otio_foley.cli.train import train as train_cli

    runner = CliRunner()
    missing = runner.invoke(train_cli, ["generator", "--model", str(tmp_path / "none.safetensors"),
                                        "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "no such weights file" in missing.output
    save_networks(TinyNetworks(MINI, selective=False), tmp_path / "holistic.safetensors")
    holistic = runner.invoke(train_cli, ["generator", "--model", str(tmp_path / "holistic.safetensors"),
                                         "--out", str(tmp_path / "o")])
    assert holistic.exit_code == 2 and "is a holistic model" in holistic.output
    assert not (tmp_path / "o").exists()  # nothing written on bad input


def test_cli_trains_every_stage_on_a_real_data_manifest(tmp_path: Path) -> None:
    """`--data`: the VGGSound-style loader feeds stage 0, 1 and 2 from files on disk (video, audio, caption)."""
    from click.testing import CliRunner

    from otio_foley.cli.train import train as train_cli
    from otio_foley.synth.media import write_manifest, write_scene

    rows = []
    for seed in (11, 12, 13):
        rows += write_scene(make_scene(seed, size=64, duration=2.1), tmp_path / "clips", f"scene_{seed}")
    manifest = tmp_path / "clips" / "manifest.csv"
    write_manifest(manifest, rows)
    runner = CliRunner()
    tiny_steps = ["--data", str(manifest), "--steps", "2", "--batch-size", "2"]
    stage0 = runner.invoke(train_cli, ["scratch", *tiny_steps, "--pretext-steps", "2", "--out", str(tmp_path / "a")])
    assert stage0.exit_code == 0, stage0.output
    stage1 = runner.invoke(train_cli, ["encoder", *tiny_steps, "--holistic", str(tmp_path / "a/holistic.safetensors"),
                                       "--trunk", "--segment-stride", "2", "--out", str(tmp_path / "b")])
    assert stage1.exit_code == 0, stage1.output
    stage2 = runner.invoke(train_cli, ["generator", *tiny_steps, "--model", str(tmp_path / "b/selective.safetensors"),
                                       "--out", str(tmp_path / "c")])
    assert stage2.exit_code == 0, stage2.output
    for run, stages in (("a", ("stage0_encoder", "stage0")), ("b", ("stage1",)), ("c", ("stage2",))):
        log = json.loads((tmp_path / run / "train_log.json").read_text())
        for stage in stages:  # each stage ran its steps on batches from the manifest (a loss was recorded)
            assert log[stage]["steps"] == 2 and np.isfinite(log[stage]["first_loss"]), (run, stage)
    selective = load_networks(tmp_path / "c/selective.safetensors")
    assert selective.selective
    trunk = sum(p.numel() for _, p in selective.video.trainable_named_parameters())  # --trunk reached stage 1
    stage1 = json.loads((tmp_path / "b/train_log.json").read_text())["stage1"]
    assert stage1["trainable_params"] == trunk and stage1["segment_stride"] == 2


def test_instant_nce_rewards_a_tokens_own_instant() -> None:
    instants = token_instants(3)  # 24 tokens, 16 frame pairs: the middle segment overlaps both others
    assert instants.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7]
    same = instants[:, None] == instants[None, :]
    uniform = torch.zeros(2, 24, 24)
    chance = torch.log(24 / same.sum(1).float()).mean()  # one or two right answers among 24
    assert torch.isclose(instant_nce(uniform, instants), chance)
    assert instant_nce(20.0 * same.float().expand(2, -1, -1), instants) < 1e-6
    shifted = 20.0 * same.roll(1, dims=1).float().expand(2, -1, -1)  # every token sure of the next instant
    assert instant_nce(shifted, instants) > 10


def test_caption_contrast_rewards_a_clips_own_caption() -> None:
    """With identity heads, features equal to their caption's mean token score near 0, a batch whose features
    are shifted by one clip scores high, and identical captions all count as matches."""
    head = CaptionContrast(4, 4, weight=1.0, dim=4)
    with torch.no_grad():
        for layer in (head.video, head.text):
            layer.weight.copy_(torch.eye(4))
            layer.bias.zero_()
        head.log_scale.fill_(3.0)  # scale e³ ≈ 20 on cosine similarities
    text = torch.eye(4)[:, None, :].expand(4, 2, 4)  # caption i: two tokens both equal to e_i
    mask = torch.ones(4, 2, dtype=torch.bool)
    captions = ["a", "b", "c", "d"]
    own = torch.eye(4)[:, None, :].expand(4, 3, 4)  # clip i's features point at caption i
    with torch.no_grad():
        assert head(own, captions, text, mask) < 1e-6
        assert head(own.roll(1, dims=0), captions, text, mask) > 10
        assert head(own.roll(1, dims=0), ["a"] * 4, text, mask) < 1e-6


def test_token_means_average_the_frames_each_token_encodes() -> None:
    per_frame = torch.arange(125.0).view(1, 125, 1)  # 2 s of latent frames at 62.5/s: 5 segments
    means = token_means(per_frame, 5, 62.5)[0, :, 0]
    instants = token_instants(5)
    assert means.shape == (40,) and means[0] == 2.0  # video frames 0-1 = latent frames 0-4
    for i in instants.unique():  # tokens that see the same frames get the same audio
        assert torch.allclose(means[instants == i], means[instants == i][0])
    assert torch.all(means[instants.argsort()].diff() > -1e-4) and means[-1] > means[-9]  # later frames, later audio
