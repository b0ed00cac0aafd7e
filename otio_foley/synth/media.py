"""Write synthetic scenes as media an editor (or the real-data loader) can open: an .mp4 plus one WAV per source.

The manifest CSV written next to them has the columns the real-data loader reads (`video`, `audio`,
`caption`, `start`, paths relative to the CSV), plus what the scene knows about each source.
"""
from __future__ import annotations

import csv
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from otio_foley.synth.scenes import Scene, split_of

MANIFEST_COLUMNS = ("video", "audio", "caption", "start", "source", "kind", "colour", "seed", "split", "events")


def frame_rate(value: float | str | Fraction) -> Fraction:
    """Exact rate from "24000/1001", 23.976 or 25. Decimals near an NTSC rate (N*1000/1001) snap to it,
    because editors write 23.976 / 29.97 / 59.94 for those."""
    if isinstance(value, str) and "/" in value:
        return Fraction(value)
    rate = Fraction(str(value)) if isinstance(value, str) else Fraction(value)
    ntsc = round(float(rate) * 1.001)
    if rate.denominator != 1 and abs(float(rate) - ntsc * 1000 / 1001) < 0.005:
        return Fraction(ntsc * 1000, 1001)
    return rate.limit_denominator(1001)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def write_video(path: Path, frames: np.ndarray, rate: Fraction, *, audio: np.ndarray | None = None,
                sample_rate: int = 16_000, codec: str = "libx264") -> None:
    """Frames (T, H, W, 3) uint8 at `rate` (+ optional mono audio as AAC) -> `path`, written atomically."""
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"{width}x{height}: H.264 / MPEG-4 with 4:2:0 chroma need an even width and height")
    partial = _temporary(path)
    with av.open(str(partial), mode="w", format="mp4") as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if codec in ("libx264", "h264"):
            video.options = {"crf": "18", "preset": "veryfast"}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate)
            sound.layout = "mono"
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            block = 1024
            for start in range(0, len(audio), block):
                chunk = np.ascontiguousarray(audio[None, start:start + block], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = sample_rate, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode())
    os.replace(partial, path)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    partial = _temporary(path)
    sf.write(str(partial), audio, sample_rate, subtype="FLOAT", format="WAV")
    os.replace(partial, path)


def write_scene(scene: Scene, folder: Path, name: str, *, codec: str = "libx264",
                audio_track: bool = True) -> list[dict[str, str]]:
    """`<name>.mp4` (the mix as its audio track when `audio_track`) and `<name>.<source>.wav` per source.

    Returns one manifest row per source (paths relative to `folder`). The scene's own fps is the file's rate.
    """
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / f"{name}.mp4"
    write_video(video, scene.frames, frame_rate(scene.fps), audio=scene.mix() if audio_track else None,
                sample_rate=scene.sample_rate, codec=codec)
    rows = []
    for source, stem in scene.stems.items():
        wav = folder / f"{name}.{source}.wav"
        write_wav(wav, stem, scene.sample_rate)
        rows.append({
            "video": video.name, "audio": wav.name, "caption": scene.captions[source], "start": "0",
            "source": source, "kind": scene.kinds[source], "colour": scene.colours[source],
            "seed": str(scene.seed), "split": split_of(scene.seed),
            "events": " ".join(f"{t:.4f}" for t in scene.events[source]),
        })
    return rows


def write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    partial = _temporary(path)
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)
