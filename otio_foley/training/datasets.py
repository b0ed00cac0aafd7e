"""Datasets for training SelVA: items are {"frames": (T, 3, S, S) in [-1, 1] at 25 fps, "audio": (n,) at
16 kHz, "caption": str} (+ metadata), so synthetic and real clips are interchangeable in a DataLoader.

- `SyntheticScenes`: one source per clip, rendered on the fly from its index (deterministic).
- `SyntheticPairs`: a target clip and a distractor clip side by side (SelVA's mixing, done per item so the
  distractor can be chosen: another class, or the same class in another colour); audio = the target's stem.
- `VideoTextAudio`: real clips from a manifest CSV (`video`, `caption`, optional `audio` and `start`,
  paths relative to the CSV; what `otio-foley data synth` writes) or a VGGSound CSV (`ytid,start,label,split`
  without header, videos named `<ytid>_<start:06d>.mp4` in a folder).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from otio_foley.errors import UserError
from otio_foley.synth.mixing import MixConfig, draw_share, side_by_side
from otio_foley.synth.scenes import CLASSES, COLOURS, EVAL_SEED_BASE, FPS, SAMPLE_RATE, Scene, make_scene


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32 in [-1, 1] (the model's input convention)."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def _seed(split: str, first: int, index: int) -> int:
    return first + index + (EVAL_SEED_BASE if split == "eval" else 0)


@dataclass
class _SceneSettings:
    size: int = 64
    duration: float = 8.0
    split: str = "train"
    first_seed: int = 0


class SyntheticScenes(Dataset):
    """`length` single-source scenes; item i is scene seed first_seed + i (+ EVAL_SEED_BASE for "eval")."""

    def __init__(self, length: int, *, size: int = 64, duration: float = 8.0, split: str = "train",
                 first_seed: int = 0) -> None:
        self.length = length
        self.settings = _SceneSettings(size, duration, split, first_seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        s = self.settings
        scene = make_scene(_seed(s.split, s.first_seed, index), size=s.size, duration=s.duration)
        (name,) = scene.stems
        return {"frames": frames_to_tensor(scene.frames), "audio": torch.from_numpy(scene.stems[name]),
                "caption": scene.captions[name], "kind": scene.kinds[name], "seed": scene.seed}


class SyntheticPairs(Dataset):
    """Target + distractor side by side; the target's caption and stem are the labels.

    `intra_class` is the chance that the distractor has the target's class (in another colour, so the
    caption still singles out the target). `mix` decides share, side and how often a clip stays alone.
    Also returns the distractor's caption and audio (negative prompt, leakage checks).
    """

    def __init__(self, length: int, *, size: int = 64, duration: float = 8.0, split: str = "train",
                 first_seed: int = 0, mix: MixConfig = MixConfig.training(), intra_class: float = 0.3) -> None:
        self.length = length
        self.settings = _SceneSettings(size, duration, split, first_seed)
        self.mix = mix
        self.intra_class = intra_class

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        s = self.settings
        seed = _seed(s.split, s.first_seed, index)
        rng = np.random.default_rng([seed, 1])  # the pairing choices, independent of the scenes' own draws
        target, distractor = pair_scenes(seed, rng, intra=rng.random() < self.intra_class, size=s.size,
                                         duration=s.duration)
        (t_name,), (d_name,) = target.stems, distractor.stems
        frames_t, frames_d = frames_to_tensor(target.frames), frames_to_tensor(distractor.frames)
        mixed = self.mix.prob >= 1 or rng.random() < self.mix.prob
        left = not self.mix.random_side or rng.random() < 0.5
        share = draw_share(self.mix, rng) if mixed else 1.0
        if mixed:
            pair = (frames_t, frames_d) if left else (frames_d, frames_t)
            frames = side_by_side(*pair, share if left else 1.0 - share, s.size)
        else:
            frames = frames_t
        return {"frames": frames, "audio": torch.from_numpy(target.stems[t_name]),
                "caption": target.captions[t_name], "negative": distractor.captions[d_name],
                "distractor_audio": torch.from_numpy(distractor.stems[d_name]), "kind": target.kinds[t_name],
                "distractor_kind": distractor.kinds[d_name], "mixed": mixed, "target_left": left, "share": share,
                "seed": seed}


def pair_scenes(seed: int, rng: np.random.Generator, *, intra: bool, size: int, duration: float,
                fps: float = FPS) -> tuple[Scene, Scene]:
    """A target scene (`seed`) and a single-source distractor of the same (intra) or another class, always
    in a different colour so a caption naming the colour picks one side."""
    target = make_scene(seed, size=size, duration=duration, fps=fps)
    (name,) = target.stems
    kind, colour = target.kinds[name], target.colours[name]
    other_kind = kind if intra else CLASSES[(CLASSES.index(kind) + 1 + rng.integers(len(CLASSES) - 1))
                                            % len(CLASSES)]
    colours = [c for c in COLOURS if c != colour]
    other_colour = colours[rng.integers(len(colours))]
    other_seed = (EVAL_SEED_BASE if seed >= EVAL_SEED_BASE else 0) + int(rng.integers(EVAL_SEED_BASE))
    distractor = make_scene(other_seed, size=size, duration=duration, fps=fps, kinds=[other_kind],
                            colours=[other_colour])
    return target, distractor


# --- real clips ---

@dataclass(frozen=True)
class Clip:
    video: Path
    caption: str
    audio: Path | None = None  # None: the video's own audio track
    start: float = 0.0


def read_manifest(path: Path, video_dir: Path | None = None, split: str | None = None) -> list[Clip]:
    """Our manifest (header with `video`, `caption`) or a headerless VGGSound CSV (`ytid,start,label,split`)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise UserError("empty manifest", path=str(path), fix="list one clip per row")
    clips = []
    if "video" in rows[0] and "caption" in rows[0]:
        header = rows[0]
        root = path.parent
        for line, values in enumerate(rows[1:], start=2):
            row = dict(zip(header, values))
            if split and row.get("split", split) != split:
                continue
            audio = row.get("audio") or None
            try:
                start = float(row.get("start") or 0.0)
            except ValueError:
                raise UserError(f"bad start {row.get('start')!r}", path=str(path), where=f"line {line}",
                                fix="give seconds, e.g. 0 or 12.5")
            clips.append(Clip(root / row["video"], row["caption"], root / audio if audio else None, start))
    else:
        root = video_dir or path.parent
        for line, values in enumerate(rows, start=1):
            if len(values) < 3:
                raise UserError("expected ytid,start,label[,split]", path=str(path), where=f"line {line}",
                                fix="use the VGGSound CSV or a manifest with video,caption columns")
            if split and len(values) > 3 and values[3].strip() != split:
                continue
            clips.append(Clip(root / f"{values[0]}_{int(float(values[1])):06d}.mp4", values[2].strip()))
    for line, clip in enumerate(clips, start=1):
        for file in (clip.video, clip.audio):
            if file is not None and not file.exists():
                raise UserError("missing file", path=str(file), where=f"{path.name} clip {line}",
                                fix="check the manifest paths (relative to the manifest) or --video-dir")
    return clips


