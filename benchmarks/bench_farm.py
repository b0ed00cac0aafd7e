"""Farm throughput with the built-in model: stems per minute for 1 vs 2 shard workers, and batched vs
unbatched sampling in one process.

    python benchmarks/bench_farm.py [--clips 8] [--steps 25] [--batch-size 8]
        [--json benchmarks/results/bench_farm.json]

Workload: an edit of `--clips` clips of 2.0 s (one selva-tiny window each) cut from the example media,
each with two onscreen prompts, so 2 x clips stems. Every configuration renders into a fresh output
folder with a fresh cache, so every window is generated.

- workers: `otio-foley render --shard K/N` as N separate processes (what a farm runs), each with one
  torch thread, started together; wall clock from start to the last exit (process start-up included,
  as a farm pays it) and the model time each shard reports.
- batching: `render(..., batch_size=1)` vs `batch_size=B` in this process (one torch thread), timing
  the whole render.

Model: `selva-tiny` from the registry; when its weights are not installed, the same architecture with
untrained weights (the compute does not depend on the weight values; this is printed). The machine is
shared: the load average is recorded next to the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import opentimelineio as otio
import torch

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange

MODEL_SCRIPT = '''
import sys
sys.path.insert(0, {bench!r})
from bench_farm import load_builtin
from otio_foley.farm.partition import Shard
from otio_foley.render import RenderOptions, render
import torch
torch.set_num_threads(1)
model, _ = load_builtin()
report = render({edit!r}, {cues!r}, model, RenderOptions(output_dir={out!r}, cache_dir={cache!r}, review=False,
                shard=Shard({k}, {n}), steps={steps}), log=lambda line: None)
sys.exit(report.exit_code)
'''


def load_builtin():
    """(selva-tiny, how it was obtained): the registry's, else the architecture with untrained weights."""
    try:
        from otio_foley.models.registry import load_model

        return load_model("selva-tiny", device="cpu"), "selva-tiny (registry weights)"
    except Exception as exc:  # registry or weights absent: same networks, untrained
        from otio_foley.models import tiny
        from otio_foley.models.mel_codec import MelCodec
        from otio_foley.models.pipeline import SelVAPipeline

        networks = tiny.selva_tiny().eval()
        video_text, generator_text = tiny.text_encoders()
        cfg = networks.cfg
        model = SelVAPipeline(name="selva-tiny-untrained", checksum="untrained", generator=networks.generator,
                              video_encoder=networks.video, audio_decoder=MelCodec(cfg.codec),
                              generator_text_encoder=generator_text, video_text_encoder=video_text,
                              frame_size=cfg.frame_size, window_seconds=cfg.window_seconds)
        return model, f"selva-tiny architecture, untrained weights ({type(exc).__name__}: {str(exc)[:80]})"


def make_workload(folder: Path, clips: int) -> tuple[Path, Path]:
    """`clips` clips of 2 s alternating between the two example scenes; a cue sheet with 2 prompts each."""
    rate = 25
    media = [EXAMPLES / "media" / "scene_a_25fps.mp4", EXAMPLES / "media" / "scene_b_25fps.mp4"]
    prompts = [("a red ball bouncing", "a yellow beacon beeping"), ("a blue bell ringing", "a stick hitting a green drum")]
    timeline = otio.schema.Timeline(name="bench", global_start_time=RT(3600 * rate, rate))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    lines = ["version: 1", "clips:"]
    for i in range(clips):
        name = f"c{i + 1:03d}"
        ref = otio.schema.ExternalReference(target_url=str(media[i % 2]))
        track.append(otio.schema.Clip(name=name, media_reference=ref, source_range=TR(RT(5 * (i // 2), rate), RT(50, rate))))
        lines += [f"  - clip: {name}", "    sources:"] + [f"      - prompt: {p}" for p in prompts[i % 2]]
    edit, cues = folder / "bench.otio", folder / "cues.yaml"
    otio.adapters.write_to_file(timeline, str(edit))
    cues.write_text("\n".join(lines) + "\n")
    return edit, cues


def run_shards(edit: Path, cues: Path, folder: Path, workers: int, steps: int) -> dict:
    out = folder / f"shards{workers}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", MODEL_SCRIPT.format(
        bench=str(Path(__file__).parent), edit=str(edit), cues=str(cues), out=str(out), cache=str(folder / f"cache-s{workers}-{k}"),
        k=k, n=workers, steps=steps)], env=env) for k in range(1, workers + 1)]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"a shard failed: exit codes {codes}")
    manifests = [json.loads(p.read_text()) for p in sorted((out / "shards").glob("*.json"))]
    stems = sum(len(m["jobs"]) for m in manifests)
    return {"workers": workers, "stems": stems, "wall_s": round(wall, 2), "stems_per_min": round(60 * stems / wall, 2),
            "generate_s_per_shard": [round(m["timings"].get("generate", 0.0), 2) for m in manifests]}


def run_batched(edit: Path, cues: Path, folder: Path, model, batch_size: int, steps: int) -> dict:
    from otio_foley.render import RenderOptions, render

    options = RenderOptions(output_dir=folder / f"batch{batch_size}", cache_dir=folder / f"cache-b{batch_size}",
                            review=False, batch_size=batch_size, steps=steps)
    started = time.perf_counter()
    report = render(edit, cues, model, options, log=lambda line: None)
    wall = time.perf_counter() - started
    stems = len(report.results)
    return {"batch_size": batch_size, "stems": stems, "wall_s": round(wall, 2),
            "stems_per_min": round(60 * stems / wall, 2), "generate_s": round(report.timings.get("generate", 0.0), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, how = load_builtin()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        edit, cues = make_workload(folder, args.clips)
        load_before = os.getloadavg()
        workers = [run_shards(edit, cues, folder, n, args.steps) for n in (1, 2)]
        batching = [run_batched(edit, cues, folder, model, b, args.steps) for b in (1, args.batch_size)]
        load_after = os.getloadavg()
    result = {"model": how, "clips": args.clips, "steps": args.steps, "cpu": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "loadavg_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
              "workers": workers, "batching": batching}
    print(f"model: {how}\nworkload: {args.clips} clips x 2 prompts, 2.0 s each, {args.steps} Euler steps; "
          f"{os.cpu_count()} cores, load {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(f"{'config':<24}{'stems':>6}{'wall s':>9}{'stems/min':>11}  model s")
    for row in workers:
        print(f"{row['workers']} shard worker(s), 1 thr{row['stems']:>6}{row['wall_s']:>9.1f}{row['stems_per_min']:>11.1f}"
              f"  {row['generate_s_per_shard']}")
    for row in batching:
        print(f"{'batch size ' + str(row['batch_size']):<24}{row['stems']:>6}{row['wall_s']:>9.1f}"
              f"{row['stems_per_min']:>11.1f}  {row['generate_s']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
