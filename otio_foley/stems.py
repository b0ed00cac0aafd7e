"""Stems: one Broadcast WAV per (clip, source, take), and the record that write-back needs.

`write_stem` turns model audio into a file every NLE and GStreamer accept:

- resampled to 48 kHz with scipy's polyphase FIR (`resample_poly`): the model rates (16 k, 44.1 k)
  are exact rational ratios of 48 k (3/1, 160/147), the Kaiser-windowed filter is linear-phase and
  its delay is compensated, so an onset stays on its sample; it works on numpy without torch;
- gain, then hard clipping at full scale (never integer wrap-around), the peak reported;
- padded with silence (or trimmed) to whole video frames so NLEs never cut the last frame, then to an
  EVEN sample count: RIFF wants even chunk sizes and GStreamer 1.22 plays odd-length mono 24-bit WAVs
  as silence;
- a `bext` chunk whose TimeReference is the record start in samples since midnight. We write the RIFF
  ourselves because python-soundfile exposes no API for libsndfile's broadcast-info command;
- written to a temporary name in the same folder, then renamed, so a crash leaves no half file, with
  the umask's permissions (not mkstemp's 0600) so NLEs and farm nodes running as other users read it.
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
from scipy.signal import resample_poly

from otio_foley.atomic import write_bytes_atomic


@dataclass(frozen=True)
class Stem:
    """One generated WAV and where it belongs. `provenance` becomes the clip's `otio_foley` metadata;
    write-back reads its "prompt" (marker text) and "source_clip"/"source_range" if present."""

    path: Path  # absolute path of the WAV under OUTDIR/stems/
    label: str  # track label, e.g. "FX dog barking" or the cue's `track`
    shot_index: int  # Shot.index it belongs to
    shot_name: str
    record_range: otio.opentime.TimeRange  # where the stem's body plays (timeline-relative)
    head_frames: int  # handle material before record_range.start_time inside the file
    tail_frames: int  # handle material after the end
    sample_rate: int
    take: int = 1  # 1 = the take on the source's track; >1 = alternates on muted tracks
    provenance: dict = field(default_factory=dict, compare=False, hash=False)  # -> otio_foley metadata
    bit_depth: int = 24  # of the WAV, declared to NLEs that want it (FCP7 XML, AAF)


@dataclass(frozen=True)
class WavInfo:
    """What `write_stem` wrote: enough to check levels and lengths without reopening the file."""

    path: Path
    n_samples: int
    sample_rate: int
    bit_depth: int
    peak_dbfs: float  # peak after gain, before clipping (> 0 means it clipped)
    clipped_samples: int


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_FORMATS = {16: (1, "<i2"), 24: (1, None), 32: (3, "<f4")}  # bit depth -> (wFormatTag, dtype)


def stem_basename(*parts: object, suffix: str = ".wav") -> str:
    """A file name from `parts` using only [A-Za-z0-9._-]: OTIO's URL helpers, the otioz bundler and
    NLE conform all break on '#', '?', '%', spaces or non-ASCII in media paths."""
    words = [_UNSAFE.sub("_", str(p)).strip("._-") for p in parts]
    name = "_".join(w for w in words if w) or "stem"
    return name[:180] + suffix


def exact_rate(frame_rate: float) -> Fraction:
    """The frame rate as a fraction; 23.976, 29.97… (as FCP7 XML readers give them) snap to the NTSC
    rate they stand for, 24000/1001…, so sample counts don't drift over long timelines."""
    nearest = otio.opentime.RationalTime.nearest_valid_timecode_rate(frame_rate)
    rate = nearest if abs(nearest - frame_rate) < 0.01 else frame_rate
    return Fraction(rate).limit_denominator(1001)


def samples_for_frames(frames: int, frame_rate: float, sample_rate: int) -> int:
    """Samples needed to cover `frames` whole frames (rounded up: 29.97 fps is 1601.6 samples/frame)."""
    return math.ceil(Fraction(frames) * sample_rate / exact_rate(frame_rate))


