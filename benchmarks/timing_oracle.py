"""Where does selva-tiny lose timing: in its video encoder or in its generator?

Trains a fresh stage-0 generator (the tiny recipe's flow-matching settings) for --steps on the training clips'
per-video-token sync features of one kind, then scores it on held-out single-source clips (no distractor):
onset F1 at ±80 ms and envelope correlation against the clip's own stem, 25 Euler steps, CFG 4.5. Onset F1 is
given over all clips and over the clips whose stem has onsets ("eventful": the fan has none).

    python benchmarks/timing_oracle.py [--features encoder oracle-mel oracle-events] [--steps 1500]

  encoder        a trained video encoder's features (--weights, default the shipped selva-tiny; a selective
                 file's TextSynch is given the clip's caption)
  oracle-mel     the clip's own normalised mel frames, averaged over the frames each video token encodes: what
                 a perfect encoder could say at the tokens' 80 ms resolution
  oracle-events  only the loudness and onset strength of those frames (the rest of the feature is zero): when
                 sounds happen, not what they are (the text says that)
If the oracles score far above the encoder, the generator can follow timing and the encoder does not supply it.
With --mixed, the encoder sees every clip (training and held-out) side by side with another one (half width each,
target left, the caption naming the target): how much timing a selective encoder keeps in a mix, with no stage 2.
`--mixed still` holds the other clip at its first frame: the target is squeezed the same way but nothing else
moves, which separates what the narrow view costs from what the distractor's motion costs.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from otio_foley.evaluation.metrics import envelope_correlation, onset_f1, onsets
from otio_foley.models.flow_matching import euler_sample, guided_velocity
from otio_foley.models.mel_codec import MelCodec
from otio_foley.models.sequence import token_means
from otio_foley.models.synchformer import num_segments, segment_frames
from otio_foley.models.tiny import (WEIGHTS, TinyConfig, TinyNetworks, load_networks, read_config, set_null_text,
                                   text_encoders)
from otio_foley.synth.mixing import side_by_side
from otio_foley.synth.scenes import CLASSES, EVAL_SEED_BASE, make_scene
from otio_foley.training.data import ClipBank, to_float
from otio_foley.training.loop import LoopConfig, train
from otio_foley.training.stages import (StageConfig, TextEncoder, flow_matching_loss, generator_trainables,
                                        train_only)
from otio_foley.training.tiny_recipe import build_bank, set_latent_stats

KINDS = ("encoder", "oracle-mel", "oracle-events")
HELD_OUT_OFFSET = 777_000  # held-out seeds away from the selectivity benchmark's pairs


def loudness_and_onsets(latents: torch.Tensor) -> torch.Tensor:
    """(B, L, bins) normalised mel frames → (B, L, 2): mean over bins, and spectral flux (the mean rise over
    bins from the previous frame), which peaks where a sound starts."""
    flux = F.pad((latents[:, 1:] - latents[:, :-1]).clamp_min(0).mean(-1), (1, 0))
    return torch.stack([latents.mean(-1), flux], -1)


class Features:
    """Sync features (B, tokens, sync_dim) of one kind for the clips of a bank, computed in chunks of clips."""

    def __init__(self, kind: str, networks: TinyNetworks, weights: Path, video_text: TextEncoder,
                 mixed: str | None = None) -> None:
        self.kind, self.generator, self.video_text, self.mixed = kind, networks.generator, video_text, mixed
        self.encoder = load_networks(weights) if kind == "encoder" else None

    @torch.no_grad()
    def __call__(self, bank: ClipBank, chunk: int = 64) -> torch.Tensor:
        return torch.cat([self.chunk(bank.frames_u8[i:i + chunk], bank.latents[i:i + chunk],
                                     bank.captions[i:i + chunk]) for i in range(0, len(bank), chunk)])

    def chunk(self, frames_u8: torch.Tensor, latents: torch.Tensor, captions: list[str]) -> torch.Tensor:
        if self.encoder is None:  # an oracle reads the clip's own mel: no pixels, no mix
            per_frame = self.generator.normalize(latents)
            if self.kind == "oracle-events":
                per_frame = loudness_and_onsets(per_frame)
            tokens = token_means(per_frame, num_segments(frames_u8.shape[1]), self.generator.config.latent_rate)
            return F.pad(tokens, (0, self.generator.config.sync_dim - tokens.shape[-1]))
        frames = to_float(frames_u8)
        if self.mixed:  # item i beside item B-1-i, half and half, target left (as mix_batch with MixConfig())
            partners = frames.flip(0)
            if self.mixed == "still":
                partners = partners[:, :1].expand_as(partners)
            frames = side_by_side(frames, partners, 0.5, frames.shape[-1])
        segments, video = segment_frames(frames), self.encoder.video
        return video(segments, *self.video_text(captions)) if self.encoder.selective else video(segments)


def held_out(count: int, cfg: TinyConfig) -> tuple[ClipBank, list[torch.Tensor]]:
    """Single-source held-out clips, classes in turn, and their target stems."""
    scenes = [make_scene(EVAL_SEED_BASE + HELD_OUT_OFFSET + i, size=cfg.frame_size, duration=cfg.window_seconds,
                         kinds=[CLASSES[i % len(CLASSES)]]) for i in range(count)]
    stems = [torch.from_numpy(next(iter(s.stems.values()))) for s in scenes]
    with torch.no_grad():
        latents = MelCodec(cfg.codec).encode(torch.stack(stems))
    bank = ClipBank(torch.stack([torch.from_numpy(s.frames) for s in scenes]), latents,
                    [next(iter(s.captions.values())) for s in scenes])
    return bank, stems


def train_generator(features: torch.Tensor, bank: ClipBank, networks: TinyNetworks, generator_text: TextEncoder,
                    steps: int) -> None:
    """Stage 0's generator step on fixed features: the recipe's batch, lr, dropout and t; EMA weights kept."""
    stage, gen = StageConfig(batch_size=8), networks.generator
    train_only(networks, generator_trainables(gen))

    def loss(step: int, g: torch.Generator) -> torch.Tensor:
        index = torch.randint(len(bank), (stage.batch_size,), generator=g)
        text_f, _ = generator_text([bank.captions[i] for i in index])
        return flow_matching_loss(gen, bank.latents[index], features[index], text_f, networks.cfg.window_seconds,
                                  g, stage.null_prob, t_mean=stage.t_mean)

    ema, _ = train(networks, loss, LoopConfig(steps=steps, lr=1e-3, warmup=100, ema_decay=0.995), desc="generator")
    ema.copy_to(networks)


@torch.no_grad()
def sample(networks: TinyNetworks, features: torch.Tensor, captions: list[str], generator_text: TextEncoder,
           steps: int = 25, cfg: float = 4.5) -> torch.Tensor:
    """Audio (B, samples) from the generator with the given sync features, as the pipeline samples it
    (seeded noise per clip, CFG against null video and the empty text)."""
    gen, lengths = networks.generator.eval(), networks.generator.lengths(networks.cfg.window_seconds)
    text_f = gen.fit_text(generator_text(captions)[0])
    cond = gen.prepare(gen.null_clip(len(captions), lengths.clip), features, text_f, lengths.latent)
    uncond = gen.null_conditions(len(captions), lengths)
    noise = torch.stack([torch.randn(lengths.latent, gen.config.latent_dim, generator=torch.Generator().manual_seed(i))
                         for i in range(len(captions))])
    latents = euler_sample(guided_velocity(gen.velocity, cond, uncond, cfg), noise, steps)
    return MelCodec(networks.cfg.codec).decode(gen.unnormalize(latents))


def score(outputs: torch.Tensor, stems: list[torch.Tensor]) -> dict:
    trimmed = [o[:s.numel()] for o, s in zip(outputs, stems)]
    found, reference = [onsets(o) for o in trimmed], [onsets(s) for s in stems]
    f1 = [onset_f1(o, r) for o, r in zip(found, reference)]
    env = [envelope_correlation(o, s) for o, s in zip(trimmed, stems)]
    per_class = {name: round(float(np.mean(f1[c::len(CLASSES)])), 3) for c, name in enumerate(CLASSES)}
    # A clip without onsets (every fan clip) scores 1 or 0 (any spurious onset), which swamps the mean.
    eventful = [f for f, r in zip(f1, reference) if len(r)]
    return {"onset_f1": round(float(np.mean(f1)), 3), "onset_f1_eventful": round(float(np.mean(eventful)), 3),
            "envelope_corr": round(float(np.mean(env)), 3),
            "onsets_per_clip": round(float(np.mean([len(o) for o in found])), 1), "onset_f1_per_class": per_class}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="encoder kind: a save_networks file")
    parser.add_argument("--steps", type=int, default=1500, help="generator training steps per kind")
    parser.add_argument("--clips", type=int, default=1600, help="training clips (the recipe's bank)")
    parser.add_argument("--held-out", type=int, default=48, help="single-source evaluation clips")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--mixed", nargs="?", const="moving", choices=("moving", "still"),
                        help="encoder kind: every clip beside another one (still: that one's first frame held)")
    parser.add_argument("--hidden-dim", type=int, help="the gate generator's width (default: the weights file's)")
    args = parser.parse_args()
    cfg = read_config(args.weights)[0]  # the gate's generator reads features of the encoder's width
    if args.hidden_dim:
        cfg = replace(cfg, hidden_dim=args.hidden_dim)
    bank = build_bank(args.clips, 0, cfg, MelCodec(cfg.codec))
    evaluation, stems = held_out(args.held_out, cfg)
    video_text, generator_text = text_encoders()
    results = {}
    for kind in args.features:
        start = time.time()
        torch.manual_seed(0)
        networks = TinyNetworks(cfg, selective=False)  # only its generator is used
        set_null_text(networks, generator_text)
        set_latent_stats(networks, bank)
        features = Features(kind, networks, args.weights, video_text, args.mixed)
        train_generator(features(bank), bank, networks, generator_text, args.steps)
        outputs = sample(networks, features(evaluation), evaluation.captions, generator_text)
        results[kind] = {**score(outputs, stems), "seconds": round(time.time() - start)}
        print(f"{kind:14s} {json.dumps(results[kind])}", flush=True)
    print(f"{args.held_out} held-out single-source clips, generators trained {args.steps} steps on {args.clips} "
          f"clips ({args.weights.name if 'encoder' in args.features else 'no encoder'}); torch threads "
          f"{torch.get_num_threads()}")
    if args.json:
        weights = os.path.relpath(args.weights)  # relative to where it ran: no machine's paths in the results
        args.json.write_text(json.dumps({"settings": vars(args) | {"weights": weights, "json": str(args.json)},
                                         "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
