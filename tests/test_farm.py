"""Render farm: shard partition, job locks, shards + assemble equal a local run, missing jobs, races, kills."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from click.testing import CliRunner

from otio_foley.cli import main
from otio_foley.errors import UserError
from otio_foley.farm.locks import JobLock, _Heartbeat, machine_id
from otio_foley.farm.partition import Shard, assign, parse_shard, select
from otio_foley.render import RenderOptions, plan_render, render
from standin_model import StandInModel
from test_render import CUES, make_edit

TESTS = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------- partition

def test_parse_shard() -> None:
    assert parse_shard("3/8") == Shard(3, 8) and str(Shard(3, 8)) == "3/8"
    for bad in ("0/4", "5/4", "x", "1/0", "1-4"):
        with pytest.raises(UserError, match="K/N"):
            parse_shard(bad)


def test_assign_is_balanced_and_stable() -> None:
    costs = {f"clip{i:03d}": 2.0 + (i * 37 % 11) for i in range(60)}
    placed = assign(costs, 4)
    loads = [sum(c for k, c in costs.items() if placed[k] == s) for s in range(4)]
    assert max(loads) <= 1.10 * sum(costs.values()) / 4  # bounded load
    assert placed == assign(dict(reversed(list(costs.items()))), 4)  # order of the plan does not matter
    changed = dict(costs, clip007=costs["clip007"] + 3.0)  # one clip's cues change
    moved = [k for k in costs if k != "clip007" and assign(changed, 4)[k] != placed[k]]
    assert len(moved) <= 6, moved  # the others mostly stay where they were (10% of 59)
    assert {assign({"a": 1.0, "b": 50.0}, 2)[k] for k in "ab"} == {0, 1}  # an oversized clip gets its own


# -------------------------------------------------------------------------------------------- locks

def test_lock_excludes_and_releases(tmp_path: Path) -> None:
    first, second = JobLock(tmp_path / "j.lock"), JobLock(tmp_path / "j.lock")
    assert first.try_acquire() and not second.try_acquire()
    assert first.holds() and f"pid {os.getpid()}" in second.owner()
    with pytest.raises(TimeoutError):
        second.acquire(timeout=0.2, poll=0.05)
    first.release()
    assert not (tmp_path / "j.lock").exists() and second.try_acquire()
    second.release()


def test_heartbeat_keeps_a_held_lock_fresh(tmp_path: Path) -> None:
    lock = JobLock(tmp_path / "j.lock")
    assert lock.try_acquire()
    os.utime(lock.path, (time.time() - 500, time.time() - 500))
    beat = _Heartbeat(interval=0.05)
    beat.add(lock)
    time.sleep(0.3)
    beat.discard(lock)
    assert time.time() - lock.path.stat().st_mtime < 5  # touched again: not stale for other machines
    lock.release()


def test_stale_locks_are_broken(tmp_path: Path) -> None:
    # a dead process on this machine: broken at once
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = tmp_path / "dead.lock"
    dead.write_text(json.dumps({"machine": machine_id(), "pid": child.pid, "token": "t"}))
    lock = JobLock(dead)
    assert lock.try_acquire() and lock.holds()
    lock.release()
    # another machine: broken only once its heartbeat is older than stale_after
    foreign = tmp_path / "foreign.lock"
    foreign.write_text(json.dumps({"machine": "render-node-7", "pid": 1, "token": "t"}))
    assert not JobLock(foreign, stale_after=60).try_acquire()
    os.utime(foreign, (time.time() - 120, time.time() - 120))
    assert JobLock(foreign, stale_after=60).try_acquire()
    # a creator killed before writing its owner: judged by age too
    empty = tmp_path / "empty.lock"
    empty.write_text("")
    assert not JobLock(empty, stale_after=60).try_acquire()


# ------------------------------------------------------------------------------- shards + assemble

def _render(edit, cues, out, cache, **kw):
    return render(edit, cues, StandInModel(), RenderOptions(output_dir=out, cache_dir=cache, **kw),
                  log=lambda line: None)


def _assemble(edit, cues, out, *args):
    return CliRunner().invoke(main, ["assemble", str(edit), str(cues), str(out), *args])


def _stems(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "stems").glob("*.wav"))}


def _timeline_text(path: Path, out: Path) -> str:
    return path.read_text().replace(str(out.resolve()), "OUT")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("farm")
    edit = make_edit(folder)
    cues = folder / "cues.yaml"
    cues.write_text(CUES)
    local = folder / "local"
    report = _render(edit, cues, local, folder / "cache-local")
    assert report.exit_code == 0
    return edit, cues, local


@pytest.mark.parametrize("count", [1, 2, 4])
def test_shards_then_assemble_equal_a_local_run(project, tmp_path: Path, count: int) -> None:
    edit, cues, local = project
    out = tmp_path / "farm"
    files = []
    for k in range(1, count + 1):  # each shard with its own cache: as on separate machines
        report = _render(edit, cues, out, tmp_path / f"cache{k}", shard=Shard(k, count), review=False)
        assert report.exit_code == 0 and report.timelines == {}
        files += [r.plan.file_name for r in report.results]
        assert json.loads(report.manifest.read_text())["status"] == "done"
    assert sorted(files) == sorted(_stems(local))  # every job in exactly one shard
    assert not (out / "manifest.json").exists()
    result = _assemble(edit, cues, out)
    assert result.exit_code == 0, result.output
    assert _stems(out) == _stems(local)  # byte-identical
    for name in ("otio-resolve", "otio-premiere"):
        farm_manifest = json.loads((out / "manifest.json").read_text())
        local_manifest = json.loads((local / "manifest.json").read_text())
        farm_tl, local_tl = Path(farm_manifest["timelines"][name]), Path(local_manifest["timelines"][name])
        assert _timeline_text(farm_tl, out) == _timeline_text(local_tl, local)
    assert (out / "review.html").exists()
    assert [s["window_keys"] for s in farm_manifest["stems"]] == [s["window_keys"] for s in local_manifest["stems"]]


def test_assemble_lists_missing_jobs(project, tmp_path: Path, monkeypatch) -> None:
    edit, cues, _ = project
    out = tmp_path / "farm"
    nothing = _assemble(edit, cues, out)
    assert nothing.exit_code == 1 and nothing.stdout.count("missing ") == 4 and "no shard has run" in nothing.stdout
    _, _, plans, _ = plan_render(edit, cues, StandInModel(), RenderOptions(output_dir=out, handles=2))
    owner = {p.source.prompt: k for k in (1, 2, 3) for p in select(plans, Shard(k, 3))}
    assert owner["dog barking"] != owner["bell ringing"]  # the long clip is over the bound: alone
    monkeypatch.setattr("otio_foley.cli.render._load_model", lambda name, device: StandInModel(fail_on="bell"))
    args = ["render", str(edit), str(cues), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), "--handles", "2"]
    assert CliRunner().invoke(main, [*args, "--shard", f"{owner['bell ringing']}/3"]).exit_code == 1
    result = _assemble(edit, cues, out)
    assert result.exit_code == 1 and "nothing assembled" in result.stderr and not (out / "manifest.json").exists()
    lines = sorted(result.stdout.strip().splitlines())
    assert len(lines) == 3 and all(line.startswith("missing sh0") for line in lines)
    assert "(clip sh020 #2, 'bell ringing'): failed in shard" in lines[2] and "refuses" in lines[2]
    assert all(f"shard {owner['dog barking']}/3 has not run" in line for line in lines[:2])
    monkeypatch.setattr("otio_foley.cli.render._load_model", lambda name, device: StandInModel())
    for k in (1, 2, 3):  # the rest, and a re-run of the shard that failed
        assert CliRunner().invoke(main, [*args, "--shard", f"{k}/3"]).exit_code == 0
    assert _assemble(edit, cues, out).exit_code == 0
    cues.write_text(CUES.replace("      - prompt: bell ringing", "      - prompt: bell ringing\n        seed: 5"))
    try:  # same stem file name, other audio: the stem on disk no longer counts
        stale = _assemble(edit, cues, out)
    finally:
        cues.write_text(CUES)
    assert stale.exit_code == 1 and stale.stdout.count("missing ") == 1
    assert f"bell ringing'): out of date (rendered for other cues or settings): re-run shard {owner['bell ringing']}/3" \
        in stale.stdout
    bad = CliRunner().invoke(main, [*args, "--shard", "4/3"])
    assert bad.exit_code == 2 and "K/N" in bad.stderr


# ------------------------------------------------------------------------------------ races, kills

WORKER = """
import json, sys, time
sys.path.insert(0, {tests!r})
from standin_model import StandInModel
from otio_foley.farm.partition import Shard
from otio_foley.render import RenderOptions, render

