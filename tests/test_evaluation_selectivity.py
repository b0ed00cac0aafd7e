"""Selectivity metrics on known inputs, the shipped classifier, and the benchmark with trivial models."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from otio_foley.evaluation.classifier import LABELS, ClassifierConfig, load_classifier, train_classifier
from otio_foley.evaluation.metrics import (envelope_correlation, frechet_distance, kernel_distance, leakage,
                                           onset_f1, onset_matches, onsets)
from otio_foley.evaluation.selectivity import (ModelResult, PairScore, Report, make_pairs, pair_scenes,
                                              paired_difference, per_class, run_benchmark)
from otio_foley.synth.mixing import side_by_side
from otio_foley.models.mel_codec import MelCodec
from otio_foley.models.tiny import TinyConfig
from otio_foley.synth.scenes import CLASSES, EVAL_SEED_BASE, make_scene

SR = 16000


def clicks(times, n=SR * 2, freq=3000.0):
    out = torch.zeros(n)
    t = torch.arange(800) / SR
    burst = torch.sin(2 * torch.pi * freq * t) * torch.exp(-t / 0.01)
    for time in times:
        start = int(time * SR)
        out[start:start + 800] += burst[: n - start]
    return out


def test_onsets_found_at_known_times():
    found = onsets(clicks([0.2, 0.5, 1.1, 1.6]))
    assert len(found) == 4 and np.abs(found - [0.2, 0.5, 1.1, 1.6]).max() <= 0.011
    assert len(onsets(torch.zeros(SR))) == 0


def test_onsets_ignore_griffin_lim_flutter():
    """The codec round trip of a steady whistle changes only its phase, so its onsets must be the clean stem's.
    A one-frame (10 ms) level reads the flutter Griffin-Lim leaves as onsets; the default 20 ms does not."""
    codec = MelCodec(TinyConfig().codec)
    scores = {1: [], 2: []}
    for seed in range(4):
        stem = torch.from_numpy(next(iter(make_scene(seed, size=64, duration=2.0, kinds=["kettle"]).stems.values())))
        trip = codec.decode(codec.encode(stem[None]))[0][:stem.numel()]
        for frames in scores:
            scores[frames].append(onset_f1(onsets(trip, window_frames=frames), onsets(stem, window_frames=frames)))
    assert np.mean(scores[2]) >= 0.9 and np.mean(scores[1]) <= 0.6, scores
    assert onset_f1(onsets(trip), onsets(stem)) == scores[2][-1]  # 2 frames is the default


def test_onset_f1_cases():
    ref = np.array([0.2, 0.5, 1.0])
    assert onset_f1(ref, ref) == 1.0
    assert onset_f1(ref + 0.07, ref) == 1.0 and onset_f1(ref + 0.09, ref) == 0.0
    assert onset_f1(np.array([0.2]), ref) == pytest.approx(0.5)
    assert onset_f1(np.zeros(0), np.zeros(0)) == 1.0 and onset_f1(np.zeros(0), ref) == 0.0
    assert onset_matches(np.array([0.10, 0.12, 0.5]), np.array([0.1, 0.5])) == 2  # one to one


def test_envelope_and_leakage_on_known_mixtures():
    target, distractor = clicks([0.2, 0.9, 1.5]), clicks([0.5, 1.2], freq=300.0)
    assert envelope_correlation(target, target) == pytest.approx(1.0, abs=1e-5)
    assert envelope_correlation(torch.zeros_like(target), target) == 0.0
    assert envelope_correlation(distractor, target) < 0.2
    assert leakage(target, target, distractor) == pytest.approx(0.0, abs=1e-6)
    assert leakage(0.3 * distractor, target, distractor) == pytest.approx(1.0, abs=1e-6)
    assert 0.3 < leakage(target + distractor, target, distractor) < 0.7
    assert leakage(torch.zeros_like(target), target, distractor) == 0.0


def test_set_distances():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-4)
    assert frechet_distance(x + 2.0, x) == pytest.approx(16.0, rel=1e-3)
    assert kernel_distance(y, x) < 1.0 < kernel_distance(y + 3.0, x)


def test_shipped_classifier_on_held_out_stems():
    classifier = load_classifier()
    kinds = [CLASSES[i % len(CLASSES)] for i in range(16)]
    stems = [next(iter(make_scene(EVAL_SEED_BASE + 7000 + i, kinds=[k], video=False).stems.values()))
             for i, k in enumerate(kinds)]
    probs = classifier.probabilities(torch.tensor(np.stack(stems)))
    assert [LABELS[i] for i in probs.argmax(-1)] == kinds
    assert LABELS[int(classifier.probabilities(torch.zeros(1, 8 * SR)).argmax())] == "silence"


def test_classifier_training_from_scratch_learns():
    small = train_classifier(ClassifierConfig(per_class=6, clip_seconds=2.0, steps=200))
    kinds = [CLASSES[i % len(CLASSES)] for i in range(16)]
    stems = [next(iter(make_scene(EVAL_SEED_BASE + 8000 + i, kinds=[k], duration=2.0, video=False).stems.values()))
             for i, k in enumerate(kinds)]
    predicted = [LABELS[i] for i in small.probabilities(torch.tensor(np.stack(stems))).argmax(-1)]
    assert np.mean([p == k for p, k in zip(predicted, kinds)]) >= 0.8


@dataclass
class LookupModel:
    """A FoleyModel that returns a stored stem per prompt seed: the oracle, the wrong side, or silence."""

    stems: dict[int, torch.Tensor]
    name: str = "lookup"
    checksum: str = "0"
    sample_rate: int = SR
    fps: float = 25.0
    frame_size: int = 32
    window_seconds: float = 8.0
    min_seconds: float = 0.64
    device: torch.device = torch.device("cpu")
    seen_frames: tuple = ()

    def generate(self, frames, prompts, *, duration, steps=25, cfg=4.5):
        assert frames.shape == (int(self.fps * duration), 3, self.frame_size, self.frame_size)
        assert -1.0 <= float(frames.min()) and float(frames.max()) <= 1.0
        n = round(duration * self.sample_rate)
        return torch.stack([self.stems.get(p.seed, torch.zeros(n)) for p in prompts])


def test_pair_scenes_rebuild_each_pair():
    """benchmarks/mix_cost.py re-lays a pair's two clips from its seed: they must be the pair's own."""
    for pair in make_pairs(2, size=32, duration=1.0):
        target, distractor, left = pair_scenes(pair.seed, pair.target_kind, pair.distractor_kind, size=32,
                                               duration=1.0)
        clips = [torch.from_numpy(s.frames).permute(0, 3, 1, 2) for s in (target, distractor)]
        assert left == pair.target_left
        assert torch.equal(side_by_side(*(clips if left else clips[::-1]), 0.5, 32), pair.frames)
        assert torch.equal(torch.from_numpy(next(iter(distractor.stems.values()))), pair.distractor)


def test_benchmark_ranks_oracle_above_wrong_side_and_silence(tmp_path):
    pairs = make_pairs(2, size=32, duration=2.0)
    assert [p.subset for p in pairs] == ["inter", "inter", "intra", "intra"]
    assert all(p.target_kind == p.distractor_kind for p in pairs if p.subset == "intra")
    assert all(p.caption != p.negative for p in pairs)
    oracle = LookupModel({p.seed % 2**31: p.target for p in pairs})
    wrong = LookupModel({p.seed % 2**31: p.distractor for p in pairs})
    report = run_benchmark({"oracle": oracle, "wrong side": wrong, "silent": LookupModel({})},
                           pairs_per_subset=2, duration=2.0, steps=1, cfg=1.0)
    rows = {r.label: r.subsets for r in report.results}
    for subset in ("inter", "intra"):
        assert rows["oracle"][subset]["accuracy"] == 1.0 and rows["oracle"][subset]["leakage"] < 1e-6
        assert rows["oracle"][subset]["onset_f1"] == 1.0
        assert rows["oracle"][subset]["envelope_corr"] == pytest.approx(1.0, abs=1e-5)
        assert rows["wrong side"][subset]["leakage"] > 0.99
        assert rows["silent"][subset]["accuracy"] == 0.0 and rows["silent"][subset]["envelope_corr"] == 0.0
    assert rows["wrong side"]["inter"]["accuracy"] == 0.0
    assert rows["oracle"] == rows["target stem"]
    json_path, md_path = report.write(tmp_path)
    data = json.loads(json_path.read_text())
    assert {r["label"] for r in data["results"]} == {"target stem", "distractor stem", "oracle", "wrong side",
                                                      "silent"}
    table = md_path.read_text()
    assert "| oracle | 1.000 | 0.000 |" in table and "inter leakage↓" in table


def _scored(label, leakages, right):
    """A model row with one inter pair per leakage; `right` says which pairs the classifier got right."""
    return ModelResult(label, "model", {"inter": {}}, [
        PairScore(f"inter_{i:04d}", "inter", "ball", "ball" if ok else "drum", 0.5, leak, 0.5, 0.5)
        for i, (leak, ok) in enumerate(zip(leakages, right))])


def test_paired_difference_on_known_scores():
    base = _scored("a", [0.1, 0.2, 0.3, 0.4], [True, True, False, False])
    other = _scored("b", [0.2, 0.4, 0.3, 0.5], [True, False, False, True])
    mean, half, n = paired_difference(base, other, "inter", "leakage")
    diffs = np.array([0.1, 0.2, 0.0, 0.1])
    assert n == 4 and mean == pytest.approx(0.1) and half == pytest.approx(1.96 * diffs.std(ddof=1) / 2)
    assert paired_difference(base, other, "inter", "accuracy")[:2] == pytest.approx((0.0, 1.96 * np.sqrt(2 / 3) / 2))
    assert paired_difference(base, base, "inter", "onset_f1") == (0.0, 0.0, 4)
    assert paired_difference(base, other, "intra", "leakage") is None  # no shared pairs
    # dict rows (the real VGG-MonoAudio benchmark) lack the classifier fields and may lack leakage
    rows = ModelResult("c", "model", {"inter": {}}, [{"name": "inter_0000", "subset": "inter", "onset_f1": 1.0},
                                                     {"name": "inter_0001", "subset": "inter", "onset_f1": 0.0}])
    assert paired_difference(base, rows, "inter", "onset_f1") == pytest.approx((0.0, 0.98, 2))  # ±0.5 each
    assert paired_difference(base, rows, "inter", "leakage") is None
    assert paired_difference(base, rows, "inter", "accuracy") is None


def test_report_lists_paired_differences_against_the_first_model():
    reference = ModelResult("target stem", "reference", {"inter": {}}, [])
    report = Report({"description": "d", "pairs_per_subset": 4, "duration": 2.0, "steps": 1, "cfg": 1.0,
                     "negative": True}, [reference, _scored("a", [0.1, 0.2, 0.3, 0.4], [True] * 4),
                                         _scored("b", [0.2, 0.4, 0.3, 0.5], [True] * 4)])
    paired = report.paired()
    assert list(paired) == ["b"] and paired["b"]["inter"]["leakage"][0] == pytest.approx(0.1)
    assert "| b | +0.000 ± 0.000 | +0.100 ± " in report.markdown()
    assert json.loads(json.dumps(report.to_json()))["paired"]["b"]["inter"]["accuracy"] == [0.0, 0.0, 4]


def test_per_class_breakdown_shows_where_misses_concentrate():
    """Per target class: pair counts, metric means, and what the classifier heard instead."""
    rows = [PairScore(f"inter_{i:04d}", "inter", kind, heard, 0.5, leak, f1, 0.5)
            for i, (kind, heard, leak, f1) in enumerate([("ball", "ball", 0.1, 1.0), ("ball", "ball", 0.3, 0.5),
                                                          ("bell", "drum", 0.2, 0.0), ("bell", "drum", 0.2, 0.5),
                                                          ("bell", "bell", 0.2, 1.0), ("bell", "rain", 0.2, 0.5)])]
    model = ModelResult("m", "model", {"inter": {}}, rows)
    table = per_class(model, "inter")
    assert list(table) == ["ball", "bell"]  # in CLASSES order
    assert table["ball"] == {"pairs": 2, "heard_instead": {}, "accuracy": 1.0, "leakage": pytest.approx(0.2),
                             "onset_f1": 0.75, "envelope_corr": 0.5}
    assert table["bell"]["accuracy"] == 0.25 and table["bell"]["heard_instead"] == {"drum": 2, "rain": 1}
    assert per_class(model, "intra") == {}
    report = Report({"description": "d", "pairs_per_subset": 6, "duration": 2.0, "steps": 1, "cfg": 1.0,
                     "negative": True}, [ModelResult("target stem", "reference", {"inter": {}}, []), model])
    assert "| m | 1.00 / 0.750 | 0.25 (drum 2, rain 1) / 0.500 |" in report.markdown()
    assert json.loads(json.dumps(report.to_json()))["per_class"]["m"]["inter"]["bell"]["heard_instead"]["drum"] == 2
    alone = ModelResult("s", "model", {"single": {}}, [replace(rows[0], subset="single")])  # benchmarks/single_clips
    assert "Per target class, single:" in Report(report.protocol, [alone]).markdown()
    # dict rows of the real benchmark may lack the classifier's fields: no accuracy, no "heard instead"
    real = ModelResult("r", "model", {"inter": {}}, [{"name": "inter_0000", "subset": "inter", "target_kind": "dog",
                                                     "onset_f1": 0.5}])
    assert per_class(real, "inter") == {"dog": {"pairs": 1, "heard_instead": {}, "onset_f1": 0.5}}


def test_benchmark_drives_a_real_selva_pipeline():
    """End to end through SelVAPipeline.generate (random tiny weights from the generator tests, test-only)."""
    make_pipeline = pytest.importorskip("test_generator").make_pipeline
    report = run_benchmark({"tiny": make_pipeline()}, pairs_per_subset=2, duration=2.0, steps=2, references=False)
    (result,) = report.results
    assert len(result.pairs) == 4 and set(result.subsets) == {"inter", "intra"}
    assert all(np.isfinite(v) for subset in result.subsets.values() for v in subset.values())
