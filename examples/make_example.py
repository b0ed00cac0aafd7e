"""Regenerate the example project: two small synthetic scenes with known sources, and a three-clip edit
of them at 25 fps and at 23.976 fps (media at the same rate as its timeline, as a camera would shoot).

    python examples/make_example.py          # writes examples/media/*.mp4 and examples/edit_*.otio

The scenes come from the synthetic scene generator (`otio_foley.synth`), the same classes the built-in
selva-tiny model was trained on, so `examples/cues.yaml` prompts name what is really on screen:
scene A shows a red ball bouncing beside a yellow beacon, scene B a blue bell beside a green drum.
The edit uses relative media paths, so the folder can be moved or cloned anywhere.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from otio_foley.synth.media import write_video
from otio_foley.synth.scenes import make_scene

HERE = Path(__file__).resolve().parent
SIZE = (96, 160)  # height, width: small files, and not square (decode squashes to the model's size)
SECONDS = 6.0
SCENES = {  # name -> (seed, kinds, colours)
    "scene_a": (101, ("ball", "beacon"), ("red", "yellow")),
    "scene_b": (202, ("bell", "drum"), ("blue", "green")),
}
# (clip name, scene, source in seconds, duration in seconds)
CLIPS = [("sh010", "scene_a", 0.5, 3.0), ("sh020", "scene_b", 1.0, 3.0), ("sh030", "scene_a", 3.5, 2.0)]
RATES = {"25fps": Fraction(25), "23976": Fraction(24000, 1001)}


def write_media(tag: str, rate: Fraction) -> dict[str, Path]:
    """One .mp4 per scene at `rate`, its mixed sound as the audio track (what a location recording gives)."""
    paths = {}
    for name, (seed, kinds, colours) in SCENES.items():
        scene = make_scene(seed, size=SIZE, duration=SECONDS, fps=float(rate), sources=len(kinds), kinds=kinds,
                           colours=colours)
        path = HERE / "media" / f"{name}_{tag}.mp4"
        path.parent.mkdir(exist_ok=True)
        write_video(path, scene.frames, rate, audio=scene.mix(), sample_rate=scene.sample_rate)
        paths[name] = path
    return paths


def build_edit(tag: str, rate: Fraction, media: dict[str, Path]) -> otio.schema.Timeline:
    fps = float(rate)
    frames = lambda seconds: round(seconds * fps)  # noqa: E731  (whole frames at the edit rate)
    timeline = otio.schema.Timeline(name=f"otio-foley example {tag}",
                                    global_start_time=otio.opentime.from_timecode("01:00:00:00", fps))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    length = frames(SECONDS)
    for name, scene, start, duration in CLIPS:
        ref = otio.schema.ExternalReference(
            target_url=media[scene].relative_to(HERE).as_posix(),
            available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, fps),
                                                    otio.opentime.RationalTime(length, fps)))
        track.append(otio.schema.Clip(name=name, media_reference=ref, source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(frames(start), fps), otio.opentime.RationalTime(frames(duration), fps))))
    return timeline


def main() -> None:
    for tag, rate in RATES.items():
        media = write_media(tag, rate)
        otio.adapters.write_to_file(build_edit(tag, rate, media), str(HERE / f"edit_{tag}.otio"))


if __name__ == "__main__":
    main()
