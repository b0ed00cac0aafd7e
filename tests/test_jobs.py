"""Planning (otio_foley/jobs.py) and the audio cache (otio_foley/cache.py)."""
from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edit_fixtures import RATE_IDS, RATES, write_edit
from otio_foley.cache import Cache
from otio_foley.cues import load_cue_sheet, match_cues
from otio_foley.edit import read_edit, read_shots
from otio_foley.errors import UserError
from otio_foley.jobs import (OVERLAP_SECONDS, WINDOW_SEED_STRIDE, ModelInfo, overlap_seconds, plan,
                             stem_file_name, window_layout)

MODEL = ModelInfo(name="test", checksum="abc123", fps=25, sample_rate=16000, window_seconds=8.0,
                  min_seconds=0.64, seconds_per_second=2.0)
CUES = """
version: 1
defaults: {seed: 100}
clips:
  - clip: "[ABLSC]"
    sources:
      - {prompt: "Dog barking!", variations: 2}
      - {prompt: rain, mode: offscreen}
  - clip: D
    sources: [{prompt: ice}]
"""


def make_plan(folder, fps, *, write=True, **kwargs):
    path = write_edit(folder, fps) if write else folder / "edit.otio"
    shots = read_shots(read_edit(path), path, media_root=[("/OLD", str(folder / "new"))])
    (folder / "cues.yaml").write_text(CUES)
    matches = match_cues(load_cue_sheet(folder / "cues.yaml"), shots)
    return shots, plan(shots, matches, MODEL, **kwargs)


def by(plans, clip, prompt="Dog barking!", take=1):
    return next(p for p in plans if (p.shot.name, p.source.prompt, p.take) == (clip, prompt, take))


@pytest.mark.parametrize("duration", [0.1, 0.64, 3.0, 8.0, 8.01, 15.0, 20.0, 61.3])
def test_window_layout_covers_and_overlaps(duration):
    windows = window_layout(duration, 8.0, 0.64)
    assert windows[0][0] == 0.0
    assert windows[-1][0] + windows[-1][2] == pytest.approx(duration)  # last kept sample = the end
    for (o1, d1, _), (o2, _, _) in zip(windows, windows[1:]):
        assert o1 + d1 - o2 >= OVERLAP_SECONDS - 1e-6  # neighbours overlap by >= 1 s for the crossfade
    if duration <= 8.0:
        assert windows == [(0.0, max(duration, 0.64), duration)]
    else:
        assert all(d == 8.0 for _, d, _ in windows)
        assert len(windows) == len(window_layout(duration, 8.0, 0.64))


@pytest.mark.parametrize("window", [0.64, 1.0, 2.0, 8.0])
@pytest.mark.parametrize("factor", [0.5, 1.0, 1.01, 1.9, 3.0, 20.0])
def test_window_layout_short_windows(window, factor):
    """Windows at or below OVERLAP_SECONDS used to divide by zero; their overlap is a quarter window."""
    duration = window * factor
    overlap = overlap_seconds(window)
    assert overlap == (OVERLAP_SECONDS if window >= 4 * OVERLAP_SECONDS else window / 4)
    windows = window_layout(duration, window, 0.64)
    assert windows[0][0] == 0.0
    assert windows[-1][0] + windows[-1][2] == pytest.approx(duration)
    for (o1, d1, _), (o2, _, _) in zip(windows, windows[1:]):
        assert o2 > o1 and o1 + d1 - o2 >= overlap - 1e-6
    if duration > window:
        assert all(d == k == window for _, d, k in windows)
        assert len(windows) == math.ceil((duration - overlap) / (window - overlap))


def test_window_layout_rejects_overlap_not_below_window():
    with pytest.raises(ValueError):
        window_layout(3.0, 1.0, 0.64, overlap=1.0)


@pytest.mark.parametrize("fps", RATES, ids=RATE_IDS)
def test_plan_stems_takes_seeds_and_windows(tmp_path, fps):
    shots, plans = make_plan(tmp_path, fps, handles=3)
    assert [(p.shot.name, p.source.prompt, p.take) for p in plans[:3]] == \
        [("A", "Dog barking!", 1), ("A", "Dog barking!", 2), ("A", "rain", 1)]
    a1, a2 = by(plans, "A"), by(plans, "A", take=2)
    assert (a1.seed, a2.seed) == (100, 101)
    # A: 48 frames, 6 more under the dissolve, 3 handle frames each side
    assert (a1.head_frames, a1.tail_frames) == (3, 9)
    assert a1.duration == pytest.approx(60 / fps)
    assert a1.windows[0].duration == pytest.approx(60 / fps) and a1.windows[0].keep == pytest.approx(60 / fps)
    # media under the whole file: A's visible media starts at 100; 3 handle frames before
    assert a1.source_range.start_time.to_seconds() == pytest.approx(97 / fps)
    assert a1.source_range.duration.to_seconds() == pytest.approx(60 / fps)
    long = by(plans, "L")
    assert long.duration == pytest.approx((round(20 * fps) + 6) / fps)
    assert len(long.windows) == 3 and [w.seed for w in long.windows] == [100 + WINDOW_SEED_STRIDE * i for i in range(3)]
    assert long.windows[1].source_range.start_time.to_seconds() == pytest.approx(-3 / fps + long.windows[1].offset)
    short = by(plans, "S")
    assert short.windows[0].duration == 0.64 and short.windows[0].keep == pytest.approx(9 / fps)
    rain = by(plans, "A", "rain")
    assert rain.source_range is None and all(w.source_range is None for w in rain.windows)
    assert all(p.estimated_seconds == pytest.approx(2.0 * sum(w.duration for w in p.windows)) for p in plans)


