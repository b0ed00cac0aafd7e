"""Reading edits and the shot time maths (otio_foley/edit.py) at 23.976, 24, 25 and 29.97 fps."""
from __future__ import annotations

import opentimelineio as otio
import pytest

from edit_fixtures import RATE_IDS, RATES, RT, TR, build_edit, clip, gap, make_media, write_edit
from otio_foley.edit import (edl_record_start_to_global, intersect, range_in_root, read_edit, read_shots,
                             remap_media_path, time_scalar)
from otio_foley.errors import UserError

otio.plugins.ActiveManifest()  # load plugins once, outside any assertion on logged output


@pytest.fixture(params=RATES, ids=RATE_IDS)
def fps(request) -> float:
    return request.param


@pytest.fixture
def shots(tmp_path, fps):
    path = write_edit(tmp_path, fps)
    timeline = read_edit(path)
    return {s.name: s for s in read_shots(timeline, path, media_root=[("/OLD", str(tmp_path / "new"))])}


def frames(rng) -> tuple[int, int]:
    return round(rng.start_time.value), round(rng.duration.value)


def test_order_and_what_is_left_out(shots, fps):
    assert list(shots) == ["A", "O", "B", "C", "D", "M", "G", "L", "S", "X"]
    assert [s.index for s in shots.values()] == list(range(1, 11))
    assert shots["O"].track_name == "V2" and shots["A"].track_name == "V1"
    assert all(s.rate == fps for s in shots.values())


def test_record_ranges_and_timecodes(shots, fps):
    assert frames(shots["A"].record_range) == (10, 48)
    assert shots["A"].record_start_tc == "01:00:00:10"
    assert frames(shots["B"].record_range) == (58, 48)
    assert frames(shots["O"].record_range) == (20, 24)
    long_frames = round(20 * fps)
    assert frames(shots["L"].record_range) == (174, long_frames)
    assert frames(shots["S"].record_range) == (174 + long_frames, 3)
    nominal = round(fps)  # non-drop-frame timecode counts nominal frames per second
    assert shots["B"].record_start_tc == f"01:00:{58 // nominal:02d}:{58 % nominal:02d}"


def test_nested_stack_is_clamped_by_its_trim(shots):
    c = shots["C"]
    assert frames(c.record_range) == (106, 20)
    assert frames(c.source_range) == (305, 20)


def test_transition_widens_visible_range_and_media(shots):
    a, b = shots["A"], shots["B"]
    assert frames(a.visible_range) == (10, 54)  # 6 frames of A continue under the dissolve
    assert frames(b.visible_range) == (52, 54)
    assert frames(a.source_range) == (100, 54)


def test_speed_and_freeze_follow_the_otio_spec(shots):
    b, d = shots["B"], shots["D"]
    assert b.time_scalar == 2.0
    assert frames(b.source_range) == (200 - 12, 108)  # 54 visible frames consume 108 media frames
    assert d.time_scalar == 0.0
    assert frames(d.source_range) == (400, 1)  # the held frame
    assert "speed 2x" in b.warnings[0] and "freeze frame" in d.warnings[0]
    assert shots["A"].warnings == ()


def test_media_problems(shots, tmp_path):
    assert shots["M"].media_path is None
    assert shots["M"].media_problem == "offline: the clip has no media reference"
    assert shots["G"].media_problem == "generator clip (SMPTEBars), no media"
    missing = tmp_path / "media" / "absent.mov"
    assert shots["X"].media_problem == f"media file not found: {missing} (fix the path or pass --media-root OLD=NEW)"
    assert frames(shots["M"].source_range) == (0, 12)  # known from the edit even without media


def test_relative_paths_and_media_root(shots, tmp_path):
    assert shots["A"].media_path == (tmp_path / "media" / "a.mov").resolve()
    assert shots["B"].media_path == (tmp_path / "new" / "b.mov").resolve()
    assert shots["A"].markers == ("door slam", "hard")


