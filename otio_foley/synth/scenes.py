"""Deterministic synthetic audio-visual scenes: what is seen drives, frame-accurately, what is heard.

`make_scene(seed)` draws one or more sound sources (a bouncing ball, a beacon, a fan, rain, a swinging bell,
a clock, a drum, a kettle) over a random background and synthesises one mono stem per source from the same
motion parameters, so every impact, tick or lit frame has its sound at the same instant. Each source has a
caption (several phrasings per class, one held out for evaluation) naming its colour, so two sources of the
same class can still be told apart by text. Used to train the built-in tiny model and to measure selectivity.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from otio_foley.synth import draw, sound
from otio_foley.synth.draw import Grid

SAMPLE_RATE = 16_000
FPS = 25.0
EVAL_SEED_BASE = 1_000_000_000  # seeds >= this are the held-out evaluation split; training seeds stay below

# Named colours (RGB 0..255). Captions name them, so intra-class pairs are selectable by text.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 90, 230), "yellow": (240, 215, 40),
    "orange": (245, 140, 30), "purple": (150, 60, 210), "white": (245, 245, 245), "cyan": (40, 210, 220),
    "pink": (245, 125, 185), "black": (20, 20, 20),
}

# Per class: caption templates; the LAST one is held out (evaluation split only).
PHRASINGS: dict[str, tuple[str, ...]] = {
    "ball": ("a {c} ball bouncing", "a bouncing {c} ball thudding on the floor", "the {c} ball hits the ground",
             "thuds of a {c} rubber ball", "a {c} ball bounces up and down"),
    "beacon": ("a {c} beacon beeping", "a {c} warning light beeps while lit", "beeps from a flashing {c} lamp",
               "the {c} signal light blinks and beeps", "an electronic beep from a {c} beacon"),
    "fan": ("a {c} fan humming", "the hum of a spinning {c} fan", "a {c} electric fan whirring",
            "motor hum of a {c} fan", "a {c} propeller fan buzzing as it spins"),
    "rain": ("{c} raindrops pattering", "the patter of {c} rain on the ground", "{c} drops of rain splashing",
             "light rain of {c} drops", "rainfall with {c} droplets hitting the floor"),
    "bell": ("a {c} bell ringing", "a swinging {c} bell rings", "the chime of a {c} bell",
             "a {c} church bell swinging and ringing", "ding of a swinging {c} hand bell"),
    "clock": ("a {c} clock ticking", "ticks of a {c} clock hand", "the {c} clock ticks",
              "a ticking {c} wall clock", "tick tock of a {c} clock"),
    "drum": ("a stick hitting a {c} drum", "a {c} drum being struck", "drum hits on a {c} snare",
             "someone beating a {c} drum", "a {c} drum played with a stick"),
    "kettle": ("a {c} kettle whistling", "a steaming {c} kettle whistles", "the whistle of a {c} tea kettle",
               "a {c} kettle boiling and whistling", "high whistle from a {c} kettle"),
}
CLASSES: tuple[str, ...] = tuple(PHRASINGS)

Drawer = Callable[[np.ndarray, np.ndarray, Grid], None]  # (canvas (T,h,w,3) float, t (T,1,1), grid)


@dataclass
class Scene:
    """One rendered scene. Stems, captions, events, kinds, colours and boxes are keyed by source name."""

    seed: int
    fps: float
    sample_rate: int
    frames: np.ndarray  # (T, H, W, 3) uint8, frame n shows time n / fps
    stems: dict[str, np.ndarray]  # mono float32, round(duration * sample_rate) samples each
    captions: dict[str, str]
    events: dict[str, list[float]]  # seconds of each sound onset (empty for steady sounds like the fan)
    kinds: dict[str, str]
    colours: dict[str, str]
    boxes: dict[str, tuple[int, int, int, int]]  # (top, left, height, width) in pixels

    @property
    def duration(self) -> float:
        return next(iter(self.stems.values())).shape[0] / self.sample_rate

    def mix(self) -> np.ndarray:
        return np.sum(list(self.stems.values()), axis=0).astype(np.float32)


@dataclass
class _Source:
    draw: Drawer
    audio: np.ndarray
    events: list[float] = field(default_factory=list)


def split_of(seed: int) -> str:
    return "eval" if seed >= EVAL_SEED_BASE else "train"


def caption_for(kind: str, colour: str, rng: np.random.Generator, split: str) -> str:
    """Training draws from all but the last phrasing; evaluation uses only the held-out last one."""
    templates = PHRASINGS[kind]
    template = templates[-1] if split == "eval" else templates[rng.integers(len(templates) - 1)]
    return template.format(c=colour)


def _snap(times: np.ndarray, fps: float) -> np.ndarray:
    """Round state changes to frame instants so the lit / steaming frames match the sound exactly."""
    return np.round(np.asarray(times) * fps) / fps


def _intervals(rng: np.random.Generator, duration: float, on: tuple[float, float], off: tuple[float, float],
               fps: float) -> np.ndarray:
    """Alternating on/off spans -> (N, 2) array of frame-snapped [start, end) seconds of the 'on' spans."""
    spans, t, state = [], -rng.uniform(0, off[1]), bool(rng.integers(2))
    while t < duration:
        length = rng.uniform(*(on if state else off))
        if state:
            spans.append((t, t + length))
        t += length
        state = not state
    spans = _snap(np.array(spans).reshape(-1, 2), fps)
    return np.clip(spans[spans[:, 1] > spans[:, 0]], 0.0, duration)


def _inside(times: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Boolean: each time lies in one of the [start, end) spans."""
    return ((times[..., None] >= spans[:, 0]) & (times[..., None] < spans[:, 1])).any(-1)


