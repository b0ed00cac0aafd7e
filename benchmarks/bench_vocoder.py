"""Time the audio back-end for one clip: VAE decode (latents -> mel) and vocoder (mel -> waveform).

Full-size modules with random weights (raw N(0, 1) VAE weights, which the VAE normalises anyway; PyTorch's
default init for the vocoder; both weight normalisations folded and the VAE encoder dropped, as for
inference), fp32, torch.inference_mode, on CPU unless --device says otherwise. Prints min / median wall time
over --repeats runs after one warm-up, the minimum process CPU time, the CPU/wall ratio (about the thread
count when the cores were ours, lower when shared), and peak RSS. On a shared machine, `--threads 1` CPU
time is the steadiest figure.

    python benchmarks/bench_vocoder.py                 # 16 kHz, 8 s, 2 threads
    python benchmarks/bench_vocoder.py --rate 44k --seconds 8
"""
from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import time
from typing import Callable

import torch

from otio_foley.models.audio_decoder import audio_decoder_16k, audio_decoder_44k
from otio_foley.models.device import retain_cpu_heap


def timed(fn: Callable[[], torch.Tensor], repeats: int, device: torch.device) -> tuple[list[float], list[float]]:
    """Wall and process-CPU seconds of `repeats` calls after one warm-up call."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    fn()
    sync()
    walls, cpus = [], []
    for _ in range(repeats):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        fn()
        sync()
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.process_time() - cpu0)
    return walls, cpus


def report(name: str, walls: list[float], cpus: list[float]) -> None:
    ratios = [c / w for c, w in zip(cpus, walls)]
    print(f"{name:<16} wall min {min(walls):7.3f} s  median {statistics.median(walls):7.3f} s   "
          f"cpu min {min(cpus):7.3f} s   cpu/wall {min(ratios):.2f}-{max(ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", choices=["16k", "44k"], default="16k")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--system-malloc", action="store_true",
                        help="keep glibc's default thresholds (load_model retains the heap on CPU)")
    args = parser.parse_args()
    retained = not args.system_malloc and retain_cpu_heap()
    sys.stdout.reconfigure(line_buffering=True)  # show each stage as it finishes, also when piped

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    decoder = (audio_decoder_16k if args.rate == "16k" else audio_decoder_44k)().eval()
    decoder.vae.fold_weight_norm().drop_encoder()
    decoder.vocoder.fold_weight_norm()
    decoder.to(device)
    # The generator's latent length for this duration (ceil), as the pipeline would ask for.
    n_latents = math.ceil(args.seconds * decoder.sample_rate / (decoder.samples_per_latent // 2) / 2)
    latents = torch.randn(1, n_latents, decoder.latent_dim, device=device)
    def millions(module: torch.nn.Module) -> float:  # state_dict, not parameters(): folded weights are buffers
        return sum(t.numel() for t in module.state_dict().values()) / 1e6

    print(f"audio back-end {args.rate}: {args.seconds:g} s clip = {n_latents} latents, "
          f"{n_latents * decoder.samples_per_latent} samples at {decoder.sample_rate} Hz; fp32 on {device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{'retained heap' if retained else 'default malloc'}")
    print(f"weights: VAE decoder {millions(decoder.vae):.2f}M, "
          f"vocoder {millions(decoder.vocoder):.2f}M")
    with torch.inference_mode():
        z = latents.transpose(1, 2)
        mel = decoder.vae.decode(z)
        report("VAE decode", *timed(lambda: decoder.vae.decode(z), args.repeats, device))
        report("vocoder", *timed(lambda: decoder.vocoder(mel), args.repeats, device))
        report("decode (both)", *timed(lambda: decoder.decode(latents), args.repeats, device))
        audio = decoder.decode(latents)
    print(f"output {tuple(audio.shape)}, |max| {audio.abs().max().item():.3f}, std {audio.std().item():.3f}, "
          f"mel mean {mel.mean().item():.2f} std {mel.std().item():.2f}, finite {bool(audio.isfinite().all())}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