def test_without_media_root_remote_paths_are_missing(tmp_path):
    path = write_edit(tmp_path, 24)
    shots = {s.name: s for s in read_shots(read_edit(path), path)}
    assert shots["B"].media_path is None and "/OLD/b.mov" in shots["B"].media_problem


def test_remap_media_path():
    roots = [("/Volumes/Edit", "/mnt/edit"), ("D:\\media", "/mnt/d")]
    assert remap_media_path("/Volumes/Edit/a/b.mov", roots) == "/mnt/edit/a/b.mov"
    assert remap_media_path("/Volumes/Editorial/b.mov", roots) == "/Volumes/Editorial/b.mov"  # whole folders only
    assert remap_media_path("D:\\media\\x\\c.mov", roots) == "/mnt/d/x/c.mov"


def test_nested_stack_helpers(fps):
    track = otio.schema.Track()
    track.append(gap(4, fps))
    stack = otio.schema.Stack(source_range=TR(RT(2, fps), RT(6, fps)))
    inner = otio.schema.Track()
    item = clip("c", 10, 10, fps)
    inner.append(item)
    stack.append(inner)
    track.append(stack)
    outer = otio.schema.Stack()
    outer.append(track)
    assert range_in_root(item.trimmed_range(), item, outer) == TR(RT(4, fps), RT(6, fps))
    # OTIO core alone does not clamp: the unclamped mapping is longer
    assert item.transformed_time_range(item.trimmed_range(), outer).duration == RT(10, fps)
    assert intersect(TR(RT(0, fps), RT(5, fps)), TR(RT(5, fps), RT(5, fps))) is None


def test_time_scalar_multiplies_and_freezes():
    item = otio.schema.Clip()
    assert time_scalar(item) == 1.0
    item.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    item.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    assert time_scalar(item) == 1.0
    item.effects.append(otio.schema.FreezeFrame())
    assert time_scalar(item) == 0.0


def test_no_global_start_time_counts_from_zero(tmp_path):
    tl = otio.schema.Timeline()
    track = otio.schema.Track()
    track.append(gap(30, 25))
    track.append(clip("a", 0, 10, 25, str(make_media(tmp_path / "a.mov"))))
    tl.tracks.append(track)
    (shot,) = read_shots(tl, tmp_path / "x.otio")
    assert shot.record_start_tc == "00:00:01:05" and shot.rate == 25


def one_clip_edit(tmp_path, suffix: str, **write_args):
    """A 25 fps edit with one clip at 01:00:00:05 written as `suffix`; returns its only shot and the media."""
    fps = 25.0
    media = make_media(tmp_path / "m" / "a.mov")
    tl = otio.schema.Timeline(name="seq", global_start_time=RT(90000, fps))
    track = otio.schema.Track(name="V1")
    track.append(gap(5, fps))
    item = clip("shot1", 10, 30, fps, str(media))
    item.media_reference.available_range = TR(RT(0, fps), RT(100, fps))
    track.append(item)
    tl.tracks.append(track)
    path = tmp_path / f"edit{suffix}"
    otio.adapters.write_to_file(tl, str(path), **write_args)
    (shot,) = read_shots(read_edit(path), path)
    return shot, media


def test_fcp7_xml_reads_like_the_otio(tmp_path):
    shot, media = one_clip_edit(tmp_path, ".xml")
    assert (shot.name, frames(shot.record_range), shot.record_start_tc) == ("shot1", (5, 30), "01:00:00:05")
    assert shot.media_path == media.resolve() and frames(shot.source_range) == (10, 30)


def test_otioz_bundle_media_is_found(tmp_path):
    fps = 24.0
    media = make_media(tmp_path / "src" / "a.mov")
    tl = otio.schema.Timeline(name="z")
    track = otio.schema.Track()
    item = clip("a", 0, 12, fps, str(media))
    item.media_reference.available_range = TR(RT(0, fps), RT(12, fps))
    track.append(item)
    tl.tracks.append(track)
    path = tmp_path / "edit.otioz"
    otio.adapters.write_to_file(tl, str(path))
    media.unlink()  # only the bundled copy remains
    (shot,) = read_shots(read_edit(path), path)
    assert shot.media_path is not None and shot.media_path.read_bytes() == b"m" * 4096


