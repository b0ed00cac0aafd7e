"""`otio-foley cues init/validate` and `otio-foley plan` through the real CLI entry point.

Bad input must give exactly one `otio-foley: error: ...` line naming the file, the place and the fix,
exit code 2 and no traceback.
"""
from __future__ import annotations

import json

import opentimelineio as otio
import pytest
from click.testing import CliRunner

from edit_fixtures import clip, make_media, write_edit
from otio_foley.jobs import SECONDS_PER_SECOND
from otio_foley.cli import main

otio.plugins.ActiveManifest()  # load plugins once, so plugin log lines never mix into captured output

GOOD_CUES = """\
version: 1
clips:
  - clip: A
    sources:
      - prompt: dog barking
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    write_edit(tmp_path, 25.0)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def error_line(result) -> str:
    """The single error line; everything before it may only be warnings."""
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert all(line.startswith("otio-foley: warning: ") for line in lines[:-1]), lines
    assert lines[-1].startswith("otio-foley: error: ")
    return lines[-1].removeprefix("otio-foley: error: ")


# (cue sheet text, message) for `otio-foley cues validate cues.yaml` (no edit needed)
SHEET_ERRORS = [
    ("version: 1\nclips:\n  - clip: A\n   sources: []\n",
     "cues.yaml:4:4: broken YAML: expected <block end>, but found '<block mapping start>' "
     "(check indentation, colons and quotes)"),
    ("version: 1\nclip:\n  - clip: A\n",
     "cues.yaml:2:1: top level: unknown key 'clip' (did you mean 'clips'?)"),
    ("version: 1\nclips:\n  - clip: A\n    sources:\n      - negative_prompt: dog\n",
     "cues.yaml:5:9: clips[0].sources[0]: 'prompt' is required"),
    ("version: 1\nclips:\n  - clip: A\n    sources:\n      - promt: dog\n",
     "cues.yaml:5:9: clips[0].sources[0]: unknown key 'promt' (did you mean 'prompt'?)"),
    ("version: 1\nclips:\n  - clip: A\n    sources:\n      - prompt: dog\n        negativ_prompt: x\n",
     "cues.yaml:6:9: clips[0].sources[0]: unknown key 'negativ_prompt' (did you mean 'negative_prompt'?)"),
    ("version: 1\nclips:\n  - clip: A\n",
     "cues.yaml:3:5: clips[0]: 'sources' is required (add a list of sources, or [] for none)"),
    ("version: 1\nclips:\n  - sources: []\n",
     "cues.yaml:3:5: clips[0]: no matcher (add exactly one of: clip, index, media, marker, range)"),
    ("version: 1\nclips:\n  - clip: A\n    index: 1\n    sources: []\n",
     "cues.yaml:3:5: clips[0]: several matchers (clip, index) (use exactly one per entry; write several entries instead)"),
    ("version: 1\ndefaults:\n  steps: many\nclips: []\n",
     "cues.yaml:3:10: defaults.steps: must be a whole number, got 'many'"),
    ("version: 1\nclips:\n  clip: A\n",
     "cues.yaml:3:3: clips: must be a list, got dict"),
    ("version: 2\nclips: []\n",
     "cues.yaml:1:10: version: must be 1, got 2 (this otio-foley reads cue sheet version 1)"),
    ("clips: []\n",
     "cues.yaml:1:1: top level: 'version' is required"),
    ("version: 1\nclips:\n  - clip: A\n    sources: [{prompt: x, mode: inside}]\n",
     "cues.yaml:4:33: clips[0].sources[0].mode: must be one of onscreen, offscreen, got 'inside'"),
    ("version: 1\nclips:\n  - clip: A\n    sources: [{prompt: x, variations: 0}]\n",
     "cues.yaml:4:39: clips[0].sources[0].variations: must be >= 1, got 0"),
    ("version: 1\nclips:\n  - clip: A\n    sources: [{prompt: '  '}]\n",
     "cues.yaml:4:24: clips[0].sources[0].prompt: must not be empty"),
    ("version: 1\nclips:\n  - clip: A\n    clip: B\n    sources: []\n",
     "cues.yaml:4:5: clips[0].clip: duplicate key 'clip' (keep one)"),
    ("version: 1\nclips:\n  - range: 01:00:00-01:00:01\n    sources: []\n",
     "cues.yaml:3:12: clips[0].range: '01:00:00-01:00:01' is not START-END record timecodes "
     "(e.g. range: 01:00:10:00-01:00:12:00)"),
    ("version: 1\nclips:\n  - clip: A\n    sources: [{prompt: x, cfg: true}]\n",
     "cues.yaml:4:32: clips[0].sources[0].cfg: must be a number, got True"),
    ("version: 1\nclips:\n  - index: 0\n    sources: []\n",
     "cues.yaml:3:12: clips[0].index: must be >= 1, got 0"),
    ("", "cues.yaml: the cue sheet is empty (start from `otio-foley cues init EDIT`)"),
    ("version: !!python/name:os.system 1\nclips: []\n",
     "cues.yaml:1:10: broken YAML: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/name:os.system' (check indentation, colons and quotes)"),
]


@pytest.mark.parametrize("text,message", SHEET_ERRORS, ids=[m.split(": ", 1)[1][:40] for _, m in SHEET_ERRORS])
def test_cue_sheet_errors(workdir, text, message):
    (workdir / "cues.yaml").write_text(text)
    assert error_line(run("cues", "validate", "cues.yaml")) == message


# (cue sheet text or None for GOOD_CUES, extra args, message) for `otio-foley plan edit.otio cues.yaml ...`
PLAN_ERRORS = [
    ("version: 1\nclips:\n  - clip: 'Z*'\n    sources: [{prompt: x}]\n", [],
     "cues.yaml:3:11: clips[0]: clip 'Z*' matches no clip in edit.otio "
     "(check it against `otio-foley cues init EDIT`, or pass --allow-unmatched)"),
    ("version: 1\nclips:\n  - index: 99\n    sources: [{prompt: x}]\n", [],
     "cues.yaml:3:12: clips[0]: index 99 matches no clip in edit.otio "
     "(check it against `otio-foley cues init EDIT`, or pass --allow-unmatched)"),
    ("version: 1\nclips:\n  - clip: M\n    sources: [{prompt: hum}]\n", [],
     "cues.yaml:4:15: clips[0].sources[0]: clip 'M' (#6) has no usable media "
     "(offline: the clip has no media reference) (set mode: offscreen for a text-only sound, or fix the media)"),
    ("version: 1\nclips:\n  - range: 01:00:00:30-01:00:01:00\n    sources: [{prompt: x}]\n", [],
     "cues.yaml:3:12: clips[0]: timecode '01:00:00:30' does not exist at 25 fps (minutes/seconds 0-59, frames 0-24)"),
    ("version: 1\nclips:\n  - range: 01:00:02:00-01:00:01:00\n    sources: [{prompt: x}]\n", [],
     "cues.yaml:3:12: clips[0]: range '01:00:02:00-01:00:01:00' ends before it starts (write START-END)"),
    ("version: 1\nclips:\n  - range: 01:00:00;10-01:00:01;00\n    sources: [{prompt: x}]\n", [],
     "cues.yaml:3:12: clips[0]: drop-frame timecode '01:00:00;10' at 25 fps (';' is for 29.97/59.94; use ':')"),
    (None, ["--media-root", "/OLD"],
     "--media-root '/OLD' is not OLD=NEW (e.g. --media-root /Volumes/Edit=/mnt/edit)"),
    (None, ["--media-root", "/OLD=/no/such/folder"],
     "--media-root /OLD=/no/such/folder: folder '/no/such/folder' does not exist (check the NEW part)"),
    (None, ["--only", "nope"],
     "--only 'nope' matches no clip (use a clip name, glob or 1-based index)"),
]


@pytest.mark.parametrize("text,args,message", PLAN_ERRORS, ids=[m[:40] for *_, m in PLAN_ERRORS])
def test_plan_errors(workdir, text, args, message):
    (workdir / "cues.yaml").write_text(text or GOOD_CUES)
    assert error_line(run("plan", "edit.otio", "cues.yaml", *args)) == message


def test_file_errors(workdir):
    (workdir / "cues.yaml").write_text(GOOD_CUES)
    assert error_line(run("plan", "nope.otio", "cues.yaml")) == "nope.otio: edit file not found (check the path)"
    assert error_line(run("plan", "edit.otio", "nope.yaml")) == \
        "nope.yaml: cue sheet not found (check the path, or create one with `otio-foley cues init EDIT`)"
    (workdir / "broken.otio").write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ')
    assert error_line(run("plan", "broken.otio", "cues.yaml")).startswith(
        "broken.otio: cannot read edit: ")
    assert error_line(run("plan", "broken.otio", "cues.yaml")).endswith(
        " (re-export it from your editor; is the file complete?)")
    (workdir / "cut.edl").write_text("TITLE: cut\n")
    assert error_line(run("plan", "cut.edl", "cues.yaml")) == \
        "cut.edl: an EDL has no frame rate (pass --rate, e.g. --rate 24 or --rate 23.976)"
    (workdir / "cut.foo").write_text("x")
    assert error_line(run("plan", "cut.foo", "cues.yaml")) == \
        "cut.foo: no reader for '.foo' files (export .otio, FCP7 XML, AAF or EDL from your editor)"
    (workdir / "latin1.yaml").write_bytes("version: 1\n# caf\xe9\n".encode("latin-1"))
    assert error_line(run("cues", "validate", "latin1.yaml")) == \
        "latin1.yaml: not UTF-8 text (byte 16) (save the cue sheet as UTF-8)"
    audio_only = otio.schema.Timeline()
    audio_only.tracks.append(otio.schema.Track(kind=otio.schema.TrackKind.Audio))
    otio.adapters.write_to_file(audio_only, str(workdir / "audio.otio"))
    assert error_line(run("cues", "init", "audio.otio")) == \
        "audio.otio: the edit has no video track (export the picture edit, not an audio-only timeline)"
    no_length = otio.schema.Timeline()
    no_length.tracks.append(otio.schema.Track())
    no_length.tracks[0].append(otio.schema.Clip(name="sh9"))
    otio.adapters.write_to_file(no_length, str(workdir / "nolength.otio"))
    assert error_line(run("cues", "init", "nolength.otio")) == \
        "nolength.otio: clip 'sh9' has no length: no source range and no media range (re-export the edit from your editor)"


def test_twin_sources_error(workdir):
    (workdir / "cues.yaml").write_text("version: 1\nclips:\n  - clip: A\n    sources: [{prompt: x}]\n"
                                       "  - clip: A\n    sources: [{prompt: x}]\n")
    assert error_line(run("plan", "edit.otio", "cues.yaml")) == (
        "cues.yaml:6:15: clips[1].sources[0]: clip 'A' (#1) already gets prompt 'x' on track 'FX x' from "
        "cues.yaml:4:15 (remove one, give it another track, or use variations)")


def test_init_scaffold_validates_and_plans(workdir):
    result = run("cues", "init", "edit.otio", "--media-root", f"/OLD={workdir / 'new'}")
    assert result.exit_code == 0
    text = result.stdout
    assert '  - clip: "A"\n    sources: []' in text
    assert "  # 1. 01:00:00:10  1.92 s  V1  a.mov" in text
    assert "NO MEDIA: offline: the clip has no media reference" in text
    (workdir / "cues.yaml").write_text(text.replace("    sources: []", "    sources: [{prompt: x, mode: offscreen}]", 1))
    assert run("cues", "validate", "cues.yaml", "edit.otio").stdout == \
        "cues.yaml: ok with edit.otio (1 of 10 clips get sound, 1 stems)\n"
    assert run("cues", "init", "edit.otio", "-o", "scaffold.yaml").exit_code == 0
    assert (workdir / "scaffold.yaml").read_text() == run("cues", "init", "edit.otio").stdout
    assert error_line(run("cues", "init", "edit.otio", "-o", "scaffold.yaml")) == \
        "scaffold.yaml: already exists (pass --force to overwrite, or choose another -o)"


def test_plan_table_and_json(workdir):
    (workdir / "cues.yaml").write_text(GOOD_CUES + "  - clip: L\n    sources: [{prompt: wind, mode: offscreen}]\n")
    table = run("plan", "edit.otio", "cues.yaml", "--model", "selva-s16k")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0] == "edit.otio: 10 clips; model selva-s16k (checksum unknown: cache hits not checked)"
    assert lines[2].split() == ["1", "A", "01:00:00:10", "2.16", "1", "1", "?", "32", "onscreen",
                                "dog", "barking", "[FX", "dog", "barking]"]
    assert lines[-1].startswith("total: 2 stems, 4 windows, 22.16 s of audio, estimated time ")
    data = json.loads(run("plan", "edit.otio", "cues.yaml", "--json", "--handles", "2", "--seed", "7").stdout)
    first = data["stems"][0]
    assert (first["clip"], first["seed"], first["head_frames"], first["tail_frames"]) == ("A", 7, 2, 8)
    assert data["model"] == "selva-tiny"
    generated = sum(w["duration"] for w in first["windows"])  # nothing cached: every window is generated
    assert first["estimated_seconds"] == pytest.approx(generated * SECONDS_PER_SECOND["selva-tiny"], abs=0.1)
    # selva-tiny's facts come from its weights file: 2 s windows overlapping by 0.5 s
    assert [len(s["windows"]) for s in data["stems"]] == [2, 14]
    (workdir / "cues.yaml").write_text("version: 1\ndefaults: {model: selva-s16k}\n" + GOOD_CUES.split("\n", 1)[1])
    assert json.loads(run("plan", "edit.otio", "cues.yaml", "--json").stdout)["model"] == "selva-s16k"


def test_scaffold_escapes_globs_and_numbers_duplicates(tmp_path, monkeypatch):
    media = make_media(tmp_path / "a.mov")
    tl = otio.schema.Timeline(global_start_time=otio.opentime.RationalTime(0, 24))
    track = otio.schema.Track()
    for name in ("shot [v2]*", "café: \"take\"", "dup", "dup"):
        track.append(clip(name, 0, 12, 24, str(media)))
    tl.tracks.append(track)
    otio.adapters.write_to_file(tl, str(tmp_path / "odd.otio"))
    monkeypatch.chdir(tmp_path)
    text = run("cues", "init", "odd.otio").stdout
    assert '  - clip: "shot [[]v2][*]"' in text and '  - clip: "café: \\"take\\""' in text
    assert "  - index: 3\n" in text and "  - index: 4\n" in text
    (tmp_path / "cues.yaml").write_text(text.replace("sources: []", "sources: [{prompt: x}]"))
    result = run("cues", "validate", "cues.yaml", "odd.otio")
    assert result.stdout == "cues.yaml: ok with odd.otio (4 of 4 clips get sound, 4 stems)\n"
