"""Full-size SelVA S-16k on CPU in fp32 with random weights: where the time and memory of one stem go.

Not a test. Builds the released architecture (TextSynch video encoder, MMAudio small_16k generator, 16 kHz
VAE + BigVGAN) with random weights in realistic ranges, then times, on one 8 s clip of random frames:
  video encoder (ViT trunk once + text-conditioned tail), one Euler step with CFG (one batched call),
  VAE decode + vocoder, and whole stems through `SelVAPipeline.generate` with K = 1, 2, 4 prompts.
Text encoders are replaced by fixed random features (as in the official CPU baseline, whose figures
exclude FLAN-T5 and CLIP-text too). Each figure is the minimum over `--repeats` runs after a warm-up
(whole stems: the K = 1 warm-up stem, then `--repeats` runs per K). Every timing records the process
CPU-time / wall-time ratio (2.0 = both cores were ours) and the 1-minute load average, because the
machine is shared. Peak RSS is `ru_maxrss`. Prints a table and writes JSON.

    OMP_NUM_THREADS=2 python benchmarks/bench_models.py --out benchmarks/results/models_cpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from otio_foley.models.audio_decoder import audio_decoder_16k
from otio_foley.models.generator import small_16k
from otio_foley.models.pipeline import Prompt, SelVAPipeline
from otio_foley.models.textsynch import official_textsynch

DURATION = 8.0


class FixedFeatures:
    """Stand-in text encoder: a fixed random feature per distinct string (cost ~0, like the baseline's)."""

    def __init__(self, length: int, dim: int, normalise: bool) -> None:
        self.length, self.dim, self.normalise = length, dim, normalise

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = []
        for text in texts:
            g = torch.Generator().manual_seed(sum(map(ord, text)) + 1)
            f = torch.randn(self.length, self.dim, generator=g)
            rows.append(F.normalize(f, dim=-1) if self.normalise else f)
        return torch.stack(rows), torch.ones(len(texts), self.length, dtype=torch.bool)


@torch.no_grad()
def randomise(module: torch.nn.Module, seed: int) -> None:
    """Weights N(0, 1/fan_in), norm scales 1 + N(0, 0.1²), other vectors N(0, 0.1²), learned tokens N(0, 0.5²):
    the scheme of the parity fixtures and the official CPU baseline, so values stay in realistic ranges."""
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        if name.endswith(("latent_mean", "latent_std")):
            continue
        noise = torch.randn(p.shape, generator=g)
        if "feat" in name or "emb" in name or "token" in name:
            p.copy_(0.5 * noise)
        elif p.dim() >= 2:
            p.copy_(noise / p[0].numel() ** 0.5)
        elif "norm" in name and name.endswith("weight"):
            p.copy_(1 + 0.1 * noise)
        else:
            p.copy_(0.1 * noise)


def build() -> SelVAPipeline:
    video, generator, audio = official_textsynch(), small_16k(), audio_decoder_16k()
    audio.vocoder.fold_weight_norm()
    for i, module in enumerate((video, generator, audio)):
        randomise(module, i)
    return SelVAPipeline(name="selva-s16k-random", checksum="random", generator=generator.eval(),
                         video_encoder=video.eval(), audio_decoder=audio.eval(),
                         generator_text_encoder=FixedFeatures(77, 1024, normalise=True),
                         video_text_encoder=FixedFeatures(12, 768, normalise=False))


def rss_mib() -> tuple[float, float]:
    """(peak, current) resident set in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    current = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024
    return peak, current


def timed(fn, repeats: int) -> dict:
    """Minimum wall time of `repeats` runs, with each run's CPU/wall ratio and the load average."""
    runs = []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        runs.append({"wall_s": round(wall, 3), "cpu_per_wall": round((time.process_time() - c0) / wall, 2),
                     "load_1min": os.getloadavg()[0]})
    return {"min_s": min(r["wall_s"] for r in runs), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/models_cpu.json"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    torch.manual_seed(0)
    results: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                                 "torch": torch.__version__, "threads": torch.get_num_threads(),
                                 "load_at_start": os.getloadavg()},
                     "duration_s": DURATION, "precision": "fp32", "device": "cpu"}
    t0 = time.perf_counter()
    with torch.inference_mode():
        pipe = build()
    results["build_s"] = round(time.perf_counter() - t0, 1)
    results["rss_after_build_mib"] = rss_mib()
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in
              [("video_encoder", pipe.video_encoder), ("generator", pipe.generator), ("audio", pipe.audio_decoder)]}
    results["parameters"] = params

    frames = torch.rand(int(25 * DURATION), 3, 224, 224, generator=torch.Generator().manual_seed(1)) * 2 - 1
    prompts = [Prompt(f"source {i}", seed=i) for i in range(max(args.ks))]

    def stem(k: int):
        return lambda: pipe.generate(frames, prompts[:k], duration=DURATION)

    print("warm-up stem (K=1) ...", flush=True)
    results["first_stem"] = timed(stem(1), 1)
    results["rss_after_first_stem_mib"] = rss_mib()

    with torch.inference_mode():
        lengths = pipe.generator.lengths(DURATION)
        segments = pipe._segments(frames, lengths)
        text_f, mask = pipe.video_text_encoder(["source 0"])
        trunk_holder = {}

        def trunk():
            trunk_holder["t"] = pipe.video_encoder.encode_trunk(segments)

        results["video_trunk"] = timed(trunk, args.repeats)
        results["video_tail_per_prompt"] = timed(
            lambda: pipe.video_encoder.condition(trunk_holder["t"], text_f, mask), args.repeats)
        sync = pipe._sync_features(frames, prompts[:1], lengths)
        clip = pipe._clip_features(frames, [True], lengths)
        cond = pipe.generator.prepare(clip, sync, pipe._generator_text(["source 0"]), lengths.latent)
        uncond = pipe.generator.null_conditions(1, lengths)
        both = cond.cat(uncond)
        x = torch.randn(2, lengths.latent, pipe.generator.config.latent_dim)
        t = torch.zeros(2)
        results["euler_step_cfg"] = timed(lambda: pipe.generator.velocity(x, t, both), max(3, args.repeats))
        latents = torch.randn(1, lengths.latent, pipe.generator.config.latent_dim)
        results["vae_decode"] = timed(lambda: pipe.audio_decoder.vae.decode(latents.transpose(1, 2)), args.repeats)
        mel = pipe.audio_decoder.vae.decode(latents.transpose(1, 2))
        results["vocoder"] = timed(lambda: pipe.audio_decoder.vocoder(mel), args.repeats)

    for k in args.ks:
        print(f"stem K={k} ...", flush=True)
        results[f"stem_k{k}"] = timed(stem(k), args.repeats)
    results["rss_end_mib"] = rss_mib()
    one = results["stem_k1"]["min_s"]
    results["k_ratio"] = {k: round(results[f"stem_k{k}"]["min_s"] / one, 3) for k in args.ks}
    results["k_target"] = {k: round(1 + 0.35 * (k - 1), 2) for k in args.ks}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    rows = [("video encoder, ViT trunk (once per clip)", results["video_trunk"]),
            ("video encoder, text tail (per prompt)", results["video_tail_per_prompt"]),
            ("one Euler step, CFG batch of 2", results["euler_step_cfg"]),
            ("VAE decode", results["vae_decode"]), ("vocoder", results["vocoder"]),
            ("first stem in process, K=1", results["first_stem"])]
    rows += [(f"whole 8 s stem, K={k}", results[f"stem_k{k}"]) for k in args.ks]
    print(f"\n{'what':44s} {'min s':>8s} {'cpu/wall':>9s} {'load':>6s}")
    for label, r in rows:
        last = r["runs"][-1]
        print(f"{label:44s} {r['min_s']:8.2f} {last['cpu_per_wall']:9.2f} {last['load_1min']:6.1f}")
    print(f"K ratios {results['k_ratio']} (target <= {results['k_target']})")
    print(f"peak RSS {results['rss_end_mib'][0]:.0f} MiB (target <= 6144); build {results['build_s']} s")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