def _frame_instants(t: np.ndarray, fps: float) -> np.ndarray:
    """Frame times (T, 1, 1) float32 -> the same float64 instants `_snap` produces, so comparisons with snapped
    spans are exact (float32 0.84 is just below float64 0.84 and would light the lamp one frame late)."""
    return _snap(t[:, 0, 0].astype(np.float64), fps)


def _sample_times(n: int, sr: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / sr


# --- the classes: each samples its parameters once and returns the picture and the sound made from them ---

def _ball(rng, colour, accent, duration, sr, fps) -> _Source:
    r = rng.uniform(0.08, 0.14)
    floor = 0.9
    period = rng.uniform(0.45, 1.1)
    height = rng.uniform(0.3, floor - 2 * r - 0.1)
    phase = rng.uniform(0, period)
    x0, vx = rng.uniform(r, 1 - r), rng.uniform(-0.3, 0.3)
    span = 1 - 2 * r

    def draw_(canvas, t, g):
        x = r + _triangle(x0 - r + vx * t, span)
        y = floor - r - height * np.abs(np.sin(np.pi * (t - phase) / period))
        draw.paint(canvas, draw.rect(g, floor, -1.0, 2.0, 2.0), accent)
        draw.paint(canvas, draw.disc(g, y, x, r), colour)

    k0 = int(np.ceil(-phase / period))
    events = [phase + k * period for k in range(k0, int(np.ceil((duration - phase) / period)))]
    events = [e for e in events if 0 <= e < duration]
    f0 = rng.uniform(55, 95)
    thud = sound.decay_tone(sr, [f0, 2.1 * f0], [1.0, 0.3], rng.uniform(0.05, 0.09), glide=0.3)
    thud[: len(thud)] += 0.3 * _pad(sound.noise_burst(rng, sr, 100, 400, 0.01), len(thud))
    audio = np.zeros(int(round(duration * sr)), np.float32)
    sound.place(audio, thud, events, sr)
    return _Source(draw_, audio, events)


def _triangle(x: np.ndarray, span: float) -> np.ndarray:
    """Position bouncing between 0 and span for unbounded travel x (reflection at the walls)."""
    return span - np.abs(np.mod(x, 2 * span) - span)


def _pad(x: np.ndarray, n: int) -> np.ndarray:
    return np.pad(x, (0, max(0, n - len(x))))[:n]


def _beacon(rng, colour, accent, duration, sr, fps) -> _Source:
    r = rng.uniform(0.12, 0.2)
    cx, cy = 0.5, 0.35
    spans = _intervals(rng, duration, (0.2, 0.8), (0.2, 0.9), fps)
    dim = colour * 0.25 + 10

    def draw_(canvas, t, g):
        lit = _inside(_frame_instants(t, fps), spans)[:, None, None, None]
        draw.paint(canvas, draw.rect(g, cy, cx - 0.03, 1.0, cx + 0.03), accent)
        draw.paint(canvas, draw.disc(g, cy, cx, r * 1.6) * 0.35 * lit[..., 0], colour)
        draw.paint(canvas, draw.disc(g, cy, cx, r), np.where(lit, colour, dim))

    n = int(round(duration * sr))
    active = _inside(_sample_times(n, sr), spans)
    f = rng.uniform(900, 1400)
    audio = sound.tone(np.full(n, f), sr, (1.0, 0.2)) * sound.gate(active, sr)
    return _Source(draw_, audio, [float(s) for s in spans[:, 0]])


def _fan(rng, colour, accent, duration, sr, fps) -> _Source:
    blades = int(rng.integers(3, 5))
    length = rng.uniform(0.3, 0.42)
    base, amp = rng.uniform(0.5, 1.1), rng.uniform(0.2, 0.5)  # revolutions per second
    wobble, phi = rng.uniform(2.0, 6.0), rng.uniform(0, 2 * np.pi)
    cx, cy = 0.5, 0.5

    def turns(t):  # integral of the speed base + amp*sin(2 pi t / wobble + phi)
        return base * t - amp * wobble / (2 * np.pi) * (np.cos(2 * np.pi * t / wobble + phi) - np.cos(phi))

    def speed(t):
        return base + amp * np.sin(2 * np.pi * t / wobble + phi)

    def draw_(canvas, t, g):
        draw.paint(canvas, draw.spokes(g, cy, cx, 2 * np.pi * turns(t), blades, length, 0.08), colour)
        draw.paint(canvas, draw.disc(g, cy, cx, 0.06), accent)

    n = int(round(duration * sr))
    freq = 90.0 + 120.0 * speed(_sample_times(n, sr))  # hum pitch follows the spin speed
    audio = sound.tone(freq, sr, (1.0, 0.5, 0.3, 0.2)) + 0.1 * sound.band_noise(rng, sr, n, 200, 800)
    return _Source(draw_, audio.astype(np.float32), [])


def _rain(rng, colour, accent, duration, sr, fps) -> _Source:
    ground = 0.9
    peak_rate, period, phi = rng.uniform(10, 24), rng.uniform(2.0, 6.0), rng.uniform(0, 2 * np.pi)
    # Poisson impacts thinned by a slowly varying rate: the density of drops (and of clicks) swells and ebbs.
    candidates = np.sort(rng.uniform(0, duration + 1.0, rng.poisson(peak_rate * (duration + 1.0))))
    keep = rng.uniform(size=candidates.size) < 0.5 + 0.5 * np.sin(2 * np.pi * candidates / period + phi)
    impacts = candidates[keep]
    speeds = rng.uniform(1.0, 1.8, impacts.size)  # slow enough that several drops are in the air at once
    xs = rng.uniform(0.05, 0.95, impacts.size)
    streak = 0.08

    def draw_(canvas, t, g):
        draw.paint(canvas, draw.rect(g, ground, -1.0, 2.0, 2.0), accent)
        times = t[:, 0, 0]
        for hit, v, x in zip(impacts, speeds, xs):
            frames = np.nonzero((times > hit - (ground + streak) / v) & (times <= hit))[0]
            if frames.size:
                y = ground - v * (hit - times[frames])[:, None, None]
                part = canvas[frames]  # fancy indexing copies: paint the few frames in flight, write back
                draw.paint(part, draw.rect(g, y - streak, x - 0.0175, y, x + 0.0175), colour)
                canvas[frames] = part

    audio = np.zeros(int(round(duration * sr)), np.float32)
    hiss = sound.band_noise(rng, sr, audio.size, 2000, 7000)  # one filter run; each drop gets its own slice
    burst_t = np.arange(int(0.05 * sr)) / sr
    for hit in impacts[impacts < duration]:
        start = int(rng.integers(audio.size - burst_t.size))
        burst = hiss[start:start + burst_t.size] * np.exp(-burst_t / rng.uniform(0.004, 0.01))
        sound.place(audio, burst.astype(np.float32), [hit], sr, rng.uniform(0.5, 1.0))
    return _Source(draw_, audio, [float(e) for e in impacts[impacts < duration]])


def _bell(rng, colour, accent, duration, sr, fps) -> _Source:
    rod, amplitude = rng.uniform(0.45, 0.6), rng.uniform(0.35, 0.6)
    period, phi = rng.uniform(0.8, 1.6), rng.uniform(0, 2 * np.pi)
    py, px = 0.1, 0.5

    def draw_(canvas, t, g):
        theta = amplitude * np.sin(2 * np.pi * t / period + phi)
        ey, ex = py + rod * np.cos(theta), px + rod * np.sin(theta)
        draw.paint(canvas, draw.rect(g, 0.05, 0.2, 0.1, 0.8), accent)
        draw.paint(canvas, draw.segment(g, py, px, ey, ex, 0.03), accent)
        draw.paint(canvas, draw.disc(g, ey, ex, 0.11), colour)
        draw.paint(canvas, draw.disc(g, ey + 0.1 * np.cos(theta), ex + 0.1 * np.sin(theta), 0.03), accent)

    # The bell rings at each extreme of the swing, where the angular speed is zero.
    k = np.arange(-2, int(2 * duration / period) + 3)
    events = (np.pi / 2 + k * np.pi - phi) * period / (2 * np.pi)
    events = [float(e) for e in events if 0 <= e < duration]
    f0 = rng.uniform(420, 700)
    ring = sound.decay_tone(sr, f0 * np.array([1.0, 1.5, 2.0, 2.74, 3.76]), [1.0, 0.5, 0.6, 0.3, 0.2],
                            rng.uniform(0.25, 0.45))
    audio = np.zeros(int(round(duration * sr)), np.float32)
    sound.place(audio, ring, events, sr)
    return _Source(draw_, audio, events)


def _clock(rng, colour, accent, duration, sr, fps) -> _Source:
    interval, step = rng.uniform(0.25, 0.7), np.deg2rad(rng.uniform(6, 30))
    ticks = np.arange(rng.uniform(0, interval), duration, interval)
    a0 = rng.uniform(0, 2 * np.pi)

    def draw_(canvas, t, g):
        angle = a0 + step * np.searchsorted(ticks, t, side="right")  # the hand jumps at each tick
        draw.paint(canvas, draw.disc(g, 0.5, 0.5, 0.42), accent)
        draw.paint(canvas, draw.segment(g, 0.5, 0.5, 0.5 - 0.33 * np.cos(angle), 0.5 + 0.33 * np.sin(angle), 0.06),
                   colour)
        draw.paint(canvas, draw.disc(g, 0.5, 0.5, 0.05), colour)

    f = rng.uniform(3500, 5000)
    click = sound.decay_tone(sr, [f, 1.5 * f], [1.0, 0.4], 0.004)
    click += 0.5 * _pad(sound.noise_burst(rng, sr, 3000, 7000, 0.002), len(click))
    audio = np.zeros(int(round(duration * sr)), np.float32)
    sound.place(audio, click, ticks, sr)
    return _Source(draw_, audio, [float(x) for x in ticks])


def _drum(rng, colour, accent, duration, sr, fps) -> _Source:
    hits = np.cumsum(rng.uniform(0.3, 0.9, int(duration / 0.3) + 2)) - rng.uniform(0, 0.6)
    hits = hits[(hits >= 0) & (hits < duration)]
    pivot_y, pivot_x, tip_y, tip_x = 0.3, 0.88, 0.6, 0.5
    rest = np.arctan2(tip_y - pivot_y, tip_x - pivot_x)
    stick = np.hypot(tip_y - pivot_y, tip_x - pivot_x)
    lift = rng.uniform(0.5, 0.9)
    padded = np.concatenate([[-10.0], hits, [duration + 10.0]])

    def draw_(canvas, t, g):
        i = np.searchsorted(padded, t, side="right")
        since, until = t - padded[i - 1], padded[i] - t
        a = rest + lift * np.minimum(1.0, np.minimum(since / 0.15, until / 0.08))  # down exactly at each hit
        draw.paint(canvas, draw.rect(g, 0.62, 0.22, 0.86, 0.78), colour)
        draw.paint(canvas, draw.ellipse(g, 0.86, 0.5, 0.05, 0.28), colour)
        draw.paint(canvas, draw.ellipse(g, 0.62, 0.5, 0.06, 0.28), 0.5 * (colour + accent))
        draw.paint(canvas, draw.segment(g, pivot_y, pivot_x, pivot_y + stick * np.sin(a),
                                        pivot_x + stick * np.cos(a), 0.04), accent)

    f0 = rng.uniform(140, 220)
    hit = 0.7 * sound.decay_tone(sr, [f0, 1.6 * f0], [1.0, 0.5], 0.12, glide=0.15)
    hit += 0.8 * _pad(sound.noise_burst(rng, sr, 800, 4000, 0.04), len(hit))
    audio = np.zeros(int(round(duration * sr)), np.float32)
    sound.place(audio, hit, hits, sr)
    return _Source(draw_, audio, [float(x) for x in hits])


def _kettle(rng, colour, accent, duration, sr, fps) -> _Source:
    spans = _intervals(rng, duration, (0.8, 2.0), (0.5, 1.5), fps)
    tip_y, tip_x = 0.45, 0.86
    puffs, rise = 4, rng.uniform(1.0, 2.0)
    steam = np.array([235.0, 235.0, 235.0], np.float32)

    def draw_(canvas, t, g):
        steaming = _inside(_frame_instants(t, fps), spans)[:, None, None]
        draw.paint(canvas, draw.rect(g, 0.5, 0.25, 0.88, 0.75), colour)
        draw.paint(canvas, draw.segment(g, 0.65, 0.72, tip_y, tip_x, 0.06), colour)
        draw.paint(canvas, draw.ellipse(g, 0.5, 0.5, 0.05, 0.2), accent)
        for k in range(puffs):
            p = np.mod(t * rise + k / puffs, 1.0)
            mask = draw.disc(g, tip_y - 0.05 - 0.35 * p, tip_x - 0.08 * p, 0.03 + 0.06 * p)
            draw.paint(canvas, mask * (0.8 * (1 - p)) * steaming, steam)

    n = int(round(duration * sr))
    ts = _sample_times(n, sr)
    f = rng.uniform(2200, 3200)
    whistle = sound.tone(f * (1 + 0.015 * np.sin(2 * np.pi * 5 * ts)), sr, (1.0, 0.1))
    whistle += 0.3 * sound.band_noise(rng, sr, n, 0.85 * f, 1.15 * f)
    audio = whistle * sound.gate(_inside(ts, spans), sr, ramp=0.02)
    return _Source(draw_, audio.astype(np.float32), [float(s) for s in spans[:, 0]])


BUILDERS: dict[str, Callable[..., _Source]] = {
    "ball": _ball, "beacon": _beacon, "fan": _fan, "rain": _rain,
    "bell": _bell, "clock": _clock, "drum": _drum, "kettle": _kettle,
}
assert tuple(BUILDERS) == CLASSES


def _background(rng: np.random.Generator, height: int, width: int, avoid: Sequence[np.ndarray]) -> np.ndarray:
    """A muted two-colour gradient with faint stripes, far enough from every source colour to stay visible."""
    for _ in range(20):
        c1, c2 = (0.5 * rng.uniform(20, 220, 3) + 0.5 * rng.uniform(40, 180) for _ in range(2))
        if all(np.linalg.norm((c1 + c2) / 2 - a) > 90 for a in avoid):
            break
    g = Grid.of(height, width)
    angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 10)
    stripes = 10 * np.sin(2 * np.pi * freq * (g.yy * np.cos(angle) + g.xx * np.sin(angle)))
    ramp = (g.yy + 0 * g.xx)[..., None]
    return (c1 * (1 - ramp) + c2 * ramp + stripes[..., None]).astype(np.float32)


