"""What the tiny model's audio back-end alone allows: the selectivity metrics of the target stems after a round
trip through the mel codec (encode, then Griffin-Lim decode), with no generator involved.

    python benchmarks/codec_ceiling.py [--pairs 16] [--config hop,n_fft,n_mels,iters ...]

A generator that produced the exact mel frames of the target could score no better than this row, so it is
the ceiling for the accuracy, onset F1 and envelope correlation targets. The default compares the codec that
selva-tiny ships with, the same without its 3-frame median, and the settings of the first release (40 bins at
31.25 frames/s, capped at -0.5, no median).
Pairs are the benchmark's held-out pairs at the tiny model's window (2 s).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from otio_foley.evaluation.classifier import load_classifier
from otio_foley.evaluation.selectivity import make_pairs, score_outputs
from otio_foley.models.mel_codec import MelCodec, MelCodecConfig
from otio_foley.models.tiny import TinyConfig

FIRST_RELEASE = MelCodecConfig(hop=512, n_fft=1024, n_mels=40, max_log_mel=-0.5, output_gain_db=-1.0,
                               median_frames=1)


def parse(text: str) -> MelCodecConfig:
    hop, n_fft, n_mels, iters = (int(x) for x in text.split(","))
    return MelCodecConfig(hop=hop, n_fft=n_fft, n_mels=n_mels, griffin_lim_iters=iters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--config", type=parse, action="append", help="hop,n_fft,n_mels,griffin_lim_iters")
    args = parser.parse_args()
    tiny = TinyConfig()
    configs = {"selva-tiny codec": tiny.codec,
               "selva-tiny codec without the median": replace(tiny.codec, median_frames=1),
               "first release codec": FIRST_RELEASE}
    configs.update({f"hop {c.hop}, n_fft {c.n_fft}, {c.n_mels} mels, {c.griffin_lim_iters} it": c
                    for c in args.config or []})
    pairs = make_pairs(args.pairs, size=tiny.frame_size, duration=tiny.window_seconds)
    classifier = load_classifier()
    print("| codec | subset | accuracy | leakage | onset F1 | env. corr | FD | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for label, cfg in configs.items():
        codec = MelCodec(cfg)
        start = time.perf_counter()
        with torch.no_grad():
            outputs = [codec.decode(codec.encode(p.target[None]))[0][:p.target.numel()] for p in pairs]
        seconds = time.perf_counter() - start
        result = score_outputs(label, pairs, outputs, classifier)
        for subset, m in result.subsets.items():
            print(f"| {label} | {subset} | {m['accuracy']:.3f} | {m['leakage']:.3f} | {m['onset_f1']:.3f} | "
                  f"{m['envelope_corr']:.3f} | {m['fd']:.1f} | {seconds:.1f} |")
    print(f"{args.pairs} held-out pairs per subset; round trip of the target stem only; seconds = encode + "
          f"decode of all {2 * args.pairs} stems on CPU ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
