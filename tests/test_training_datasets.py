"""Training datasets: synthetic singles and pairs, and the real-data loader on files `data synth` wrote."""
from __future__ import annotations

import numpy as np
import torch

from otio_foley.synth.media import write_manifest, write_scene
from otio_foley.synth.mixing import MixConfig
from otio_foley.synth.scenes import make_scene
from otio_foley.training.datasets import SyntheticPairs, SyntheticScenes, VideoTextAudio, frames_to_tensor


def test_synthetic_scenes_items():
    data = SyntheticScenes(3, size=32, duration=1.0)
    item = data[1]
    assert item["frames"].shape == (25, 3, 32, 32) and item["frames"].dtype == torch.float32
    assert -1.0 <= float(item["frames"].min()) and float(item["frames"].max()) <= 1.0
    assert item["audio"].shape == (16000,) and isinstance(item["caption"], str)
    assert torch.equal(data[1]["frames"], item["frames"])
    assert len(SyntheticScenes(3, split="eval", duration=0.5)[0]["caption"]) > 0


def test_synthetic_pairs_layout_and_labels():
    data = SyntheticPairs(6, size=32, duration=1.0, mix=MixConfig(share=0.5), intra_class=0.5)
    kinds = []
    for i in range(len(data)):
        item = data[i]
        assert item["frames"].shape == (25, 3, 32, 32) and item["mixed"] and item["target_left"]
        target = make_scene(item["seed"], size=32, duration=1.0)
        (name,) = target.stems
        assert torch.equal(item["audio"], torch.from_numpy(target.stems[name]))
        assert item["caption"] == target.captions[name] != item["negative"]
        assert item["distractor_audio"].shape == item["audio"].shape
        # The left half is the target squeezed to 16 px: compare with a crude 2x horizontal decimation.
        squeezed = frames_to_tensor(target.frames)[..., ::2]
        assert (item["frames"][..., :16] - squeezed).abs().mean() < 0.1
        kinds.append(item["kind"] == item["distractor_kind"])
    assert any(kinds) and not all(kinds)


def test_real_loader_reads_synth_manifest(tmp_path):
    rows = []
    for seed in (3, 4):
        scene = make_scene(seed, size=(48, 64), duration=1.2, fps=24000 / 1001)
        rows += write_scene(scene, tmp_path, f"scene_{seed}")
    write_manifest(tmp_path / "manifest.csv", rows)
    data = VideoTextAudio(tmp_path / "manifest.csv", size=32, duration=1.0)
    assert len(data) == 2
    item = data[0]
    assert item["frames"].shape == (25, 3, 32, 32) and item["audio"].shape == (16000,)
    stem = make_scene(3, size=(48, 64), duration=1.2, fps=24000 / 1001).stems["0_" + rows[0]["kind"]]
    assert torch.allclose(item["audio"], torch.from_numpy(stem[:16000]))
    assert item["caption"] == rows[0]["caption"]


def test_real_loader_vggsound_csv_uses_video_audio_track(tmp_path):
    videos = tmp_path / "videos"
    scene = make_scene(9, size=64, duration=1.0)
    write_scene(scene, videos, "abcdefghijk_000030")
    (tmp_path / "vggsound.csv").write_text("abcdefghijk,30,ball bouncing,test\nzzz,10,dog barking,train\n")
    data = VideoTextAudio(tmp_path / "vggsound.csv", video_dir=videos, split="test", size=64, duration=1.0)
    item = data[0]
    assert item["caption"] == "ball bouncing"
    # AAC is lossy and delayed by its priming samples: compare loudness envelopes, not samples.
    mix = torch.from_numpy(scene.mix())
    env = lambda x: x.abs().reshape(-1, 400).mean(1)
    assert torch.corrcoef(torch.stack([env(item["audio"]), env(mix)]))[0, 1] > 0.9
    decoded = item["frames"]
    assert (decoded - frames_to_tensor(scene.frames)).abs().mean() < 0.05