def _accent(colour: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Colour of secondary parts (floors, poles, sticks, clock faces): the grey farthest from both the
    source colour and the background, so moving parts stay visible against either."""
    greys = [np.full(3, v, np.float32) for v in (20.0, 128.0, 240.0)]
    return max(greys, key=lambda g: min(np.linalg.norm(g - colour), np.linalg.norm(g - background)))


def frame_count(duration: float, fps: float) -> int:
    """Frames covering `duration`, as the FoleyModel contract counts them: int(fps * duration)."""
    return int(fps * duration + 1e-6)


def make_scene(seed: int, *, size: int | tuple[int, int] = 64, duration: float = 8.0, fps: float = FPS,
               sample_rate: int = SAMPLE_RATE, sources: int = 1, kinds: Sequence[str] | None = None,
               colours: Sequence[str] | None = None, video: bool = True) -> Scene:
    """Render scene `seed` at `size` (square side or (height, width)) with `sources` sources side by side.

    `kinds` / `colours` force the class / colour name of each source (else drawn from the seed). The same
    arguments always give the same scene; seeds >= EVAL_SEED_BASE use the held-out caption phrasings.
    `video=False` skips drawing (frames has no frames) for audio-only uses; the stems are unchanged.
    """
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    split = split_of(seed)
    kinds = list(kinds) if kinds is not None else [CLASSES[i] for i in rng.integers(len(CLASSES), size=sources)]
    names = list(colours) if colours is not None else [list(COLOURS)[i] for i in
                                                       rng.choice(len(COLOURS), size=len(kinds), replace=False)]
    unknown = [k for k in kinds if k not in BUILDERS] + [c for c in names if c not in COLOURS]
    if unknown or len(names) != len(kinds):
        raise ValueError(f"unknown classes/colours {unknown} or {len(names)} colours for {len(kinds)} sources")
    rgb = [np.array(COLOURS[c], np.float32) for c in names]

    frames_n = frame_count(duration, fps) if video else 0
    background = _background(rng, height, width, rgb)
    canvas = np.repeat(background[None], frames_n, axis=0)
    t = (np.arange(frames_n, dtype=np.float32) / np.float32(fps))[:, None, None]
    scene = Scene(seed, fps, sample_rate, np.empty(0, np.uint8), {}, {}, {}, {}, {}, {})
    column = width / len(kinds)
    for i, (kind, colour_name, colour) in enumerate(zip(kinds, names, rgb)):
        name = f"{i}_{kind}"
        level = rng.uniform(0.4, 0.8)
        scene.captions[name] = caption_for(kind, colour_name, rng, split)
        # Layout has its own generator: the sound and caption of a seed are the same at every resolution.
        layout = np.random.default_rng([seed, i, 1])
        side = int(layout.uniform(0.7, 0.95) * min(height, column))
        top = int(layout.random() * (height - side + 1))
        left = int(i * column + layout.random() * (int(column) - side + 1))
        accent = _accent(colour, background.mean(axis=(0, 1)))
        src = BUILDERS[kind](np.random.default_rng([seed, i]), colour, accent, duration, sample_rate, fps)
        if video:
            src.draw(canvas[:, top:top + side, left:left + side], t, Grid.of(side, side))
        peak = float(np.abs(src.audio).max())
        scene.stems[name] = (src.audio * (level / peak if peak > 0 else 0.0)).astype(np.float32)
        scene.events[name] = src.events
        scene.kinds[name], scene.colours[name] = kind, colour_name
        scene.boxes[name] = (top, left, side, side)
    scene.frames = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return scene