def test_collection_with_several_timelines_is_refused(tmp_path):
    collection = otio.schema.SerializableCollection()
    for name in ("one", "two"):
        tl = otio.schema.Timeline(name=name)
        tl.tracks.append(otio.schema.Track())
        collection.append(tl)
    path = tmp_path / "both.otio"
    otio.adapters.write_to_file(collection, str(path))
    with pytest.raises(UserError) as err:
        read_edit(path)
    assert err.value.format_message() == (f"{path}: the file holds 2 timelines ('one', 'two') "
                                          "(export just the sequence to render)")


def test_input_file_is_not_modified(tmp_path):
    path = write_edit(tmp_path, 24)
    before = path.read_bytes()
    read_shots(read_edit(path), path, media_root=[("/OLD", str(tmp_path / "new"))])
    assert path.read_bytes() == before


def test_build_edit_is_deterministic(tmp_path):
    a = otio.adapters.write_to_string(build_edit(tmp_path, 25))
    b = otio.adapters.write_to_string(build_edit(tmp_path, 25))
    assert a == b


def test_aaf_reads_like_the_otio(tmp_path):
    pytest.importorskip("otio_aaf_adapter")
    shot, media = one_clip_edit(tmp_path, ".aaf", use_empty_mob_ids=True)
    assert (shot.name, frames(shot.record_range), shot.record_start_tc) == ("shot1", (5, 30), "01:00:00:05")
    assert shot.media_path == media.resolve() and frames(shot.source_range) == (10, 30)


def test_approximate_rate_timecodes_do_not_lose_a_frame(tmp_path):
    tl = otio.schema.Timeline(global_start_time=RT(86400, 23.976))  # a tool that wrote 23.976 literally
    track = otio.schema.Track()
    track.append(gap(1000, 23.976))
    track.append(clip("a", 0, 10, 23.976))
    tl.tracks.append(track)
    (shot,) = read_shots(tl, tmp_path / "x.otio")
    assert shot.record_start_tc == "01:00:41:16"  # frame 86400 + 1000 counted at 24 per second


def test_edl_record_offsets_become_the_start_timecode():
    """The EDL reader's shape (negative track trims, no global start) is normalised before reading shots."""
    fps = 24.0
    tl = otio.schema.Timeline()
    for name, record_in, source_in in (("V", 86400, 100), ("V2", 86424, 500)):
        track = otio.schema.Track(name=name, source_range=TR(RT(-record_in, fps), RT(48, fps)))
        track.append(clip(f"{name}-shot", source_in, 48, fps))
        tl.tracks.append(track)
    assert read_shots(tl, "cut.edl") == []  # strictly, the adapter's tracks show nothing
    edl_record_start_to_global(tl)
    shots = read_shots(tl, "cut.edl")
    assert [(s.name, s.record_start_tc, frames(s.record_range), frames(s.source_range)) for s in shots] == \
        [("V-shot", "01:00:00:00", (0, 48), (100, 48)), ("V2-shot", "01:00:01:00", (24, 48), (500, 48))]


def test_edl_through_the_reader(tmp_path):
    pytest.importorskip("otio_cmx3600_adapter")
    path = tmp_path / "cut.edl"
    path.write_text("TITLE: cut\nFCM: NON-DROP FRAME\n\n"
                    "001  A001     V     C        00:00:04:04 00:00:06:04 01:00:00:00 01:00:02:00\n"
                    "* FROM CLIP NAME: shot one\n"
                    "002  A002     V     C        00:00:10:00 00:00:11:00 01:00:02:00 01:00:03:00\n"
                    "* FROM CLIP NAME: shot two\n")
    shots = read_shots(read_edit(path, rate=25), path)
    assert [(s.name, s.record_start_tc, frames(s.source_range)) for s in shots] == \
        [("shot one", "01:00:00:00", (104, 50)), ("shot two", "01:00:02:00", (250, 25))]
    assert shots[0].media_problem == "offline: the clip has no media reference"
