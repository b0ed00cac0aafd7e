"""Deterministic shards of a render: which stems `otio-foley render --shard K/N` renders.

Every farm task plans the same edit and cue sheet on its own and must agree with the others on the split
without talking to them, so the split is a pure function of the plan:

- The unit is one clip (all its stems): the sources of a clip share the decoded frames and the video
  trunk, so splitting them across machines would repeat that work.
- A clip's cost is the seconds of audio its windows generate, cached or not: caches differ between
  nodes and fill up while the farm runs, and every task must see the same costs.
- Placement is rendezvous (highest-random-weight) hashing of the clip's identity with bounded loads
  (Mirrokni, Thorup, Zadimoghaddam 2018, "Consistent hashing with bounded loads"): clips in decreasing
  cost go to the best-ranked shard whose load stays under (1 + SLACK) x the mean. A clip's ranking
  depends only on its identity and the shard number, so changing one clip's cues moves that clip at
  most, plus the few clips the changed loads push over the bound. Plain hashing alone would not
  balance; a greedy least-loaded split would reshuffle everything on any change.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from otio_foley.errors import UserError
from otio_foley.jobs import StemPlan

SLACK = 0.10  # measured on random edits: max shard 1.10x the mean, ~5% of other clips move per cue change
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """The `index`-th (1-based) of `count` partitions."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def slug(self) -> str:
        return f"shard-{self.index:03d}-of-{self.count:03d}"


def parse_shard(text: str) -> Shard:
    """`"K/N"` with 1 <= K <= N (farm managers number tasks from 1)."""
    match = _SHARD.match(text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UserError(f"--shard {text!r} is not K/N with 1 <= K <= N", fix="e.g. --shard 3/8 for the third of eight")
    return Shard(int(match[1]), int(match[2]))


def clip_key(plan: StemPlan) -> str:
    """Identity of the plan's clip: its place and name in the edit (not its cues, which may change)."""
    return json.dumps([plan.shot.index, plan.shot.name])


def plan_cost(plan: StemPlan) -> float:
    """Seconds of audio the stem's windows generate, whether cached or not."""
    return sum(w.duration for w in plan.windows)


def _rank(key: str, shard: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{key}\0{shard}".encode()).digest()[:8], "big")


def assign(costs: Mapping[str, float], count: int, slack: float = SLACK) -> dict[str, int]:
    """Shard number (0-based) of every key; see the module docstring."""
    bound = (1 + slack) * sum(costs.values()) / count
    loads = [0.0] * count
    placed = {}
    for key, cost in sorted(costs.items(), key=lambda item: (-item[1], item[0])):
        ranked = sorted(range(count), key=lambda s: _rank(key, s), reverse=True)
        # a clip bigger than the bound fits nowhere: the least-loaded shard (ties: best ranked) takes it
        shard = next((s for s in ranked if loads[s] + cost <= bound), min(ranked, key=loads.__getitem__))
        loads[shard] += cost
        placed[key] = shard
    return placed


def select(plans: Sequence[StemPlan], shard: Shard) -> list[StemPlan]:
    """The plans of `shard`, in plan order."""
    costs: dict[str, float] = {}
    for p in plans:
        costs[clip_key(p)] = costs.get(clip_key(p), 0.0) + plan_cost(p)
    placed = assign(costs, shard.count)
    return [p for p in plans if placed[clip_key(p)] == shard.index - 1]
