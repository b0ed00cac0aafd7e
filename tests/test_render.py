"""The render orchestrator end to end with a stand-in model: stems, timelines, manifest, cache reuse,
partial re-render, failures, kills, exit codes, review sheet."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from otio_foley.cli import main
from otio_foley.jobs import ModelInfo
from otio_foley.render import RenderOptions, join_windows, render
from standin_model import StandInModel, prompt_pitch
from test_media import read_index, write_video

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
TESTS = Path(__file__).resolve().parent
CUES = """\
version: 1
clips:
  - clip: sh010
    sources:
      - prompt: dog barking
      - prompt: footsteps on gravel
        seed: 7
  - clip: sh020
    sources:
      - prompt: bell ringing
  - clip: sh030
    sources:
      - prompt: wind in trees
        mode: offscreen
"""


def make_edit(folder: Path, rate: float = 25.0) -> Path:
    """Three clips: sh010 (2.4 s: two 2 s windows), sh020 (0.6 s), sh030 (missing media)."""
    fraction = Fraction(rate).limit_denominator(1001)
    media = [write_video(folder / f"m{i}.mp4", fraction, 90, 64, 48) for i in (1, 2)]
    timeline = otio.schema.Timeline(name="test", global_start_time=RT(3600 * rate, rate))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for name, path, start, length in [("sh010", media[0], 10, 60), ("sh020", media[1], 5, 15), ("sh030", None, 0, 10)]:
        ref = (otio.schema.ExternalReference(target_url=str(path), available_range=TR(RT(0, rate), RT(90, rate)))
               if path else otio.schema.MissingReference())
        track.append(otio.schema.Clip(name=name, media_reference=ref, source_range=TR(RT(start, rate), RT(length, rate))))
    path = folder / "edit.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Path, Path, Path]:
    edit = make_edit(tmp_path)
    cues = tmp_path / "cues.yaml"
    cues.write_text(CUES)
    return edit, cues, tmp_path / "out"


def run(project, model, **kw):
    edit, cues, out = project
    return render(edit, cues, model, RenderOptions(output_dir=out, cache_dir=out / "cache", **kw),
                  log=lambda line: None)


def test_join_windows_equal_power() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(8000).astype(np.float32), rng.standard_normal(8000).astype(np.float32)
    out = join_windows([(0, a), (6000, b)], 13000)
    assert len(out) == 13000
    np.testing.assert_array_equal(out[:6000], a[:6000])  # before the overlap: the first window
    np.testing.assert_array_equal(out[8000:], b[2000:7000])  # after it: the second, trimmed to total
    fade = out[6000:8000]  # uncorrelated noise keeps its power through an equal-power crossfade
    assert abs(np.mean(fade ** 2) - 1.0) < 0.1
    ones = join_windows([(0, np.ones(100, np.float32)), (50, 2 * np.ones(100, np.float32))], 150)
    assert ones[50] == pytest.approx(1.0, abs=0.05) and ones[99] == pytest.approx(2.0, abs=0.05)


def test_render_end_to_end_and_rerun(project) -> None:
    edit, cues, out = project
    model = StandInModel()
    report = run(project, model)
    assert report.exit_code == 0
    by_prompt = {r.plan.source.prompt: r for r in report.results}
    assert set(by_prompt) == {"dog barking", "footsteps on gravel", "bell ringing", "wind in trees"}
    for prompt, frames in [("dog barking", 60), ("bell ringing", 15), ("wind in trees", 10)]:
        audio, rate = sf.read(by_prompt[prompt].path)
        assert rate == 48000 and len(audio) == frames * 48000 // 25
        spectrum = np.abs(np.fft.rfft(audio))
        assert abs(np.argmax(spectrum) * rate / len(audio) - prompt_pitch(prompt)) < 5  # its own source
    # sources of one clip share one generate call per window; sh010 (2.4 s) needs two windows
    assert sorted(model.calls) == sorted([(2, 2.0, 50), (2, 2.0, 50), (1, 0.6, 15), (1, 0.4, -1)])
    bwf = by_prompt["bell ringing"].path.read_bytes()  # bext TimeReference: 01:00:00:00 + 60 frames
    at = bwf.index(b"bext") + 8 + 256 + 32 + 32 + 10 + 8
    assert int.from_bytes(bwf[at:at + 8], "little") == round((3600 + 60 / 25) * 48000)
    assert all(Path(p).exists() for p in report.timelines.values()) and set(report.timelines) == {
        "otio-resolve", "otio-premiere"}
    resolve = otio.adapters.read_from_file(str(report.timelines["otio-resolve"]))
    assert len(resolve.audio_tracks()) == 4
    manifest = json.loads((out / "manifest.json").read_text())
    stem = next(s for s in manifest["stems"] if s["prompt"] == "footsteps on gravel")
    assert stem["seed"] == 7 and stem["record_tc"] == "01:00:00:00" and stem["model"] == "standin"
    assert stem["status"] == "rendered" and stem["timings"]["generate"] > 0
    page = (out / "review.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3 and "src=\"http" not in page
    assert (out / "review.png").stat().st_size > 1000

    again = StandInModel()
    second = run(project, again)
    assert again.calls == [] and {r.status for r in second.results} == {"cached"}

    cues.write_text(CUES.replace("bell ringing", "church bell"))
    third_model = StandInModel()
    third = run(project, third_model)
    assert third_model.calls == [(1, 0.6, 15)]
    assert {r.plan.source.prompt: r.status for r in third.results}["church bell"] == "rendered"
    assert sum(r.status == "rendered" for r in third.results) == 1


def test_failed_job_is_reported_and_the_rest_kept(project) -> None:
    _, _, out = project
    report = run(project, StandInModel(fail_on="bell"))
    assert report.exit_code == 1
    failed = report.failed
    assert [r.plan.source.prompt for r in failed] == ["bell ringing"] and "refuses" in failed[0].error
    assert len(list((out / "stems").glob("*.wav"))) == 3
    entry = next(s for s in json.loads((out / "manifest.json").read_text())["stems"] if s["status"] == "failed")
    assert entry["path"] is None and "refuses" in entry["error"]


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from standin_model import StandInModel
from otio_foley.render import RenderOptions, render
render({edit!r}, {cues!r}, StandInModel(stall_on="wind"), RenderOptions(output_dir={out!r}, cache_dir={out!r} + "/cache"))
"""


