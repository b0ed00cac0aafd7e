"""Jobs on a shared output folder: claim each stem under its lock, skip what is done, record what is done.

One job = one stem. Its lock (OUTDIR/.jobs/FILE.lock) keeps two workers from rendering it at once; its
record (OUTDIR/.jobs/FILE.json, written after the stem) says the stem on disk is complete and matches
the current plan: the record holds the stem's signature (`render.stem_signature`: window keys, joins,
file settings), so a stem from an older cue sheet or other settings counts as not done. `assemble`
reads these records; they work for any number of shards, re-runs and executors.

A worker first takes every free lock at once and renders those jobs, then waits in turn for the jobs
other workers hold: usually it then finds them done; if their owner died, the stale lock is broken
(see `locks`) and the job is rendered here. So every worker of a shard ends with the whole shard done.
A shot is claimed whole: once one of its stems is held elsewhere, the worker leaves the shot's other stems
to that worker too. Otherwise two workers starting together could each take one source of a shot, and
both would decode its frames and run the model for it, where one call serves all of a shot's sources.
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from otio_foley.atomic import write_text_atomic
from otio_foley.farm.locks import JobLock

if TYPE_CHECKING:
    from otio_foley.jobs import StemPlan
    from otio_foley.render import StemResult

RECORD_FORMAT = 1


class JobStore:
    """Locks and done-records of the stems under OUTDIR."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = Path(outdir)
        self.folder = self.outdir / ".jobs"

    def stem_path(self, plan: StemPlan) -> Path:
        return self.outdir / "stems" / plan.file_name

    def lock(self, plan: StemPlan) -> JobLock:
        return JobLock(self.folder / f"{plan.file_name}.lock")

    def record(self, file_name: str) -> dict | None:
        try:
            record = json.loads((self.folder / f"{file_name}.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):  # absent, or from a future/foreign writer
            return None
        return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None

    def done(self, plan: StemPlan, signature: str) -> dict | None:
        """The job's record if its stem is on disk and was made for exactly this plan, else None."""
        record = self.record(plan.file_name)
        if record and record.get("signature") == signature and self.stem_path(plan).is_file():
            return record
        return None

    def mark_done(self, plan: StemPlan, signature: str, entry: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"format": RECORD_FORMAT, "signature": signature, "stem": entry}
        write_text_atomic(self.folder / f"{plan.file_name}.json", json.dumps(record, indent=1, default=str) + "\n")


def run_jobs(results: list[StemResult], store: JobStore, *, force: bool, log: Callable[[str], None],
             signature: Callable[[StemPlan], str],
             generate: Callable[[list[StemResult], Callable[[list[StemResult]], None]], None],
             write: Callable[[StemResult], None], entry: Callable[[StemResult], dict],
             adopted: Callable[[StemResult], object]) -> None:
    """Claim, generate, write and record every job of `results` (see the module docstring).

    `generate(results, ready)` fills the cache, marks failures and calls `ready(some)` as soon as some
    stems have all their windows, so they are written while the rest still renders; `write(result)`
    writes one stem from the cache, `entry(result)` is its manifest entry; `adopted(result)` is told
    about jobs found done.
    """
    def adopt(result: StemResult) -> bool:
        if force or store.done(result.plan, signature(result.plan)) is None:
            return False
        result.status, result.path = "cached", store.stem_path(result.plan)
        adopted(result)
        return True

    def finish(batch: list[StemResult]) -> None:
        written: set[int] = set()

        def ready(some: list[StemResult]) -> None:
            for result in some:
                if id(result) in written or result.status == "failed":
                    continue
                written.add(id(result))
                write(result)
                store.mark_done(result.plan, signature(result.plan), entry(result))

        generate(batch, ready)
        ready(batch)  # anything the executor did not hand back yet

    busy = []
    taken_shots: set[int] = set()  # shots with a stem held by another worker
    with ExitStack() as held:
        todo = []
        for result in results:
            lock = store.lock(result.plan)
            if result.plan.shot.index in taken_shots or not lock.try_acquire():
                taken_shots.add(result.plan.shot.index)
                busy.append((result, lock))
                continue
            held.callback(lock.release)
            if not adopt(result):
                todo.append(result)
        if todo:
            finish(todo)
    for result, lock in busy:
        log(f"{result.plan.file_name}: waiting for {lock.owner()}")
        with lock:
            if not adopt(result):
                finish([result])
