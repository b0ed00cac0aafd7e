"""Media decode: exact frame counts and timestamp sampling at NLE rates, rotation, odd aspect, bad files."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from otio_foley.errors import UserError
from otio_foley.media import decode_frames, frame_count

BITS = 8  # each test frame shows its index as 8 black/white vertical bars (MSB left)


def index_frame(i: int, width: int, height: int) -> np.ndarray:
    bars = np.array([(i >> (BITS - 1 - b)) & 1 for b in range(BITS)], dtype=np.uint8) * 255
    row = np.repeat(bars, -(-width // BITS))[:width]
    return np.repeat(np.repeat(row[None, :, None], height, 0), 3, 2)


def read_index(frame: np.ndarray) -> int:
    """Index painted by `index_frame` from one decoded (3, S, S) frame in [-1, 1]."""
    size = frame.shape[-1]
    centres = ((np.arange(BITS) + 0.5) * size / BITS).astype(int)
    bits = frame.mean(0)[size // 2, centres] > 0
    return int("".join("1" if b else "0" for b in bits), 2)


def write_video(path: Path, rate: Fraction, n: int, width: int = 96, height: int = 64, *,
                rotation: int = 0, pattern=index_frame, pts=None) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = 1 / Fraction(rate) if pts is None else Fraction(1, 1000)
        stream.options = {"qscale": "2"}
        stream.codec_context.gop_size = 12
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format="rgb24")
            frame.pts = i if pts is None else pts[i]
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("rate", [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001)])
def test_exact_frames_at_nle_rates(tmp_path: Path, rate: Fraction) -> None:
    path = write_video(tmp_path / "v.mp4", rate, 120)
    start_frame, seconds = 37, 1.6  # mid-GOP start: seek lands before it and decodes forward
    start = start_frame / float(rate)
    count = frame_count(seconds, 25)
    frames = decode_frames(path, start, count, fps=25, size=64)
    assert frames.shape == (count, 3, 64, 64) and count == 40
    assert frames.min() >= -1 and frames.max() <= 1
    expected = [int(np.floor((start + i / 25) * float(rate) + 1e-6)) for i in range(count)]
    assert [read_index(f.numpy()) for f in frames] == expected


def test_vfr_uses_timestamps_and_holds_past_the_end(tmp_path: Path) -> None:
    pts_ms = [0, 40, 200, 240, 600, 640]  # gaps: frames 1 and 3 stay on screen for a while
    path = write_video(tmp_path / "vfr.mp4", Fraction(25), len(pts_ms), pts=pts_ms)
    frames = decode_frames(path, 0.0, 25, fps=25, size=32)  # 1 s, past the last frame (0.64 s)
    got = [read_index(f.numpy()) for f in frames]
    expected = [max(k for k, p in enumerate(pts_ms) if p <= i * 40) for i in range(25)]
    assert got == expected


def quadrant_frame(i: int, width: int, height: int) -> np.ndarray:
    img = np.zeros((height, width, 3), np.uint8)
    img[: height // 2, : width // 2] = (255, 0, 0)  # red marks the stored top-left corner
    return img


@pytest.mark.parametrize("rotation,corner", [(0, (0, 0)), (-90, (0, 1)), (90, (1, 0)), (180, (1, 1))])
def test_rotation_metadata_is_applied(tmp_path: Path, rotation: int, corner: tuple[int, int]) -> None:
    path = write_video(tmp_path / "rot.mp4", Fraction(25), 3, 96, 48, rotation=rotation, pattern=quadrant_frame)
    red = decode_frames(path, 0.0, 1, fps=25, size=32)[0, 0].numpy()
    quads = red.reshape(2, 16, 2, 16).mean(axis=(1, 3))  # (row, col) mean red per display quadrant
    assert np.unravel_index(np.argmax(quads), quads.shape) == corner


def test_odd_aspect_is_squashed_not_cropped(tmp_path: Path) -> None:
    def edge_frame(i: int, width: int, height: int) -> np.ndarray:
        img = np.zeros((height, width, 3), np.uint8)
        img[:, :4] = 255  # white strips at the far left and right: a centre crop would lose them
        img[:, -4:] = 255
        return img

    path = write_video(tmp_path / "wide.mp4", Fraction(25), 2, 240, 32, pattern=edge_frame)
    frame = decode_frames(path, 0.0, 1, fps=25, size=48)[0].numpy().mean(0)
    assert frame[:, 0].mean() > 0.5 and frame[:, -1].mean() > 0.5 and frame[:, 24].mean() < -0.9


def test_unreadable_media_names_file_and_clip(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mov"
    bad.write_bytes(b"not a movie at all" * 10)
    with pytest.raises(UserError) as err:
        decode_frames(bad, 0.0, 4, fps=25, size=32, clip="sh010")
    message = err.value.format_message()
    assert str(bad) in message and "sh010" in message and "\n" not in message
    with pytest.raises(UserError, match="missing.mp4"):
        decode_frames(tmp_path / "missing.mp4", 0.0, 4, fps=25, size=32, clip="sh020")


@pytest.mark.parametrize("speed", [0.0, 0.5, 2.0])
def test_retime_speed_follows_record_time(tmp_path: Path, speed: float) -> None:
    path = write_video(tmp_path / "v.mp4", Fraction(25), 100)
    frames = decode_frames(path, 0.4, 20, fps=25, size=32, speed=speed)
    assert [read_index(f.numpy()) for f in frames] == [int(10 + i * speed + 1e-6) for i in range(20)]