def test_sigkill_mid_render_leaves_no_partial_stem_and_resumes(project) -> None:
    edit, cues, out = project
    script = KILL_SCRIPT.format(tests=str(TESTS), edit=str(edit), cues=str(cues), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "stems").glob("*.wav"))) < 3:  # sh010 and sh020 done, stalled on sh030
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "render did not reach the stalled shot"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    for wav in (out / "stems").glob("*.wav"):
        assert len(sf.read(wav)[0]) > 0  # every stem present is complete
    assert not (out / "manifest.json").exists()
    model = StandInModel()
    report = run(project, model)
    assert report.exit_code == 0 and model.calls == [(1, 0.4, -1)]  # only the killed shot is generated


def cli(project, *args, model=None, monkeypatch=None):
    edit, cues, out = project
    monkeypatch.setattr("otio_foley.cli.render._load_model", lambda name, device: model or StandInModel())
    return CliRunner().invoke(main, ["render", str(edit), str(cues), "-o", str(out), "--cache-dir", str(out / "cache"),
                                     *args])


def test_cli_exit_codes(project, monkeypatch, tmp_path: Path) -> None:
    usage = CliRunner().invoke(main, ["render", "--help"])
    assert usage.exit_code == 0 and "otio-foley render examples/edit_25fps.otio" in usage.output
    ok = cli(project, "--target", "fcp7xml", "--json", monkeypatch=monkeypatch)
    assert ok.exit_code == 0, ok.output
    assert set(json.loads(ok.stdout)["timelines"]) == {"fcp7xml"}
    failed = cli(project, "--force", model=StandInModel(fail_on="dog"), monkeypatch=monkeypatch)
    assert failed.exit_code == 1 and "1 of 4 stems failed" in failed.stderr
    bad = cli(project, "--target", "premiere-2030", monkeypatch=monkeypatch)
    assert bad.exit_code == 2 and "premiere-2030" in bad.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    edit, cues, _ = project
    unwritable = cli((edit, cues, blocker / "out"), monkeypatch=monkeypatch)
    assert unwritable.exit_code == 2 and "output folder" in unwritable.stderr and "Traceback" not in unwritable.output
    missing = cli((edit, project[1].with_name("nope.yaml"), project[2]), monkeypatch=monkeypatch)
    assert missing.exit_code == 2 and "nope.yaml" in missing.stderr
    cues.write_text("version: 1\ndefaults:\n  model: selva-s16k\n" + CUES.split("\n", 1)[1])
    other_model = cli(project, monkeypatch=monkeypatch)  # the stand-in is not the model the sheet asks for
    assert other_model.exit_code == 2 and "asks for model 'selva-s16k'" in other_model.stderr


@pytest.mark.parametrize("edit_name,rate,frames", [("edit_25fps.otio", 25.0, 75), ("edit_23976.otio", 24000 / 1001, 72)])
def test_example_edits_render(tmp_path: Path, edit_name: str, rate: float, frames: int) -> None:
    examples = TESTS.parent / "examples"
    report = render(examples / edit_name, examples / "cues.yaml", StandInModel(),
                    RenderOptions(output_dir=tmp_path / "out", cache_dir=tmp_path / "cache", review=False),
                    log=lambda line: None)
    assert report.exit_code == 0 and len(report.results) == 6
    first = next(r for r in report.results if r.plan.shot.name == "sh010")
    samples = len(sf.read(first.path)[0])
    assert samples == int(np.ceil(frames * 48000 / rate)) + int(np.ceil(frames * 48000 / rate)) % 2


