"""The YAML cue sheet: which sounds each clip gets. Grammar in docs/cue-sheet.md, schema in cue_schema.json.

`load_cue_sheet(path)` parses and validates; every error names file:line:column and the YAML path
(`cues.yaml:14:7: clips[2].sources[0]: 'prompt' is required`), which is why the YAML is composed into
nodes (they carry marks) instead of plain `safe_load`. `match_cues(sheet, shots)` assigns sources to
shots.
"""
from __future__ import annotations

import difflib
import fnmatch
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import jsonschema
import opentimelineio as otio
import yaml

from otio_foley.edit import intersect, timecode_rate
from otio_foley.errors import UserError
from otio_foley.shots import Shot

MATCHERS = ("clip", "index", "media", "marker", "range")
BUILTIN_DEFAULTS = {"steps": 25, "cfg": 4.5, "seed": 42, "negative_prompt": "", "gain_db": 0.0}
_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;])(\d{2,3})$")


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
    where: str  # "cues.yaml:3:10: clips[0]" (line/column of the matcher's value)


@dataclass(frozen=True)
class CueSheet:
    path: Path
    clips: tuple[ClipCue, ...]
    scene: str | None = None
    model: str | None = None  # defaults.model


@dataclass(frozen=True)
class ShotSources:
    """The sources one shot gets, in sheet order (what planning consumes)."""

    shot: Shot
    sources: tuple[SourceCue, ...]


# ----------------------------------------------------------------------------------------------
# YAML with positions
# ----------------------------------------------------------------------------------------------

YamlPath = tuple  # ("clips", 2, "sources", 0)


def yaml_path(path: Sequence) -> str:
    """("clips", 2, "sources", 0) -> "clips[2].sources[0]"; () -> "top level"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "top level"


class _Document:
    """Plain data from a YAML node tree plus the line:column of every value and key, by YAML path."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.value_marks: dict[YamlPath, tuple[int, int]] = {}
        self.key_marks: dict[YamlPath, tuple[int, int]] = {}
        self._scalars = yaml.SafeLoader("")  # only used to construct scalar values by their tag

    def where(self, path: YamlPath, *, key: bool = False, label: YamlPath | None = None) -> str:
        """`file:line:column: yaml.path` of the value (or key) at `path`, shown as `label` if given."""
        marks = self.key_marks if key and path in self.key_marks else self.value_marks
        shown = path if label is None else label
        while path not in marks and path:
            path = path[:-1]
        line, column = marks.get(path, (1, 1))
        return f"{self.name}:{line}:{column}: {yaml_path(shown)}"

    def build(self, node: yaml.Node, path: YamlPath = ()) -> Any:
        self.value_marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            data: dict = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                key = key if isinstance(key, str) else str(key)
                self.key_marks[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in data:
                    raise UserError(f"duplicate key '{key}'", where=self.where(path + (key,), key=True),
                                    fix="keep one")
                data[key] = self.build(value_node, path + (key,))
            return data
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        # YAML 1.1 reads an unquoted 10:00:00:00 as a base-60 integer; a colon always means text here
        # (timecodes), so such scalars stay strings.
        if node.style is None and ":" in node.value and node.tag != "tag:yaml.org,2002:str":
            return node.value
        return self._scalars.construct_object(node, deep=True)


def _compose(path: Path) -> tuple[yaml.Node | None, _Document]:
    name = str(path)
    if not path.is_file():
        raise UserError("cue sheet not found", path=name, fix="check the path, or create one with `otio-foley cues init EDIT`")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text (byte {exc.start})", path=name, fix="save the cue sheet as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, name) from None
    return node, _Document(name)


def _yaml_error(exc: yaml.MarkedYAMLError, name: str) -> UserError:
    """Syntax errors and unsafe/unknown tags (`!!python/object`) alike, at their line:column."""
    mark = exc.problem_mark or exc.context_mark
    where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
    problem = exc.problem or exc.context or "syntax error"
    return UserError(f"broken YAML: {problem}", where=where, fix="check indentation, colons and quotes")


# ----------------------------------------------------------------------------------------------
# Validation messages
# ----------------------------------------------------------------------------------------------

_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number",
               "number": "a number", "boolean": "true or false"}


def _schema() -> dict:
    return json.loads(resources.files("otio_foley").joinpath("cue_schema.json").read_text(encoding="utf-8"))


def _shown(value: Any) -> str:
    return "nothing" if value is None else repr(value) if not isinstance(value, (dict, list)) else type(value).__name__


