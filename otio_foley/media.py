"""Media decode: exactly the frames a model needs from one source range of a clip's media.

The model sees frames at its own rate (25 fps for SelVA) and square size (224 px). Edits hold media at
any rate (23.976, 29.97, variable), any aspect and with rotation metadata (phones). So we seek to the
keyframe before the range, decode forward only as far as needed, and pick for every model-rate instant
the frame on screen at that instant (sample-and-hold on presentation timestamps, the way MMAudio's
`read_frames` does). That duplicates frames for slower media, drops them for faster ones and is right
for VFR. Frames are squashed to size x size without cropping, as SelVA's `load_video` does.
"""
from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import torch

from otio_foley.errors import UserError

# A frame whose timestamp lies within this of a target instant counts as on screen at it; far below any
# frame duration, far above float error in rational -> seconds conversions.
_EPS_SECONDS = 1e-4


def frame_count(duration: float, fps: float) -> int:
    """Frames a model at `fps` expects for `duration` seconds (FoleyModel: T = int(fps * duration))."""
    return int(math.floor(duration * fps + 1e-6))


def decode_frames(path: Path, start: float, count: int, *, fps: float, size: int, speed: float = 1.0,
                  clip: str = "") -> torch.Tensor:
    """(count, 3, size, size) float32 RGB in [-1, 1]: the frames on screen at start + i * speed / fps.

    `start` is in seconds from the first frame of the file's video stream; `speed` is the clip's
    retime scalar (0 = freeze frame), so frames follow record time. Instants before the first
    frame get the first frame and instants past the end hold the last, so the count is always exact.
    Unreadable media raise UserError naming the file and `clip`.
    """
    where = f"clip {clip!r}" if clip else None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError("no video stream", path=str(path), where=where,
                                fix="relink the clip to a video file or make its sources offscreen")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rgb = _decode_sampled(container, stream, start + np.arange(count) * speed / fps, size)
    except UserError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise UserError(f"cannot decode video: {exc}", path=str(path), where=where,
                        fix="check the file plays, or relink the clip with --media-root") from None
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def _decode_sampled(container, stream, targets: np.ndarray, size: int) -> np.ndarray:
    """Sample-and-hold decode at ascending instants `targets` (s); returns (len, size, size, 3) uint8."""
    origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    count, start = len(targets), float(targets[0]) if len(targets) else 0.0
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    if count == 0:
        return out
    if start > 0:  # land on the keyframe at or before the range, then decode forward
        container.seek(int((origin + start) / stream.time_base), stream=stream, backward=True)
    held: av.VideoFrame | None = None  # the frame on screen before the current one
    held_rgb: np.ndarray | None = None
    i = 0
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        t = frame.time - origin
        if held is None and t > targets[0] + _EPS_SECONDS:
            held = frame  # instants before the first decoded frame take that frame
        while i < count and t > targets[i] + _EPS_SECONDS:
            if held_rgb is None:
                held_rgb = _to_square_rgb(held, size)
            out[i] = held_rgb
            i += 1
        if i == count:
            break
        if frame is not held:
            held, held_rgb = frame, None
    if i < count:
        if held is None:
            raise ValueError("the video stream has no decodable frames")
        out[i:] = held_rgb if held_rgb is not None else _to_square_rgb(held, size)
    return out


def probe(path: Path, *, clip: str = "") -> None:
    """Raise UserError now if `path` has no decodable video, so a render fails before any model work."""
    decode_frames(path, 0.0, 1, fps=1.0, size=8, clip=clip)


def _to_square_rgb(frame: av.VideoFrame, size: int) -> np.ndarray:
    """Squash to size x size (swscale bicubic, which widens its filter when shrinking) and apply the
    display rotation. Squash-then-rotate equals rotate-then-squash because the target is square."""
    rgb = frame.reformat(width=size, height=size, format="rgb24", interpolation="BICUBIC").to_ndarray()
    quarter_turns = round(frame.rotation / 90) % 4  # counter-clockwise, as the display matrix says
    return np.ascontiguousarray(np.rot90(rgb, k=quarter_turns)) if quarter_turns else rgb
