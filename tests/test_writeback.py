"""Write-back: every target re-read puts every stem at its exact record frame, with handles, spill,
muted takes, per-target URLs and metadata, replace-not-duplicate, and an untouched input edit."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import aaf2
import opentimelineio as otio
import pytest

from foley_edit import HEAD, LAYOUT, RATES, TAIL, make_edit, make_stems
from otio_foley.errors import UserError
from otio_foley.writeback import NAMESPACE, TARGETS, is_foley_track, media_path, write_timelines

ALL = list(TARGETS)
STOCK_SCHEMAS = {"Timeline.1", "Stack.1", "Track.1", "Clip.2", "Gap.1", "ExternalReference.1",
                 "Marker.2", "LinearTimeWarp.1", "FreezeFrame.1", "RationalTime.1", "TimeRange.1"}
FOLEY_TRACKS = ["FX dog", "FX dog (2)", "FX dog take 2", "FX rain"]


def plain(value):
    """OTIO metadata containers as plain dicts/lists, for comparisons."""
    if hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    return [plain(v) for v in value]


@pytest.fixture(scope="module", params=RATES, ids=["23.976", "24", "25", "29.97"])
def job(request, tmp_path_factory):
    rate = request.param
    tmp_path = tmp_path_factory.mktemp("job")
    out = tmp_path / "My Project #1"  # a space and '#' in the folder: URL policies must cope
    edit = make_edit(rate)
    before = otio.adapters.write_to_string(edit, "otio_json")
    stems = make_stems(rate, out / "stems")
    files = write_timelines(edit, stems, out, ALL, edit_path=tmp_path / "edit.otio")
    assert otio.adapters.write_to_string(edit, "otio_json") == before  # input never modified
    assert {p.name for p in out.iterdir()} == {f.name for f in files.values()} | {"stems"}  # no temp left
    return rate, edit, stems, files


def foley_clips(tl) -> dict[tuple, otio.schema.Clip]:
    """{(label, shot, take): clip} found by provenance metadata."""
    return {(c.metadata[NAMESPACE]["label"], c.metadata[NAMESPACE]["shot_index"],
             c.metadata[NAMESPACE]["take"]): c for c in tl.find_clips() if NAMESPACE in c.metadata}


def check_placement(rate, clips_by_key):
    """Each stem at its record frames, its head handle skipped, the whole WAV as its media."""
    for label, shot, start, length, take in LAYOUT:
        key = (label, shot, take)
        clip = clips_by_key[key]
        rng = clip.range_in_parent()
        assert rng.start_time.value_rescaled_to(rate) == start, key
        assert rng.duration.value_rescaled_to(rate) == length, key
        assert clip.source_range.start_time.value_rescaled_to(rate) == HEAD  # head handle skipped
        avail = clip.media_reference.available_range
        assert avail.start_time.value == 0
        assert avail.duration.value_rescaled_to(rate) == HEAD + length + TAIL  # whole file


def test_resolve_otio(job):
    rate, edit, stems, files = job
    text = files["otio-resolve"].read_text()
    schemas = {m for m in _schemas(json.loads(text))}
    assert schemas <= STOCK_SCHEMAS, schemas - STOCK_SCHEMAS
    tl = otio.adapters.read_from_string(text, "otio_json")
    names = [t.name for t in tl.tracks]
    assert names == ["V1", "V2", "A1 dialogue"] + FOLEY_TRACKS
    for original, copy in zip(edit.tracks, tl.tracks):  # the edit is kept as it was
        assert otio.adapters.write_to_string(original, "otio_json") == \
            otio.adapters.write_to_string(copy, "otio_json")
    enabled = {t.name: t.enabled for t in tl.tracks}
    assert not enabled["FX dog take 2"] and enabled["FX dog"] and enabled["FX dog (2)"]
    clips = foley_clips(tl)
    check_placement(rate, clips)
    assert clips["FX dog", 4, 1].parent().name == "FX dog (2)"  # overlap spilled
    for clip, stem in ((clips[s.label, s.shot_index, s.take], s) for s in stems):
        url = clip.media_reference.target_url
        assert url == stem.path.resolve().as_posix() and Path(url).is_file()  # plain absolute path
        meta = clip.metadata[NAMESPACE]
        for key in ("prompt", "negative_prompt", "seed", "steps", "cfg", "model", "model_sha256",
                    "cue_hash", "source_clip", "source_range"):
            assert plain(meta[key]) == stem.provenance[key], key
        assert plain(clip.metadata["Resolve_OTIO"]["Channels"]) == [{"Source Channel ID": 0, "Source Track ID": 0}]
        (marker,) = clip.markers
        assert marker.name == stem.provenance["prompt"] and stem.provenance["prompt"] in marker.comment
    assert plain(tl.tracks[-1].metadata["Resolve_OTIO"]) == {"Audio Type": "Mono"}


def test_premiere_otio(job):
    rate, _, stems, files = job
    tl = otio.adapters.read_from_file(str(files["otio-premiere"]))
    clips = foley_clips(tl)
    check_placement(rate, clips)
    link_ids = [c.metadata["PremierePro_OTIO"]["LinkID"] for c in clips.values()]
    assert len(set(link_ids)) == len(link_ids) and "1" not in link_ids  # "1" is the edit's own
    for stem in stems:
        url = clips[stem.label, stem.shot_index, stem.take].media_reference.target_url
        assert url.startswith("file:///") and "%20" in url and "%23" in url and " " not in url
        assert Path(otio.url_utils.filepath_from_url(url)) == stem.path.resolve()
    effects = {c.name: [type(e).__name__ for e in c.effects] for c in tl.find_clips()}
    assert effects["sh001"] == [] and effects["sh003"] == ["FreezeFrame"]  # no no-op time warp
    assert all(not c.effects for c in clips.values())
    track = next(t for t in tl.tracks if t.name == "FX rain")
    assert plain(track.metadata["PremierePro_OTIO"]["AudioChannels"]) == {"ChannelType": "Mono", "NumberOfChannels": 1}


def test_fcp7_xml(job):
    rate, _, stems, files = job
    text = files["fcp7xml"].read_text()
    assert "<channelcount>1</channelcount>" in text and "<depth>24</depth>" in text
    assert text.count("<enabled>FALSE</enabled>") == 1  # the take-2 track is muted
    tl = otio.adapters.read_from_file(str(files["fcp7xml"]))
    by_url = {media_path(c.media_reference.target_url): c for c in tl.find_clips()
              if c.media_reference.target_url.startswith("file://localhost/")}
    assert len(by_url) == len(stems)
    clips = {(s.label, s.shot_index, s.take): by_url[str(s.path.resolve())] for s in stems}
    check_placement(rate, clips)


def test_aaf_opens_with_pyaaf2(job):
    rate, edit, stems, files = job
    with aaf2.open(str(files["aaf"]), "r") as f:
        (comp,) = list(f.content.compositionmobs())
        tc, *sound = list(comp.slots)
        assert tc.segment.start == round(edit.global_start_time.value)
        assert [s.name for s in sound] == FOLEY_TRACKS
        placed = {}
        for slot in sound:
            position = 0
            for component in slot.segment.components:
                if isinstance(component, aaf2.components.SourceClip):
                    assert component.start == HEAD
                    placed[component.mob.name] = (position, component.length)
                position += component.length
        for label, shot, start, length, take in LAYOUT:
            name = f"sh{shot:03d} {label}" + (f" take {take}" if take > 1 else "")
            assert placed[name] == (start, length)
        pcm = [m.descriptor for m in f.content.sourcemobs() if isinstance(m.descriptor, aaf2.essence.PCMDescriptor)]
        assert len(pcm) == len(stems) and all(d["QuantizationBits"].value == 24 for d in pcm)
    # a second, independent reader agrees on names and places
    tl = otio.adapters.read_from_file(str(files["aaf"]))
    assert [t.name for t in tl.audio_tracks()] == FOLEY_TRACKS
    starts = sorted(round(c.range_in_parent().start_time.value) for c in tl.find_clips())
    assert starts == sorted(start for _, _, start, _, _ in LAYOUT)


def test_otioz_bundles_the_stems(job):
    rate, _, stems, files = job
    with zipfile.ZipFile(files["otioz"]) as archive:
        names = set(archive.namelist())
        assert {"version.txt", "content.otio"} <= names
        for stem in stems:
            assert archive.read(f"media/{stem.path.name}") == stem.path.read_bytes()
    tl = otio.adapters.read_from_file(str(files["otioz"]))
    clips = foley_clips(tl)
    check_placement(rate, clips)
    assert {c.media_reference.target_url for c in clips.values()} == {f"media/{s.path.name}" for s in stems}


@pytest.mark.parametrize("source", ["otio-resolve", "otio-premiere", "fcp7xml", "stripped"])
def test_render_again_replaces_tracks(job, tmp_path, source):
    """Rendering onto an output edit replaces our tracks (found by metadata, or by stems/ paths)."""
    rate, _, stems, files = job
    if source == "stripped":
        again = otio.adapters.read_from_file(str(files["otio-resolve"]))
        for item in [*again.tracks, *again.find_clips()]:
            item.metadata.pop(NAMESPACE, None)
    else:
        again = otio.adapters.read_from_file(str(files[source]))
    new = write_timelines(again, stems[:2], tmp_path / "second", ["otio-resolve"],
                          edit_path=files[source if source != "stripped" else "otio-resolve"])
    assert new["otio-resolve"].name == "edit.foley.resolve.otio"  # not edit.foley.fcp7.foley…
    tl = otio.adapters.read_from_file(str(new["otio-resolve"]))
    audio = [t for t in tl.tracks if t.kind == otio.schema.TrackKind.Audio]
    assert [is_foley_track(t) for t in audio] == [False, True]
    assert audio[0].find_clips()[0].name == "dialogue"
    assert len(foley_clips(tl)) == 2


def test_unknown_target_is_refused(tmp_path):
    with pytest.raises(UserError, match="unknown output target.*edl.*otio-resolve"):
        write_timelines(make_edit(24.0), [], tmp_path, ["edl"], edit_path="e.otio")
    assert list(tmp_path.iterdir()) == []


def test_failed_target_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="no otio-foley stems"):
        write_timelines(make_edit(25.0), [], tmp_path, ["otio-resolve", "aaf"], edit_path="e.otio")
    assert [p.name for p in tmp_path.iterdir()] == ["e.foley.resolve.otio"]


def test_registered_as_otio_adapters(job):
    _, _, _, files = job
    tl = otio.adapters.read_from_file(str(files["otio-resolve"]))
    text = otio.adapters.write_to_string(tl, adapter_name="otio_foley_premiere")
    assert "PremierePro_OTIO" in text and "file:///" in text


def _schemas(node):
    if isinstance(node, dict):
        if "OTIO_SCHEMA" in node:
            yield node["OTIO_SCHEMA"]
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)
