"""`--executor ray` on a real local Ray cluster (head on loopback, 2 CPU workers): the example edit gives
the same stems as the local executor; a worker that dies on a clip is retried, then reported."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from otio_foley.farm.ray_executor import RayExecutor  # noqa: E402
from otio_foley.render import RenderOptions, render  # noqa: E402
from standin_model import StandInModel  # noqa: E402

# The `ray` CLI of this interpreter's environment (beside it in a venv), else the one on PATH.
RAY_CLI = str(Path(sys.executable).with_name("ray")) if Path(sys.executable).with_name("ray").exists() \
    else shutil.which("ray") or "ray"

TESTS = Path(__file__).resolve().parent
EXAMPLES = TESTS.parent / "examples"


class DiesOnDrum(StandInModel):
    """Kills its worker process when asked for a drum (an OOM or driver crash on one clip)."""

    def generate(self, frames, prompts, **kw):
        if any("drum" in p.text for p in prompts):
            os._exit(1)
        return super().generate(frames, prompts, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """`ray start --head --block` on 127.0.0.1 with 2 CPUs; stopped (by its pid) at the end."""
    temp = tempfile.mkdtemp(prefix="ofray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
           "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    head = subprocess.Popen(
        [RAY_CLI, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
         "--port", str(port), "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "false",
         "--disable-usage-stats", "--temp-dir", temp],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not list(Path(temp).glob("session_latest/logs/raylet.out")):
            assert head.poll() is None, head.stdout.read()
            assert time.monotonic() < deadline, "ray start did not come up"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        ray.shutdown()
        head.terminate()  # --block: ray stops the processes it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def _stems(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "stems").glob("*.wav"))}


def test_ray_executor_equals_local_and_reports_dead_workers(cluster, tmp_path: Path) -> None:
    edit, cues = EXAMPLES / "edit_25fps.otio", EXAMPLES / "cues.yaml"
    quiet = lambda line: None  # noqa: E731
    local = render(edit, cues, StandInModel(), RenderOptions(output_dir=tmp_path / "local", review=False,
                                                             cache_dir=tmp_path / "cache-local"), log=quiet)
    assert local.exit_code == 0 and len(local.results) == 6

    options = RenderOptions(output_dir=tmp_path / "ray", cache_dir=tmp_path / "cache-ray", review=False)
    lines: list[str] = []
    executor = RayExecutor(StandInModel, edit, cues, options, address=cluster, workers=2, log=lines.append)
    try:
        assert executor.model.name == "standin" and len(executor.actors) == 2
        report = render(edit, cues, executor.model, options, log=lines.append, executor=executor)
    finally:
        executor.close()
    assert report.exit_code == 0 and {r.status for r in report.results} == {"rendered"}
    assert _stems(tmp_path / "ray") == _stems(tmp_path / "local")
    assert sum("window" in line for line in lines) == sum(len(r.plan.windows) for r in report.results)  # progress

    options = RenderOptions(output_dir=tmp_path / "dies", cache_dir=tmp_path / "cache-dies", review=False)
    lines.clear()
    executor = RayExecutor(DiesOnDrum, edit, cues, options, address=cluster, workers=2, max_retries=1,
                           log=lines.append)
    try:
        report = render(edit, cues, executor.model, options, log=lines.append, executor=executor)
    finally:
        executor.close()
    failed = {r.plan.source.prompt for r in report.failed}
    assert report.exit_code == 1 and failed == {"a blue bell ringing", "a stick hitting a green drum"}  # clip sh020
    assert all("worker failed 2 times" in r.error for r in report.failed)
    assert any("retry 1 of 1" in line for line in lines)
    assert len(_stems(tmp_path / "dies")) == 4
