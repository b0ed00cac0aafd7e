"""BWF stems: headers checked by reading the bytes, lengths, resampling, gain/clipping, atomic writes."""
from __future__ import annotations

import os
import stat
import struct
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

import opentimelineio as otio

from otio_foley.stems import bwf_time_reference, exact_rate, samples_for_frames, stem_basename, write_stem


def riff_chunks(path) -> dict[bytes, bytes]:
    """Parse a RIFF/WAVE file by hand (independent of the writer), checking sizes and padding."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, pos = {}, 12
    while pos < len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunks[tag] = data[pos + 8:pos + 8 + size]
        pos += 8 + size + size % 2
    assert pos == len(data)
    return chunks


@pytest.mark.parametrize("rate", [24000 / 1001, 24.0, 25.0, 30000 / 1001])
def test_header_bext_even_whole_frames(tmp_path, rate):
    path = tmp_path / "a.wav"
    tc = 48000 * 3600  # 01:00:00:00
    info = write_stem(path, np.full(16001, 0.25), source_rate=16000, time_reference_samples=tc,
                      description="dog barking", frame_rate=rate)
    chunks = riff_chunks(path)
    bext = chunks[b"bext"]
    assert bext[:11] == b"dog barking"
    low, high, version = struct.unpack("<IIH", bext[338:348])
    assert (high << 32 | low, version) == (tc, 1)
    tag, channels, sr, byte_rate, align, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    assert (tag, channels, sr, byte_rate, align, bits) == (1, 1, 48000, 144000, 3, 24)
    n = len(chunks[b"data"]) // 3
    assert n == info.n_samples and n % 2 == 0 and len(chunks[b"data"]) % 2 == 0
    frames = np.ceil(16001 / 16000 * rate)  # 1.0000625 s, padded up to whole frames
    assert samples_for_frames(int(frames), rate, 48000) <= n <= samples_for_frames(int(frames), rate, 48000) + 1
    assert list(path.parent.iterdir()) == [path]  # the temporary file was renamed, nothing left over


def test_frames_fixes_length_and_odd_counts_become_even(tmp_path):
    path = tmp_path / "b.wav"
    # 3 frames at 29.97 = 4804.8 samples -> 4805 -> 4806 (even)
    info = write_stem(path, np.ones(100_000) * 0.1, source_rate=48000, time_reference_samples=0,
                      description="", frame_rate=30000 / 1001, frames=3)
    assert info.n_samples == 4806
    data, sr = sf.read(path)
    assert len(data) == 4806 and sr == 48000


def test_resample_keeps_onset_sample_and_pitch(tmp_path):
    x = np.zeros(16000)
    x[4000] = 1.0  # an impulse at 0.25 s
    write_stem(tmp_path / "i.wav", x, source_rate=16000, time_reference_samples=0, description="",
               frame_rate=25.0)
    y, _ = sf.read(tmp_path / "i.wav")
    assert int(np.argmax(np.abs(y))) == 12000  # polyphase filter delay is compensated
    t = np.arange(44100) / 44100
    write_stem(tmp_path / "s.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), source_rate=44100,
               time_reference_samples=0, description="", frame_rate=25.0)
    y, _ = sf.read(tmp_path / "s.wav")
    spectrum = np.abs(np.fft.rfft(y[:48000]))
    assert int(np.argmax(spectrum)) == 1000  # 1 Hz bins over one second at 48 kHz


def test_gain_clips_without_wraparound_and_reports_peak(tmp_path):
    x = np.linspace(0.0, 0.9, 48000)
    info = write_stem(tmp_path / "g.wav", x, source_rate=48000, time_reference_samples=0,
                      description="", frame_rate=25.0, gain_db=6.0)
    y, _ = sf.read(tmp_path / "g.wav")
    assert y.min() >= 0.0  # an integer wrap would turn the loud end negative
    assert y.max() == pytest.approx(1.0, abs=1e-6)
    assert info.peak_dbfs == pytest.approx(20 * np.log10(0.9) + 6.0, abs=1e-6)
    assert info.clipped_samples > 0


@pytest.mark.parametrize("bits,subtype", [(16, "PCM_16"), (32, "FLOAT")])
def test_other_bit_depths(tmp_path, bits, subtype):
    path = tmp_path / "d.wav"
    write_stem(path, np.full(4800, 0.5), source_rate=48000, time_reference_samples=0, description="x",
               frame_rate=25.0, bit_depth=bits)
    assert sf.info(path).subtype == subtype
    assert sf.read(path)[0][100] == pytest.approx(0.5, abs=1e-4)
    if bits == 32:
        chunks = riff_chunks(path)  # 0.1 s = 2.5 frames, padded to 3 frames = 5760 samples
        assert struct.unpack("<I", chunks[b"fact"])[0] == len(chunks[b"data"]) // 4 == 5760


def test_bad_bit_depth_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="bit_depth"):
        write_stem(tmp_path / "x.wav", np.zeros(10), source_rate=48000, time_reference_samples=0,
                   description="", frame_rate=25.0, bit_depth=8)
    assert list(tmp_path.iterdir()) == []


def test_stem_basename_is_safe():
    name = stem_basename("sh 010#a", "FX: dog barking?", "take%2", "ünïcode")
    assert name == "sh_010_a_FX_dog_barking_take_2_n_code.wav"
    assert stem_basename("///") == "stem.wav"


def test_bwf_time_reference_counts_the_head_handle_and_wraps():
    RT = otio.opentime.RationalTime
    assert bwf_time_reference(RT.from_timecode("01:00:00:00", 25), 6) == 3600 * 48000 - 6 * 1920
    assert bwf_time_reference(RT(0, 24), 24) == 24 * 3600 * 48000 - 48000  # before midnight
    ntsc = 30000 / 1001
    assert bwf_time_reference(RT(1, ntsc), 0) == 1602  # 1601.6 samples, rounded


def test_rates_snap_to_ntsc_only_when_meant():
    assert exact_rate(23.976) == exact_rate(24000 / 1001) == Fraction(24000, 1001)
    assert exact_rate(29.97) == Fraction(30000, 1001)
    assert exact_rate(12.0) == 12 and exact_rate(25.0) == 25
    assert samples_for_frames(1000, 23.976, 48000) == 2_002_000  # not 2_001_999 (23.976 read literally)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_stem_has_umask_permissions_and_no_temp_left(tmp_path, umask):
    """Shared farm storage and NLEs running as another user must read stems: not mkstemp's 0600."""
    old = os.umask(umask)
    try:
        write_stem(tmp_path / "s.wav", np.zeros(1600), source_rate=16000, time_reference_samples=0,
                   description="x", frame_rate=25.0)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "s.wav").st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["s.wav"]
