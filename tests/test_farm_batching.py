"""`--batch-size`: clip windows of equal length stacked into one sampler call give the unbatched audio."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from click.testing import CliRunner

from otio_foley.cli import main
from otio_foley.render import RenderOptions, render
from standin_model import StandInModel
from test_generator import PROMPTS, frames, make_pipeline

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class BatchingStandIn(StandInModel):
    """The stand-in with a `generate_batch` that records how many clips and prompts each call had."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[int, int]] = []

    def generate_batch(self, items, *, duration, steps=25, cfg=4.5):
        self.batches.append((len(items), sum(len(prompts) for _, prompts in items)))
        return [self.generate(clip, prompts, duration=duration, steps=steps, cfg=cfg) for clip, prompts in items]


def test_pipeline_generate_batch_equals_separate_calls() -> None:
    pipe = make_pipeline()
    clips = [(frames(2.0, seed=1), PROMPTS), (frames(2.0, seed=2), PROMPTS[:1]), (None, PROMPTS[2:])]
    batched = pipe.generate_batch(clips, duration=2.0, steps=3)
    assert [tuple(a.shape) for a in batched] == [(3, 32000), (1, 32000), (1, 32000)]
    for (clip, prompts), together in zip(clips, batched):
        torch.testing.assert_close(together, pipe.generate(clip, prompts, duration=2.0, steps=3), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(batched[0][0], batched[1][0])  # each clip keeps its own pictures


def _render(tmp_path: Path, name: str, model, batch_size: int, **kw):
    options = RenderOptions(output_dir=tmp_path / name, cache_dir=tmp_path / f"cache-{name}", review=False,
                            batch_size=batch_size, **kw)
    report = render(EXAMPLES / "edit_25fps.otio", EXAMPLES / "cues.yaml", model, options, log=lambda line: None)
    assert report.exit_code == 0
    return {p.name: sf.read(p, dtype="float32")[0] for p in sorted((tmp_path / name / "stems").glob("*.wav"))}


def test_batched_render_equals_unbatched(tmp_path: Path) -> None:
    single, stacked = BatchingStandIn(), BatchingStandIn()
    one = _render(tmp_path, "one", single, 1)
    many = _render(tmp_path, "many", stacked, 4)
    # sh010 and sh020 (3 s) have two 2 s windows, sh030 (2 s) one; every clip window has 2 prompts
    assert single.batches == [] and len(single.calls) == 5
    assert stacked.batches == [(2, 4), (2, 4), (1, 2)]  # up to 4 prompts per sampler call
    assert {k: v.tobytes() for k, v in one.items()} == {k: v.tobytes() for k, v in many.items()}


def test_batched_render_with_the_selva_pipeline(tmp_path: Path) -> None:
    pipe = make_pipeline()
    one = _render(tmp_path, "one", pipe, 1, steps=2)
    many = _render(tmp_path, "many", pipe, 6, steps=2)
    assert one.keys() == many.keys() and len(one) == 6
    for name in one:  # 24-bit stems: equal up to fp batching effects and the last bit
        np.testing.assert_allclose(many[name], one[name], atol=2e-4)


def test_cli_batch_size(tmp_path: Path, monkeypatch) -> None:
    model = BatchingStandIn()
    monkeypatch.setattr("otio_foley.cli.render._load_model", lambda name, device: model)
    result = CliRunner().invoke(main, ["render", str(EXAMPLES / "edit_25fps.otio"), str(EXAMPLES / "cues.yaml"),
                                       "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                                       "--batch-size", "6"])
    assert result.exit_code == 0, result.output
    assert model.batches == [(3, 6), (2, 4)]
