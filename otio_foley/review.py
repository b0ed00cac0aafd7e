"""The review sheet: per clip, a strip of thumbnails with each stem's waveform and spectrogram under it.

Editors check at a glance whether a sound lands on what they see, so every row of a clip shares one
time axis: x pixels map to the same instant in the thumbnails, the waveforms and the spectrograms.
Writes OUTDIR/review.png (all clips stacked) and OUTDIR/review.html (self-contained: the images are
inlined as data: URIs, so the file can be mailed or attached to a ticket). Pillow only, no matplotlib.
"""
from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw, ImageFont

from otio_foley.atomic import write_bytes_atomic, write_text_atomic
from otio_foley.errors import UserError
from otio_foley.media import decode_frames

if TYPE_CHECKING:
    from otio_foley.models.pipeline import FoleyModel
    from otio_foley.render import StemResult

WIDTH = 960  # pixels for the clip's whole stem duration
LABEL_W = 220  # left column with the prompt text
THUMB_H, WAVE_H, SPEC_H, GAP = 72, 48, 72, 6
THUMBS = 8
_BG, _FG, _WAVE = (24, 24, 28), (230, 230, 230), (120, 200, 255)
# dark blue -> purple -> orange -> pale yellow: readable spectrogram colours without matplotlib
_PALETTE_STOPS = np.array([[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]], float)


def write_review(outdir: Path, results: Sequence[StemResult], model: FoleyModel) -> Path:
    """Draw the sheet for every written stem of `results`; returns the path of review.html."""
    by_shot: dict[int, list[StemResult]] = defaultdict(list)
    for result in results:
        if result.path is not None:
            by_shot[result.plan.shot.index].append(result)
    panels = [_clip_panel(rows, model) for _, rows in sorted(by_shot.items())]
    sheet = _stack(panels)
    png = outdir / "review.png"
    write_bytes_atomic(png, _png_bytes(sheet))
    page = outdir / "review.html"
    write_text_atomic(page, _html(by_shot, panels))
    return page


def _clip_panel(rows: Sequence[StemResult], model: FoleyModel) -> Image.Image:
    plan = rows[0].plan
    height = THUMB_H + 22 + len(rows) * (WAVE_H + SPEC_H + 2 * GAP)
    img = Image.new("RGB", (LABEL_W + WIDTH, height), _BG)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    draw.text((6, 4), f"#{plan.shot.index} {plan.shot.name}  {plan.shot.record_start_tc}", fill=_FG, font=font)
    pictured = next((r.plan for r in rows if r.plan.source_range is not None), plan)
    img.paste(_thumbnails(pictured, model), (LABEL_W, 20))
    y = THUMB_H + 22
    for result in rows:
        audio, rate = sf.read(result.path, dtype="float32", always_2d=False)
        draw.text((6, y + 4), _wrap(result.plan.source.prompt, 28), fill=_FG, font=font)
        draw.text((6, y + WAVE_H + SPEC_H - 10), f"seed {result.plan.seed}  {result.status}", fill=(150, 150, 150),
                  font=font)
        img.paste(_waveform(audio), (LABEL_W, y))
        img.paste(_spectrogram(audio, rate), (LABEL_W, y + WAVE_H + GAP))
        y += WAVE_H + SPEC_H + 2 * GAP
    return img


