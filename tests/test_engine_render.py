"""Real-engine check: our timeline, exported through otio-xges-adapter and rendered by GStreamer
Editing Services (`ges-launch-1.0`), plays every stem's body within one video frame of its record time.

Skipped only when ges-launch-1.0 is not installed (scripts/test installs it in CI).
"""
from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf
from scipy.signal import correlate

from foley_edit import HEAD, RATES, make_edit, make_stems
from otio_foley.writeback import is_foley_track, media_path, write_timelines

GES = shutil.which("ges-launch-1.0")
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(GES is None, reason="!!! ges-launch-1.0 NOT INSTALLED: the real-engine write-back "
                                           "test did NOT run (apt-get install ges1.0-tools) !!!"),
]
SR = 48000
# (label, shot, record start frame, frames, take): two labels on separate tracks, a spill, gaps between
# bursts so each onset is measurable; the WAVs hold noise in their handles too, so a handle that was
# played would show up as an onset HEAD frames early.
LAYOUT = [("FX a", 1, 12, 20, 1), ("FX b", 2, 40, 15, 1), ("FX a", 3, 62, 24, 1), ("FX a", 4, 70, 10, 1)]


def render(xges: Path, wav: Path, timeout: float = 60.0) -> str:
    """Render `xges` to a mono 24-bit 48 kHz WAV; stop at once if GES cannot load an asset (it hangs)."""
    cmd = [GES, "--load", str(xges), "-o", str(wav), "-t", "audio",
           "-f", "audio/x-wav:audio/x-raw,format=S24LE,rate=48000,channels=1",
           "--audio-caps", "audio/x-raw,rate=48000,channels=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    log = []
    try:
        for line in proc.stdout:
            log.append(line)
            if "Error loading asset" in line:
                proc.kill()
                break
        proc.wait()
    finally:
        timer.cancel()
    text = "".join(log)
    assert proc.returncode == 0 and "Error loading asset" not in text, text[-2000:]
    return text


@pytest.mark.parametrize("rate", RATES, ids=["23.976", "24", "25", "29.97"])
def test_ges_plays_stems_at_record_frames(tmp_path, rate):
    out = tmp_path / "out dir"  # percent-encoded file:// URIs must resolve in GStreamer
    stems = make_stems(rate, out / "stems", layout=LAYOUT)
    files = write_timelines(make_edit(rate), stems, out, ["otio-premiere"], edit_path=tmp_path / "edit.otio")

    timeline = otio.adapters.read_from_file(str(files["otio-premiere"]))
    tracks = timeline.tracks
    for index in reversed(range(len(tracks))):  # only our audio: the edit's camera files don't exist
        if not is_foley_track(tracks[index]):
            del tracks[index]
    assert [t.name for t in tracks] == ["FX a", "FX a (2)", "FX b"]
    urls = [c.media_reference.target_url for c in timeline.find_clips()]
    assert all(u.startswith("file:///") and Path(media_path(u)).is_file() for u in urls)
    xges = tmp_path / "t.xges"
    otio.adapters.write_to_file(timeline, str(xges), adapter_name="xges")
    rendered = tmp_path / "render.wav"
    render(xges, rendered)

    mix, sr = sf.read(rendered)
    assert sr == SR
    frame = SR / rate
    report = []
    for stem, (_, _, start, frames, _) in zip(stems, LAYOUT):
        audio, _ = sf.read(stem.path)
        head = round(HEAD * frame)
        body = audio[head:head + round(frames * frame)]
        expected = start * frame
        lag = int(np.argmax(correlate(mix, body, mode="valid", method="fft")))
        energy = np.convolve(mix ** 2, np.ones(48) / 48, mode="same")  # 1 ms short-time energy
        window = slice(int(expected - 3 * frame), int(expected + 3 * frame))
        onset = window.start + int(np.argmax(energy[window] > 0.25 * np.mean(body ** 2)))
        report.append(f"{stem.path.name}: expected {expected:.1f}, correlation {lag}, onset {onset}")
        assert abs(lag - expected) <= frame, report[-1]
        alone = all(not (s0 < start + 3 and start - 3 < s0 + f0)  # no other burst near this onset
                    for (_, _, s0, f0, _) in LAYOUT if s0 != start)
        if alone:
            assert abs(onset - expected) <= frame, report[-1]
    print(f"{rate:.3f} fps, samples: " + "; ".join(report))
