"""Cue sheet loading (defaults, YAML quirks) and matching rules (otio_foley/cues.py)."""
from __future__ import annotations

import json
import textwrap
from importlib import resources

import jsonschema
import opentimelineio as otio
import pytest

from edit_fixtures import RATE_IDS, RATES, build_edit, write_edit
from otio_foley.cues import load_cue_sheet, match_cues
from otio_foley.edit import read_edit, read_shots
from otio_foley.errors import UserError


def sheet(tmp_path, text: str):
    path = tmp_path / "cues.yaml"
    path.write_text(textwrap.dedent(text))
    return load_cue_sheet(path)


@pytest.fixture(params=RATES, ids=RATE_IDS)
def shots(request, tmp_path):
    path = write_edit(tmp_path, request.param)
    return read_shots(read_edit(path), path, media_root=[("/OLD", str(tmp_path / "new"))])


def names(matches) -> list[tuple[str, list[str]]]:
    return [(m.shot.name, [s.prompt for s in m.sources]) for m in matches]


def test_defaults_resolve_in_order(tmp_path):
    cues = sheet(tmp_path, """
        version: 1
        defaults: {steps: 30, seed: 7, negative_prompt: music, model: selva-tiny, scene: rain}
        clips:
          - clip: A
            sources:
              - prompt: "  dog barking "
              - {prompt: rain, steps: 10, seed: 3, cfg: 2, gain_db: -6, mode: offscreen, track: BG, variations: 2}
        """)
    first, second = cues.clips[0].sources
    assert (first.prompt, first.track, first.steps, first.seed, first.cfg, first.negative_prompt) == \
        ("dog barking", "FX dog barking", 30, 7, 4.5, "music")
    assert (first.mode, first.variations, first.gain_db, first.model) == ("onscreen", 1, 0.0, "selva-tiny")
    assert (second.steps, second.seed, second.cfg, second.gain_db, second.mode, second.track, second.variations) == \
        (10, 3, 2.0, -6.0, "offscreen", "BG", 2)
    assert cues.scene == "rain"
    assert second.where == f"{tmp_path / 'cues.yaml'}:8:9: clips[0].sources[1]"


def test_unquoted_timecodes_stay_text(tmp_path):
    cues = sheet(tmp_path, """
        version: 1
        clips:
          - range: 10:00:00:00-10:00:01:00
            sources: []
        """)
    assert cues.clips[0].value == "10:00:00:00-10:00:01:00"


def test_every_matcher(shots, tmp_path):
    cues = sheet(tmp_path, """
        version: 1
        clips:
          - clip: "[CD]"
            sources: [{prompt: one}]
          - index: 2
            sources: [{prompt: two}]
          - media: "b.mov"
            sources: [{prompt: three}]
          - marker: "door*"
            sources: [{prompt: four}]
          - range: 01:00:00:00-01:00:00:11
            sources: [{prompt: five}]
        """)
    got = names(match_cues(cues, shots))
    assert got == [("A", ["four", "five"]), ("O", ["two"]), ("B", ["three"]), ("C", ["one"]), ("D", ["one"])]


def test_range_is_end_exclusive_and_uses_start_timecode(shots, tmp_path):
    cues = sheet(tmp_path, """
        version: 1
        clips:
          - range: 01:00:00:00-01:00:00:10
            sources: [{prompt: x}]
        """)
    with pytest.raises(UserError, match="matches no clip"):
        match_cues(cues, shots)  # A starts at frame 10: the range ends just before it


def test_drop_frame_range_at_2997(tmp_path):
    fps = 30000 / 1001
    timeline = build_edit(tmp_path, fps)
    timeline.global_start_time = otio.opentime.from_timecode("01:00:00;00", fps)  # a drop-frame edit
    path = tmp_path / "df.otio"
    otio.adapters.write_to_file(timeline, str(path))
    shots = read_shots(read_edit(path), path, media_root=[("/OLD", str(tmp_path / "new"))])
    assert shots[2].record_start_tc == "01:00:01;28"
    cues = sheet(tmp_path, """
        version: 1
        clips:
          - range: 01:00:01;28-01:00:01;29
            sources: [{prompt: x}]
        """)
    # DF 01:00:01;28 is frame 58 after 01:00:00;00 (no frames dropped in the first minute): B's first frame;
    # the same frame written non-drop-frame is 00:59:58:10
    assert names(match_cues(cues, shots)) == [("B", ["x"])]
    ndf = sheet(tmp_path, """
        version: 1
        clips:
          - range: 00:59:58:10-00:59:58:11
            sources: [{prompt: x}]
        """)
    assert names(match_cues(ndf, shots)) == [("B", ["x"])]


def test_sources_accumulate_and_twins_are_refused(shots, tmp_path):
    cues = sheet(tmp_path, """
        version: 1
        clips:
          - media: "a.mov"
            sources: [{prompt: room tone, mode: offscreen}]
          - clip: A
            sources: [{prompt: dog}, {prompt: room tone, track: BG2, mode: offscreen}]
        """)
    got = dict(names(match_cues(cues, shots)))
    assert got["A"] == ["room tone", "dog", "room tone"]
    assert got["L"] == ["room tone"]
    twin = sheet(tmp_path, """
        version: 1
        clips:
          - clip: A
            sources: [{prompt: dog}]
          - index: 1
            sources: [{prompt: dog}]
        """)
    with pytest.raises(UserError) as err:
        match_cues(twin, shots)
    where = tmp_path / "cues.yaml"
    assert err.value.format_message() == (
        f"{where}:7:15: clips[1].sources[0]: clip 'A' (#1) already gets prompt 'dog' on track 'FX dog' "
        f"from {where}:5:15 (remove one, give it another track, or use variations)")


def test_offscreen_only_for_clips_without_media(shots, tmp_path):
    ok = sheet(tmp_path, """
        version: 1
        clips:
          - clip: "[MGX]"
            sources: [{prompt: hum, mode: offscreen}]
        """)
    assert [m.shot.name for m in match_cues(ok, shots)] == ["M", "G", "X"]
    bad = sheet(tmp_path, """
        version: 1
        clips:
          - clip: G
            sources: [{prompt: hum}]
        """)
    with pytest.raises(UserError, match=r"clip 'G' \(#7\) has no usable media \(generator clip"):
        match_cues(bad, shots)


def test_allow_unmatched(shots, tmp_path):
    cues = sheet(tmp_path, """
        version: 1
        clips:
          - clip: nothing-like-this
            sources: [{prompt: x}]
          - clip: A
            sources: []
        """)
    assert match_cues(cues, shots, allow_unmatched=True) == []


def test_schema_file_is_valid_json_schema():
    schema = json.loads(resources.files("otio_foley").joinpath("cue_schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