class Slow(StandInModel):
    def generate(self, frames, prompts, **kw):
        with open({calls!r}, "a") as log:
            log.write(json.dumps([p.text for p in prompts]) + "\\n")
        time.sleep({delay})
        return super().generate(frames, prompts, **kw)

report = render({edit!r}, {cues!r}, Slow(stall_on={stall!r}), RenderOptions(output_dir={out!r},
                cache_dir={cache!r}, shard=Shard(1, 1), review=False), log=lambda line: None)
sys.exit(report.exit_code)
"""


def _worker(project, out: Path, cache: Path, calls: Path, delay: float = 0.3, stall: str | None = None):
    edit, cues, _ = project
    script = WORKER.format(tests=str(TESTS), edit=str(edit), cues=str(cues), out=str(out), cache=str(cache),
                           calls=str(calls), delay=delay, stall=stall)
    return subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)


def test_a_shot_with_a_stem_held_elsewhere_is_left_whole(tmp_path: Path) -> None:
    """Another worker holds the first stem of shot 1: this worker renders shot 2 first and leaves shot 1's free
    second stem alone until then, so one shot's sources are never split between two workers' model calls."""
    from types import SimpleNamespace

    from otio_foley.farm.store import JobStore, run_jobs

    def job(shot: int, name: str) -> SimpleNamespace:
        return SimpleNamespace(plan=SimpleNamespace(shot=SimpleNamespace(index=shot), file_name=name),
                               status="planned", path=None)

    store, batches = JobStore(tmp_path), []
    results = [job(1, "a1.wav"), job(1, "a2.wav"), job(2, "b1.wav")]
    elsewhere = store.lock(results[0].plan)
    assert elsewhere.try_acquire()

    def generate(batch, ready) -> None:
        batches.append([r.plan.file_name for r in batch])
        if elsewhere.holds():  # the other worker gives up its job without finishing it
            elsewhere.release()

    run_jobs(results, store, force=False, log=lambda line: None, signature=lambda plan: "s", generate=generate,
             write=lambda r: None, entry=lambda r: {}, adopted=lambda r: None)
    assert batches == [["b1.wav"], ["a1.wav"], ["a2.wav"]]


def test_two_workers_racing_write_each_stem_once(project, tmp_path: Path) -> None:
    out, calls = tmp_path / "farm", tmp_path / "calls.txt"
    workers = [_worker(project, out, tmp_path / f"cache{i}", calls) for i in (1, 2)]  # separate caches
    for proc in workers:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    generated = [tuple(json.loads(line)) for line in calls.read_text().splitlines()]
    # the local run's 4 generate calls (sh010 twice: two windows) happened once in all, not twice
    assert sorted(generated) == sorted([("dog barking", "footsteps on gravel")] * 2 + [("bell ringing",),
                                                                                        ("wind in trees",)])
    assert _stems(out) == _stems(project[2])
    assert not list((out / "stems").glob(".*")) and not list((out / ".jobs").glob("*.lock"))


def test_sigkill_mid_job_leaves_no_partial_stem_and_rerun_completes(project, tmp_path: Path) -> None:
    out, calls = tmp_path / "farm", tmp_path / "calls.txt"
    proc = _worker(project, out, tmp_path / "cache", calls, delay=0.0, stall="wind")
    try:
        deadline = time.monotonic() + 60
        while "wind" not in (calls.read_text() if calls.exists() else ""):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the worker did not reach the stalled job"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert list((out / ".jobs").glob("*.lock"))  # the dead worker's locks are left behind
    assert len(_stems(out)) == 3 and all(len(sf.read(p)[0]) for p in (out / "stems").glob("*.wav"))
    rerun = _worker(project, out, tmp_path / "cache", calls, delay=0.0)
    assert rerun.wait(timeout=60) == 0, rerun.stderr.read()
    assert calls.read_text().splitlines()[-1] == '["wind in trees"]'  # only the killed job was redone
    assert _stems(out) == _stems(project[2]) and _assemble(project[0], project[1], out).exit_code == 0
