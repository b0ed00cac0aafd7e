"""Anti-aliased shapes as coverage masks, vectorised over time with numpy broadcasting.

Coordinates are in units of the drawing region's height (y down in [0, 1], x in [0, width/height]) so a
source looks the same at any resolution. Shape parameters may be scalars or arrays shaped (T, 1, 1), which
gives masks shaped (T, H, W) for a whole clip in one call instead of a Python loop over frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ArrayLike = np.ndarray | float


@dataclass(frozen=True)
class Grid:
    """Pixel-centre coordinates of one rectangular region (float32, shapes (H, 1) and (1, W))."""

    yy: np.ndarray
    xx: np.ndarray
    px: float  # one pixel in these units: the width of the anti-aliased edge

    @classmethod
    def of(cls, height: int, width: int) -> "Grid":
        px = 1.0 / height
        yy = ((np.arange(height, dtype=np.float32) + 0.5) * px)[:, None]
        xx = ((np.arange(width, dtype=np.float32) + 0.5) * px)[None, :]
        return cls(yy, xx, px)

    @property
    def aspect(self) -> float:
        return self.xx.shape[1] / self.yy.shape[0]


def _coverage(signed_inside: np.ndarray, px: float) -> np.ndarray:
    """Signed distance inside the shape (units) -> pixel coverage in [0, 1] with a one-pixel ramp."""
    return np.clip(signed_inside / px + 0.5, 0.0, 1.0).astype(np.float32, copy=False)


def disc(g: Grid, cy: ArrayLike, cx: ArrayLike, r: ArrayLike) -> np.ndarray:
    return _coverage(r - np.sqrt((g.yy - cy) ** 2 + (g.xx - cx) ** 2), g.px)


def ellipse(g: Grid, cy: ArrayLike, cx: ArrayLike, ry: float, rx: float) -> np.ndarray:
    # Distance along the normalised radius, scaled back by the smaller semi-axis: good enough for the edge ramp.
    d = np.sqrt(((g.yy - cy) / ry) ** 2 + ((g.xx - cx) / rx) ** 2)
    return _coverage((1.0 - d) * min(ry, rx), g.px)


def rect(g: Grid, y0: ArrayLike, x0: ArrayLike, y1: ArrayLike, x1: ArrayLike) -> np.ndarray:
    inside = np.minimum(np.minimum(g.yy - y0, y1 - g.yy), np.minimum(g.xx - x0, x1 - g.xx))
    return _coverage(inside, g.px)


def segment(g: Grid, y0: ArrayLike, x0: ArrayLike, y1: ArrayLike, x1: ArrayLike, width: float) -> np.ndarray:
    """A thick line from (y0, x0) to (y1, x1) with round caps."""
    dy, dx = y1 - y0, x1 - x0
    length2 = np.maximum(dy * dy + dx * dx, 1e-12)
    s = np.clip(((g.yy - y0) * dy + (g.xx - x0) * dx) / length2, 0.0, 1.0)
    dist = np.sqrt((g.yy - y0 - s * dy) ** 2 + (g.xx - x0 - s * dx) ** 2)
    return _coverage(width / 2 - dist, g.px)


def spokes(g: Grid, cy: float, cx: float, angle: ArrayLike, count: int, length: float, width: float) -> np.ndarray:
    """`count` evenly spaced blades from the centre (angle 0 = straight up, clockwise), rotated by `angle`.

    One polar computation for all blades instead of one segment per blade.
    """
    dy, dx = g.yy - cy, g.xx - cx
    radius = np.sqrt(dy * dy + dx * dx)
    theta = np.arctan2(dx, -dy)  # static per pixel; only the rotation varies with time
    sector = 2 * np.pi / count
    off = np.mod(theta - angle + sector / 2, sector) - sector / 2  # angle to the nearest blade
    across = radius * np.abs(np.sin(off))
    along = np.where(np.abs(off) < np.pi / 2, radius, -radius)
    return np.minimum(_coverage(width / 2 - across, g.px), _coverage(length - along, g.px))


def paint(canvas: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Alpha-blend `colour` ((3,) or (T, 1, 1, 3), 0..255) into float canvas (T, H, W, 3) in place.

    Only the bounding box of the mask (over all frames) is touched: blending is the costly step and most
    shapes cover a small part of their region.
    """
    cover = mask if mask.ndim == 2 else mask.max(axis=0)
    rows, cols = np.flatnonzero(cover.any(axis=1)), np.flatnonzero(cover.any(axis=0))
    if rows.size == 0:
        return
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    part = canvas[(slice(None), *window)]
    part += mask[(Ellipsis, *window)][..., None] * (colour - part)