def _describe(error: jsonschema.ValidationError, doc: _Document) -> UserError:
    """One jsonschema error -> one UserError at the right line/column with a plain-words message."""
    path = tuple(error.absolute_path)
    kind, value = error.validator, error.instance
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = [k for k in value if k not in allowed]
        key = min(unknown, key=lambda k: doc.key_marks.get(path + (k,), (0, 0)))
        close = difflib.get_close_matches(key, allowed, n=1)
        fix = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(allowed)
        return UserError(f"unknown key '{key}'", where=doc.where(path + (key,), key=True, label=path), fix=fix)
    where = doc.where(path)
    if kind == "required":
        missing = next(key for key in error.validator_value if key not in value)
        if missing == "sources":
            return UserError("'sources' is required", where=where, fix="add a list of sources, or [] for none")
        return UserError(f"'{missing}' is required", where=where)
    if kind == "oneOf":
        present = [m for m in MATCHERS if m in value]
        if not present:
            return UserError("no matcher", where=where, fix="add exactly one of: " + ", ".join(MATCHERS))
        return UserError(f"several matchers ({', '.join(present)})", where=where,
                         fix="use exactly one per entry; write several entries instead")
    if kind == "type":
        return UserError(f"must be {_TYPE_NAMES.get(error.validator_value, error.validator_value)}, "
                         f"got {_shown(value)}", where=where)
    if kind == "const":
        return UserError(f"must be {error.validator_value}, got {_shown(value)}", where=where,
                         fix="this otio-foley reads cue sheet version 1")
    if kind == "enum":
        return UserError(f"must be one of {', '.join(error.validator_value)}, got {_shown(value)}", where=where)
    if kind in ("minimum", "maximum"):
        sign = ">=" if kind == "minimum" else "<="
        return UserError(f"must be {sign} {error.validator_value}, got {_shown(value)}", where=where)
    if kind == "minLength" or (kind == "pattern" and path and path[-1] == "prompt"):
        return UserError("must not be empty", where=where)
    if kind == "pattern":
        return UserError(f"{_shown(value)} is not START-END record timecodes", where=where,
                         fix="e.g. range: 01:00:10:00-01:00:12:00")
    return UserError(error.message, where=where)


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------

def load_cue_sheet(path: str | Path) -> CueSheet:
    """Parse, validate against cue_schema.json and resolve defaults; the first problem is a UserError."""
    path = Path(path)
    node, doc = _compose(path)
    if node is None:
        raise UserError("the cue sheet is empty", path=str(path), fix="start from `otio-foley cues init EDIT`")
    try:
        data = doc.build(node)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, str(path)) from None
    validator = jsonschema.Draft202012Validator(_schema())
    errors = list(validator.iter_errors(data))
    if errors:
        first = min(errors, key=lambda e: (doc.value_marks.get(tuple(e.absolute_path), (0, 0)), -len(e.absolute_path)))
        raise _describe(first, doc)
    defaults = {**BUILTIN_DEFAULTS, **data.get("defaults", {})}
    clips = []
    for i, entry in enumerate(data["clips"]):
        matcher = next(m for m in MATCHERS if m in entry)
        sources = tuple(_source(src, defaults, doc.where(("clips", i, "sources", j)))
                        for j, src in enumerate(entry["sources"]))
        clips.append(ClipCue(matcher=matcher, value=entry[matcher], sources=sources,
                             where=doc.where(("clips", i, matcher), label=("clips", i))))
    return CueSheet(path=path, clips=tuple(clips), scene=defaults.get("scene"), model=defaults.get("model"))


def _source(src: dict, defaults: dict, where: str) -> SourceCue:
    prompt = src["prompt"].strip()
    return SourceCue(
        prompt=prompt,
        negative_prompt=src.get("negative_prompt", defaults["negative_prompt"]),
        track=src.get("track", f"FX {prompt}"),
        gain_db=float(src.get("gain_db", defaults["gain_db"])),
        seed=src.get("seed", defaults["seed"]),
        steps=src.get("steps", defaults["steps"]),
        cfg=float(src.get("cfg", defaults["cfg"])),
        mode=src.get("mode", "onscreen"),
        variations=src.get("variations", 1),
        model=defaults.get("model"),
        where=where,
    )


# ----------------------------------------------------------------------------------------------
# Matching
# ----------------------------------------------------------------------------------------------