def test_retimed_media_ranges(tmp_path):
    shots, plans = make_plan(tmp_path, 24.0)
    # D is a freeze: every window decodes the held frame
    ice = by(plans, "D", "ice")
    assert [(round(w.source_range.start_time.value), w.source_range.duration.value) for w in ice.windows] == [(400, 1)]


def test_file_names_are_safe_unique_and_stable(tmp_path):
    shots, plans = make_plan(tmp_path, 25.0)
    files = [p.file_name for p in plans]
    assert len(set(files)) == len(files)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+\.wav", f) for f in files)
    assert re.fullmatch(r"A__dog-barking-t2__[0-9a-f]{8}\.wav", by(plans, "A", take=2).file_name)
    _, other_seed = make_plan(tmp_path, 25.0, seed=5, steps=3)
    assert [p.file_name for p in other_seed] == files  # settings do not rename stems
    shot = plans[0].shot
    assert stem_file_name(shot, plans[0].source, 1) != stem_file_name(shot, plans[0].source, 2)


def test_overrides_and_only(tmp_path):
    shots, plans = make_plan(tmp_path, 25.0, seed=9, steps=4, cfg=1.5, only=["2", "L"])
    assert {p.shot.name for p in plans} == {"L"}  # clip 2 (O) has no cues
    assert {(p.source.steps, p.source.cfg, p.seed) for p in plans if p.take == 1} == {(4, 1.5, 9)}
    with pytest.raises(UserError, match=r"--only 'nope' matches no clip"):
        make_plan(tmp_path, 25.0, only=["nope"])


def test_cache_keys_change_only_with_what_matters(tmp_path):
    _, base = make_plan(tmp_path, 25.0)
    key = {(p.shot.name, p.source.prompt, p.take): [w.key for w in p.windows] for p in base}
    assert len({k for keys in key.values() for k in keys}) == sum(len(v) for v in key.values())
    _, again = make_plan(tmp_path, 25.0)  # media rewritten with the same bytes: same keys
    assert [w.key for p in again for w in p.windows] == [w.key for p in base for w in p.windows]
    _, steps = make_plan(tmp_path, 25.0, steps=10)
    assert not {w.key for p in steps for w in p.windows} & {w.key for p in base for w in p.windows}
    (tmp_path / "media" / "a.mov").write_bytes(b"changed" * 100)  # new media content -> new onscreen keys
    _, changed = make_plan(tmp_path, 25.0, write=False)
    a_new, a_old = by(changed, "A"), by(base, "A")
    assert a_new.windows[0].key != a_old.windows[0].key
    assert by(changed, "A", "rain").windows[0].key == by(base, "A", "rain").windows[0].key  # text only
    assert by(changed, "C").windows[0].key == by(base, "C").windows[0].key  # other media


def test_plan_marks_cache_hits(tmp_path):
    cache = Cache(tmp_path / "cache")
    _, plans = make_plan(tmp_path, 25.0, cache=cache)
    assert not any(p.cached for p in plans)
    target = by(plans, "L")
    cache.put(target.windows[1].key, np.zeros(16000, dtype=np.float32))
    _, plans = make_plan(tmp_path, 25.0, cache=cache)
    target = by(plans, "L")
    assert [w.cached for w in target.windows] == [False, True, False]
    assert target.estimated_seconds == pytest.approx(2.0 * 16.0)


def test_cache_roundtrip_and_bad_keys(tmp_path):
    cache = Cache(tmp_path)
    key = "ab" * 32
    assert not cache.has(key)
    with pytest.raises(KeyError):
        cache.get(key)
    audio = np.linspace(-1, 1, 321, dtype=np.float64).reshape(1, -1)
    path = cache.put(key, audio)
    assert path == tmp_path / "ab" / f"{key}.npy" and cache.has(key)
    got = cache.get(key)
    assert got.dtype == np.float32 and np.array_equal(got, audio.astype(np.float32))
    assert list(path.parent.iterdir()) == [path]  # no temp files left
    with pytest.raises(ValueError):
        cache.path("../../etc/passwd")


def test_cache_concurrent_writers(tmp_path):
    """Several processes writing the same and different keys at once: every entry whole and readable."""
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from otio_foley.cache import Cache
        cache = Cache({str(tmp_path)!r})
        n = int(sys.argv[1])
        for i in range(40):
            key = f"{{i % 5:064x}}"
            cache.put(key, np.full(20000, i % 5, dtype=np.float32))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    cache = Cache(tmp_path)
    for i in range(5):
        assert np.array_equal(cache.get(f"{i:064x}"), np.full(20000, i, dtype=np.float32))
    assert not list(tmp_path.rglob("*.tmp"))
