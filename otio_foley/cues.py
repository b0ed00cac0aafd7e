"""The YAML cue sheet: which sounds each clip gets. Grammar in docs/cue-sheet.md.

`load_cue_sheet(path)` parses and validates (errors name file:line:column and the YAML path);
`match_cues(sheet, shots)` assigns sources to shots.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceCue:
    """One sound source to generate for a clip, with every setting resolved (defaults applied)."""

    prompt: str
    negative_prompt: str
    track: str  # track label; default "FX <prompt>"
    gain_db: float
    seed: int
    steps: int
    cfg: float
    mode: str  # "onscreen" (SelVA selective) or "offscreen" (text only, null video features)
    variations: int
    model: str | None  # registry name or path; None = the default model
    where: str  # "cues.yaml:14:7: clips[2].sources[0]" for messages


@dataclass(frozen=True)
class ClipCue:
    matcher: str  # "clip" | "index" | "media" | "marker" | "range"
    value: object
    sources: tuple[SourceCue, ...]
    where: str


@dataclass(frozen=True)
class CueSheet:
    path: Path
    clips: tuple[ClipCue, ...]
    scene: str | None = None