def decode_frames(path: Path, start: float, count: int, fps: float, size: int, *, crop: bool = True) -> torch.Tensor:
    """`count` frames at start + k / fps (each the latest decoded frame at or before that instant, so any
    source rate is resampled by timestamps), shorter side resized to `size` then centre-cropped, or the
    whole picture squeezed to a square when `crop=False` (side-by-side test videos must keep both halves):
    (count, 3, size, size) in [-1, 1]. Past the end, the last frame repeats."""
    wanted = start + np.arange(count) / fps
    picked: list[np.ndarray] = []
    last = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            time = float(frame.pts * stream.time_base) if frame.pts is not None else 0.0
            while len(picked) < count and last is not None and time > wanted[len(picked)] + 1e-6:
                picked.append(last)
            if len(picked) == count:
                break
            last = frame.to_ndarray(format="rgb24")
    if last is None:
        raise UserError("no video frames", path=str(path), fix="check the file decodes (ffprobe)")
    picked += [last] * (count - len(picked))
    frames = frames_to_tensor(np.stack(picked))
    if not crop:
        return F.interpolate(frames, size=(size, size), mode="bicubic", antialias=True,
                             align_corners=False).clamp(-1, 1)
    height, width = frames.shape[-2:]
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    frames = F.interpolate(frames, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return frames[..., top:top + size, left:left + size].clamp(-1, 1)


def load_audio(path: Path, start: float, length: int, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Mono audio from a sound file or a video's audio track, resampled, cut to `length` samples from
    `start` (zero-padded past the end)."""
    if path.suffix.lower() in (".wav", ".flac", ".ogg", ".aiff", ".aif"):
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        audio = torch.from_numpy(audio.mean(axis=1))
        if rate != sample_rate:
            import torchaudio.functional as AF

            audio = AF.resample(audio, rate, sample_rate)
    else:
        chunks = []
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise UserError("no audio track", path=str(path), fix="add an audio column to the manifest")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in container.decode(audio=0):
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
        audio = torch.from_numpy(np.concatenate(chunks) if chunks else np.zeros(0, np.float32))
    first = int(round(start * sample_rate))
    audio = audio[first:first + length]
    return F.pad(audio, (0, length - audio.numel())).float()


class VideoTextAudio(Dataset):
    """Real (video, audio, caption) clips, decoded with PyAV to the training format."""

    def __init__(self, manifest: Path, *, video_dir: Path | None = None, split: str | None = None,
                 size: int = 224, duration: float = 8.0, fps: float = FPS, sample_rate: int = SAMPLE_RATE) -> None:
        self.clips = read_manifest(Path(manifest), video_dir, split)
        self.size, self.duration, self.fps, self.sample_rate = size, duration, fps, sample_rate

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        clip = self.clips[index]
        count = int(self.fps * self.duration + 1e-6)
        frames = decode_frames(clip.video, clip.start, count, self.fps, self.size)
        audio = load_audio(clip.audio or clip.video, clip.start, int(round(self.duration * self.sample_rate)),
                           self.sample_rate)
        return {"frames": frames, "audio": audio, "caption": clip.caption, "video": str(clip.video)}
