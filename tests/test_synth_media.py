"""Writing scenes as media: exact frame rates (23.976 included), stems as WAVs, the manifest, the CLI."""
from __future__ import annotations

import csv
from fractions import Fraction

import av
import numpy as np
import soundfile as sf
from click.testing import CliRunner

from otio_foley.cli import main
from otio_foley.synth.media import frame_rate


def test_frame_rate_parsing():
    assert frame_rate("24000/1001") == Fraction(24000, 1001)
    assert frame_rate("23.976") == Fraction(24000, 1001) == frame_rate(24000 / 1001)
    assert frame_rate("29.97") == Fraction(30000, 1001)
    assert frame_rate(25) == 25 and frame_rate("12.5") == Fraction(25, 2)


def test_cli_synth_writes_mp4_stems_and_manifest(tmp_path):
    out = tmp_path / "synth"
    result = CliRunner().invoke(main, ["data", "synth", "-o", str(out), "-n", "2", "--seed", "7",
                                       "--resolution", "80x48", "--duration", "1.5", "--fps", "23.976",
                                       "--sources", "2"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert len(rows) == 4 and {r["seed"] for r in rows} == {"7", "8"}
    for row in rows:
        stem, sr = sf.read(out / row["audio"], dtype="float32")
        assert sr == 16000 and stem.shape == (24000,) and np.abs(stem).max() > 0.3
        assert row["colour"] in row["caption"] and row["split"] == "train"
    with av.open(str(out / rows[0]["video"])) as container:
        video = container.streams.video[0]
        assert video.average_rate == Fraction(24000, 1001)
        assert (video.codec_context.width, video.codec_context.height) == (80, 48)
        assert sum(1 for _ in container.decode(video=0)) == int(1.5 * 24000 / 1001)
        assert container.streams.audio[0].sample_rate == 16000
    assert not list(out.glob(".*partial*"))


def test_write_video_mpeg4_at_ntsc_rate(tmp_path):
    from otio_foley.synth.media import write_video
    from otio_foley.synth.scenes import make_scene

    scene = make_scene(2, size=32, duration=1.0, fps=30000 / 1001)
    write_video(tmp_path / "clip.mp4", scene.frames, frame_rate(scene.fps), codec="mpeg4")
    with av.open(str(tmp_path / "clip.mp4")) as container:
        assert container.streams.video[0].average_rate == Fraction(30000, 1001)
        assert container.streams.video[0].codec_context.name == "mpeg4" and not container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) == len(scene.frames) == 29


def test_cli_synth_bad_resolution_is_a_user_error(tmp_path):
    result = CliRunner().invoke(main, ["data", "synth", "-o", str(tmp_path), "--resolution", "65"])
    assert result.exit_code == 2 and "--resolution" in result.output and "Traceback" not in result.output
