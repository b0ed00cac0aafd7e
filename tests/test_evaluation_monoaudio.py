"""The real-data (VGG-MonoAudio layout) mode on a tiny folder built from synthetic scenes, and the eval CLI."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import torch
from click.testing import CliRunner

from otio_foley.cli import main
from otio_foley.evaluation.monoaudio import SKIPPED, run_monoaudio
from otio_foley.synth.media import write_video, write_wav
from otio_foley.synth.mixing import side_by_side
from otio_foley.synth.scenes import make_scene


def build_monoaudio(root, count=2):
    """inter_class/ with `count` side-by-side videos, target and paired WAVs, metadata.csv."""
    folder = root / "inter_class"
    (folder / "mixed").mkdir(parents=True)
    (folder / "target_audio").mkdir()
    rows, stems = [], {}
    for i in range(count):
        a, b = (make_scene(100 + 2 * i + k, size=64, duration=2.0, kinds=[kind]) for k, kind in
                enumerate(["ball", "kettle"]))
        frames = side_by_side(*(torch.from_numpy(x.frames).permute(0, 3, 1, 2) for x in (a, b)), 0.5, 64)
        wide = torch.nn.functional.interpolate(frames.float(), size=(64, 112)).round().byte().permute(0, 2, 3, 1)
        name = f"vid{i}_000010_par{i}_000020_left"
        write_video(folder / "mixed" / f"{name}.mp4", wide.numpy(), 25)
        (a_stem,), (b_stem,) = a.stems.values(), b.stems.values()
        write_wav(folder / "target_audio" / f"{name}.wav", a_stem, 16000)
        write_wav(folder / "target_audio" / f"par{i}_000020.wav", b_stem, 16000)
        caption = next(iter(a.captions.values()))
        stems[caption] = torch.from_numpy(a_stem)
        rows.append({"file_name": f"{name}.mp4", "label": caption, "target_file": f"vid{i}_000010",
                     "paired_file": f"par{i}_000020", "target_position": "left"})
    with open(folder / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return stems


@dataclass
class CaptionLookup:
    stems: dict
    name: str = "lookup"
    checksum: str = "0"
    sample_rate: int = 16000
    fps: float = 25.0
    frame_size: int = 32
    window_seconds: float = 8.0
    min_seconds: float = 0.64
    device: torch.device = torch.device("cpu")

    def generate(self, frames, prompts, *, duration, steps=25, cfg=4.5):
        assert frames.shape == (int(25 * duration), 3, 32, 32)
        return torch.stack([self.stems[p.text] for p in prompts])


def test_monoaudio_mode_scores_oracle_and_names_skipped(tmp_path):
    stems = build_monoaudio(tmp_path)
    report = run_monoaudio({"oracle": CaptionLookup(stems)}, tmp_path, duration=2.0, steps=1)
    inter = report.results[0].subsets["inter"]
    assert inter["pairs"] == 2 and inter["onset_f1"] == 1.0 and inter["leakage"] < 1e-6
    assert abs(inter["envelope_corr"] - 1.0) < 1e-5 and abs(inter["fd_mel"]) < 1e-3
    markdown = report.markdown()
    assert all(name in markdown for name in SKIPPED) and "intra" not in markdown.split("\n")[0]


def test_eval_cli_reference_rows_and_user_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "-o", str(tmp_path / "out"), "--pairs", "2", "--duration", "2"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "selectivity.json").read_text())
    assert [r["label"] for r in data["results"]] == ["target stem", "distractor stem"]
    assert (tmp_path / "out" / "selectivity.md").read_text().startswith("| system |")
    bad = runner.invoke(main, ["eval", "-o", str(tmp_path / "x"), "--monoaudio", str(tmp_path)])
    assert bad.exit_code == 2 and "--model" in bad.output
    bad = runner.invoke(main, ["eval", "-o", str(tmp_path / "x"), "-m", "=oops"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