def _thumbnails(plan, model: FoleyModel) -> Image.Image:
    """THUMBS frames evenly over the stem's duration (the picture the sound was made for)."""
    strip = Image.new("RGB", (WIDTH, THUMB_H), (60, 60, 60))
    if plan.source_range is None:
        ImageDraw.Draw(strip).text((8, THUMB_H // 2 - 6), "no picture (offscreen sources)", fill=_FG)
        return strip
    try:
        frames = decode_frames(plan.shot.media_path, plan.source_range.start_time.to_seconds(), THUMBS, fps=THUMBS / plan.duration,
                               size=THUMB_H, speed=abs(plan.shot.time_scalar), clip=plan.shot.name)
    except UserError:
        ImageDraw.Draw(strip).text((8, THUMB_H // 2 - 6), "picture unreadable", fill=_FG)
        return strip
    cell = WIDTH // THUMBS
    rgb = ((frames.permute(0, 2, 3, 1).numpy() + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    for i, frame in enumerate(rgb):
        strip.paste(Image.fromarray(frame).resize((cell - 2, THUMB_H)), (i * cell + 1, 0))
    return strip


def _waveform(audio: np.ndarray) -> Image.Image:
    """Min/max envelope per pixel column, so short transients stay visible at any zoom."""
    img = Image.new("RGB", (WIDTH, WAVE_H), (34, 34, 40))
    draw = ImageDraw.Draw(img)
    mid = WAVE_H / 2
    edges = np.linspace(0, len(audio), WIDTH + 1).astype(int)
    for x in range(WIDTH):
        chunk = audio[edges[x]:max(edges[x + 1], edges[x] + 1)]
        if len(chunk):
            draw.line([(x, mid - chunk.max() * mid), (x, mid - chunk.min() * mid)], fill=_WAVE)
    return img


def _spectrogram(audio: np.ndarray, rate: int, n_fft: int = 2048) -> Image.Image:
    """Magnitude STFT in dB (80 dB below the stem's peak to white), on a log-frequency axis from 40 Hz
    to Nyquist (where Foley lives; a linear axis spends most rows on empty highs), low at the bottom."""
    hop = max(1, len(audio) // WIDTH)
    padded = np.pad(audio, (n_fft // 2, n_fft // 2))
    starts = np.arange(0, max(1, len(padded) - n_fft + 1), hop)
    windows = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[starts] * np.hanning(n_fft)
    magnitude = np.abs(np.fft.rfft(windows, axis=1))  # (frames, bins)
    bins = np.fft.rfftfreq(n_fft, 1.0 / rate)
    rows = np.geomspace(40.0, rate / 2, SPEC_H)[::-1]
    picked = magnitude[:, np.clip(np.searchsorted(bins, rows), 0, len(bins) - 1)].T  # (SPEC_H, frames)
    db = 20 * np.log10(picked + 1e-9)
    level = np.clip((db - (db.max() - 80.0)) / 80.0, 0.0, 1.0)
    stops = np.linspace(0, 1, len(_PALETTE_STOPS))
    rgb = np.stack([np.interp(level, stops, _PALETTE_STOPS[:, c]) for c in range(3)], -1).astype(np.uint8)
    return Image.fromarray(rgb).resize((WIDTH, SPEC_H), Image.Resampling.BILINEAR)


def _stack(panels: Sequence[Image.Image]) -> Image.Image:
    height = sum(p.height for p in panels) + GAP * max(0, len(panels) - 1)
    sheet = Image.new("RGB", (LABEL_W + WIDTH, max(1, height)), (0, 0, 0))
    y = 0
    for panel in panels:
        sheet.paste(panel, (0, y))
        y += panel.height + GAP
    return sheet


def _html(by_shot: dict[int, list[StemResult]], panels: Sequence[Image.Image]) -> str:
    sections = []
    for (_, rows), panel in zip(sorted(by_shot.items()), panels):
        shot = rows[0].plan.shot
        items = "".join(
            f"<li><b>{html.escape(r.plan.source.prompt)}</b> (seed {r.plan.seed}, {r.status}) "
            f"<code>{html.escape(r.path.name)}</code></li>" for r in rows)
        sections.append(
            f"<section><h2>#{shot.index} {html.escape(shot.name)} <small>{shot.record_start_tc}</small></h2>"
            f'<img alt="{html.escape(shot.name)}" src="data:image/png;base64,{base64.b64encode(_png_bytes(panel)).decode("ascii")}">'
            f"<ul>{items}</ul></section>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>otio-foley review</title><style>"
            "body{background:#111;color:#eee;font-family:sans-serif}img{max-width:100%}code{color:#9cf}"
            "</style></head><body><h1>otio-foley review</h1>" + "".join(sections) + "</body></html>\n")


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines[:3])


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()