def parse_timecode(text: str, rate: float, where: str) -> otio.opentime.RationalTime:
    """HH:MM:SS:FF (or ;FF = drop-frame) at the timeline rate; frames beyond the rate are an error."""
    match = _TIMECODE.match(text.strip())
    tc_rate = timecode_rate(rate)
    if not match:
        raise UserError(f"{text!r} is not a timecode", where=where, fix="use HH:MM:SS:FF")
    hh, mm, ss, sep, ff = match.groups()
    if int(mm) > 59 or int(ss) > 59 or int(ff) >= round(tc_rate):
        raise UserError(f"timecode {text!r} does not exist at {rate:g} fps", where=where,
                        fix=f"minutes/seconds 0-59, frames 0-{round(tc_rate) - 1}")
    if sep == ";" and round(tc_rate, 2) not in (29.97, 59.94):
        raise UserError(f"drop-frame timecode {text!r} at {rate:g} fps", where=where,
                        fix="';' is for 29.97/59.94; use ':'")
    return otio.opentime.from_timecode(f"{hh}:{mm}:{ss}{sep}{ff}", tc_rate)


def _timeline_origin(shots: Sequence[Shot]) -> otio.opentime.RationalTime:
    """global_start_time of the edit, recovered from any shot (record TC - record start)."""
    shot = shots[0]
    tc_rate = otio.opentime.RationalTime.nearest_valid_timecode_rate(shot.rate)
    start_tc = otio.opentime.from_timecode(shot.record_start_tc, tc_rate)
    return start_tc - shot.record_range.start_time.rescaled_to(tc_rate)


def _matches(cue: ClipCue, shots: Sequence[Shot]) -> list[Shot]:
    value = cue.value
    if cue.matcher == "clip":
        return [s for s in shots if fnmatch.fnmatchcase(s.name, value)]
    if cue.matcher == "index":
        return [s for s in shots if s.index == value]
    if cue.matcher == "media":
        return [s for s in shots if s.media_path is not None and
                (fnmatch.fnmatchcase(s.media_path.name, value) or fnmatch.fnmatchcase(str(s.media_path), value))]
    if cue.matcher == "marker":
        return [s for s in shots if any(fnmatch.fnmatchcase(m, value) for m in s.markers)]
    start_text, end_text = value.split("-")
    rate = shots[0].rate
    origin = _timeline_origin(shots)
    start = parse_timecode(start_text, rate, cue.where) - origin
    end = parse_timecode(end_text, rate, cue.where) - origin
    if end <= start:
        raise UserError(f"range {value!r} ends before it starts", where=cue.where, fix="write START-END")
    wanted = otio.opentime.TimeRange.range_from_start_end_time(start, end)
    return [s for s in shots if intersect(s.record_range, wanted) is not None]


def match_cues(sheet: CueSheet, shots: Sequence[Shot], *, allow_unmatched: bool = False,
               edit_name: str = "the edit") -> list[ShotSources]:
    """Sources per shot, in shot order; shots no entry gives a source are left out.

    Rule for a shot matched by several entries: its sources accumulate in sheet order. The same
    prompt on the same track twice for one shot is an error (it would render the same sound twice;
    use `variations` for takes). An entry that matches no shot is an error unless `allow_unmatched`.
    Only `offscreen` sources may render for shots without usable media.
    """
    per_shot: dict[int, list[SourceCue]] = {s.index: [] for s in shots}
    for cue in sheet.clips:
        matched = _matches(cue, shots) if shots else []
        if not matched and not allow_unmatched:
            raise UserError(f"{cue.matcher} {cue.value!r} matches no clip in {edit_name}", where=cue.where,
                            fix="check it against `otio-foley cues init EDIT`, or pass --allow-unmatched")
        for shot in matched:
            have = per_shot[shot.index]
            for source in cue.sources:
                twin = next((s for s in have if (s.prompt, s.track) == (source.prompt, source.track)), None)
                if twin is not None:
                    raise UserError(f"clip '{shot.name}' (#{shot.index}) already gets prompt '{source.prompt}' "
                                    f"on track '{source.track}' from {twin.where.split(': ')[0]}",
                                    where=source.where, fix="remove one, give it another track, or use variations")
                if source.mode == "onscreen" and shot.media_path is None:
                    raise UserError(f"clip '{shot.name}' (#{shot.index}) has no usable media ({shot.media_problem})",
                                    where=source.where, fix="set mode: offscreen for a text-only sound, or fix the media")
                have.append(source)
    return [ShotSources(shot=s, sources=tuple(per_shot[s.index])) for s in shots if per_shot[s.index]]