class _FrameRecorder(StandInModel):
    """The stand-in model, keeping the frames it was given (large enough to read the painted index)."""

    frame_size = 64

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[torch.Tensor] = []

    def generate(self, frames, prompts, **kw):
        if frames is not None:
            self.frames.append(frames)
        return super().generate(frames, prompts, **kw)


def test_media_starting_at_source_timecode_decodes_the_right_frames(tmp_path: Path) -> None:
    """Media whose available_range starts at 01:00:00:00: the clip's in point is media time, the file
    starts at frame 0, so source 01:00:00:10 is file frame 10."""
    rate = 25.0
    media = write_video(tmp_path / "tc.mp4", Fraction(25), 60, 64, 48)
    origin = RT.from_timecode("01:00:00:00", rate)
    timeline = otio.schema.Timeline(name="tc", global_start_time=origin)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    ref = otio.schema.ExternalReference(target_url=str(media), available_range=TR(origin, RT(60, rate)))
    track.append(otio.schema.Clip(name="sh010", media_reference=ref,
                                  source_range=TR(origin + RT(10, rate), RT(20, rate))))
    edit = tmp_path / "edit.otio"
    otio.adapters.write_to_file(timeline, str(edit))
    cues = tmp_path / "cues.yaml"
    cues.write_text("version: 1\nclips:\n  - clip: sh010\n    sources:\n      - prompt: dog barking\n")
    model = _FrameRecorder()
    report = render(edit, cues, model, RenderOptions(output_dir=tmp_path / "out", cache_dir=tmp_path / "cache"),
                    log=lambda line: None)
    assert report.exit_code == 0
    (frames,) = model.frames
    assert [read_index(f.numpy()) for f in frames] == list(range(10, 30))


STANDIN_INFO = ModelInfo(name="standin", checksum="standin0", fps=25.0, sample_rate=16000, window_seconds=2.0,
                         min_seconds=0.4, frame_size=32)


def _plan_hits(edit: Path, cues: Path, *args: str) -> list[int]:
    result = CliRunner().invoke(main, ["plan", str(edit), str(cues), "--json", *args])
    assert result.exit_code == 0, result.output
    return [s["cached_windows"] for s in json.loads(result.stdout)["stems"]]


def test_cache_defaults_to_outdir_and_plan_reads_it(project, monkeypatch, tmp_path: Path) -> None:
    """No --cache-dir: the cache is OUTDIR/.cache, so a re-run into OUTDIR does no model work and
    `plan -o OUTDIR` counts its hits; another OUTDIR starts empty unless it names the same --cache-dir."""
    edit, cues, out = project
    monkeypatch.delenv("OTIO_FOLEY_CACHE", raising=False)
    monkeypatch.setattr("otio_foley.cli.plan.model_info", lambda name, models_dir: STANDIN_INFO)
    first = StandInModel()
    assert render(edit, cues, first, RenderOptions(output_dir=out), log=lambda line: None).exit_code == 0
    assert first.calls and any((out / ".cache").rglob("*.npy"))
    again = StandInModel()
    assert render(edit, cues, again, RenderOptions(output_dir=out), log=lambda line: None).exit_code == 0
    assert again.calls == []
    assert _plan_hits(edit, cues, "-o", str(out)) == [2, 2, 1, 1]
    assert _plan_hits(edit, cues, "-o", str(tmp_path / "elsewhere")) == [0, 0, 0, 0]

    shared = tmp_path / "shared-cache"
    for outdir, generates in [(tmp_path / "a", True), (tmp_path / "b", False)]:
        model = StandInModel()
        render(edit, cues, model, RenderOptions(output_dir=outdir, cache_dir=shared), log=lambda line: None)
        assert bool(model.calls) == generates and not (outdir / ".cache").exists()
    assert _plan_hits(edit, cues, "-o", str(tmp_path / "c"), "--cache-dir", str(shared)) == [2, 2, 1, 1]

    monkeypatch.setenv("OTIO_FOLEY_CACHE", str(shared))  # the environment overrides OUTDIR/.cache
    model = StandInModel()
    render(edit, cues, model, RenderOptions(output_dir=tmp_path / "d"), log=lambda line: None)
    assert model.calls == []


class _LoudModel(StandInModel):
    """The stand-in at 10x its level: every stem peaks above full scale."""

    def generate(self, frames, prompts, **kw):
        return super().generate(frames, prompts, **kw) * 10.0


def test_clipped_stem_warns_once_per_stem(project) -> None:
    edit, cues, out = project
    lines: list[str] = []
    report = render(edit, cues, _LoudModel(), RenderOptions(output_dir=out, cache_dir=out / "cache"), log=lines.append)
    warnings = [line for line in lines if line.startswith("warning:") and "clipped" in line]
    assert report.exit_code == 0 and len(warnings) == len(report.results) == 4
    assert all("dBFS" in w and "gain_db" in w for w in warnings)
    quiet: list[str] = []
    render(edit, cues, StandInModel(), RenderOptions(output_dir=out.parent / "out2"), log=quiet.append)
    assert not any("clipped" in line for line in quiet)