def bwf_time_reference(record_start: otio.opentime.RationalTime, head_frames: int,
                       sample_rate: int = 48000) -> int:
    """BWF TimeReference for a stem: its FIRST sample (head handle included) in samples since midnight.

    `record_start` is the body's record timecode as a time (timeline global_start_time + the record
    range start); days wrap, as timecode does.
    """
    first = record_start - otio.opentime.RationalTime(head_frames, record_start.rate)
    return round(first.value_rescaled_to(sample_rate)) % (24 * 3600 * sample_rate)


def write_stem(path: Path | str, audio: np.ndarray, *, source_rate: int, time_reference_samples: int,
               description: str, frame_rate: float, frames: int | None = None,
               sample_rate: int = 48000, bit_depth: int = 24, gain_db: float = 0.0) -> WavInfo:
    """Write mono `audio` (float, full scale 1.0, at `source_rate`) as a Broadcast WAV at `path`.

    `frames` fixes the length to that many frames of `frame_rate` (silence-padded or trimmed);
    without it the audio is padded up to whole frames. `time_reference_samples` is the time of the
    file's first sample in samples (at `sample_rate`) since midnight, for timecode spotting in NLEs
    and DAWs: see `bwf_time_reference`.
    """
    if bit_depth not in _FORMATS:
        raise ValueError(f"bit_depth must be one of {sorted(_FORMATS)}, got {bit_depth}")
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if source_rate != sample_rate:
        ratio = Fraction(sample_rate, source_rate)
        x = resample_poly(x, ratio.numerator, ratio.denominator)
    x = x * 10.0 ** (gain_db / 20.0)

    if frames is None:
        frames = math.ceil(Fraction(len(x)) * exact_rate(frame_rate) / sample_rate)
    n = samples_for_frames(frames, frame_rate, sample_rate)
    n += n % 2
    x = np.concatenate([x[:n], np.zeros(max(0, n - len(x)))])

    peak = float(np.max(np.abs(x))) if n else 0.0
    full_scale = 1.0 - 2.0 ** -(bit_depth - 1) if bit_depth != 32 else 1.0
    clipped = int(np.count_nonzero(np.abs(x) > full_scale))
    x = np.clip(x, -1.0, full_scale)

    fmt_tag, _ = _FORMATS[bit_depth]
    body = _pcm_bytes(x, bit_depth)
    chunks = [_chunk(b"bext", _bext(description, time_reference_samples)),
              _chunk(b"fmt ", _fmt(fmt_tag, sample_rate, bit_depth))]
    if fmt_tag != 1:  # non-PCM WAVs must carry a fact chunk with the frame count
        chunks.append(_chunk(b"fact", struct.pack("<I", n)))
    chunks.append(_chunk(b"data", body))
    payload = b"WAVE" + b"".join(chunks)
    write_bytes_atomic(Path(path), b"RIFF" + struct.pack("<I", len(payload)) + payload)
    return WavInfo(Path(path), n, sample_rate, bit_depth,
                   20.0 * math.log10(peak) if peak > 0 else -math.inf, clipped)


def _pcm_bytes(x: np.ndarray, bit_depth: int) -> bytes:
    if bit_depth == 32:
        return x.astype("<f4").tobytes()
    scale = 2 ** (bit_depth - 1)
    ints = np.round(x * scale).astype(np.int64)  # already clipped: no value exceeds the range
    if bit_depth == 16:
        return ints.astype("<i2").tobytes()
    little = ints.astype("<i4").view(np.uint8).reshape(-1, 4)
    return little[:, :3].tobytes()  # 24-bit: the three low bytes of each little-endian int32


def _fmt(tag: int, rate: int, bits: int) -> bytes:
    block = bits // 8
    head = struct.pack("<HHIIHH", tag, 1, rate, rate * block, block, bits)
    return head if tag == 1 else head + struct.pack("<H", 0)  # WAVEFORMATEX cbSize for float


def _bext(description: str, time_reference: int) -> bytes:
    """EBU Tech 3285 v1 broadcast extension: fixed 602 bytes, no coding history."""
    text = description.encode("ascii", "replace")[:256]
    return (text.ljust(256, b"\0") + b"otio-foley".ljust(32, b"\0") + b"\0" * 32
            + b"\0" * 10 + b"\0" * 8  # origination date/time left empty: files stay reproducible
            + struct.pack("<IIH", time_reference & 0xFFFFFFFF, time_reference >> 32, 1)
            + b"\0" * 64 + b"\0" * 190)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

