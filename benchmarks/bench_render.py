"""Where the time of a render goes: the example edit through the full-size SelVA S-16k architecture.

    OMP_NUM_THREADS=2 python benchmarks/bench_render.py [--steps 25] [--edit examples/edit_25fps.otio]
        [--json benchmarks/results/bench_render.json]

Builds SelVAPipeline at the released sizes (TextSynch video_enc_sup_5, MM-DiT small_16k, 16 kHz VAE +
BigVGAN, FLAN-T5-base encoder, CLIP ViT-H text tower) with RANDOM weights: the official weights cannot
be downloaded here, and the cost of a network does not depend on its weight values. The two text towers
get a word-hashing stand-in tokenizer (the tokenizer files are not here either; tokenizing costs
microseconds next to the towers). The audio is noise; only the timings mean anything.

It renders the edit with `otio_foley.render.render` into a fresh output folder and a fresh cache (so
every window is generated), timing each component through thin wrappers:

    decode        media decode (PyAV seek + decode + squash), from the render's own timings
    text          T5 (video side) + CLIP text (generator side), each distinct prompt once (cached)
    video         TextSynch: ViT trunk once per window + text cross-attention per prompt
    sampling      the Euler loop (MM-DiT with CFG), i.e. generate minus text, video and audio decode
    audio decode  VAE decoder + BigVGAN vocoder
    write         joining windows, resampling to 48 kHz, BWF writing
    conform       timelines for every target
    review        the review sheet
and the share of non-model time (decode + write + conform + review + planning) in the total.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from otio_foley.models.audio_decoder import audio_decoder_16k
from otio_foley.models.generator import small_16k
from otio_foley.models.pipeline import SelVAPipeline
from otio_foley.models.text_encoders import CachedTextEncoder
from otio_foley.models.textsynch import official_textsynch
from otio_foley.render import RenderOptions, render

REPO = Path(__file__).resolve().parents[1]
TIMES: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)


class _Timed:
    """Calls `fn` and adds its wall time to TIMES[name]."""

    def __init__(self, name: str, fn) -> None:
        self.name, self.fn = name, fn

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            TIMES[self.name] += time.perf_counter() - t0
            CALLS[self.name] += 1


class RandomTextTower(CachedTextEncoder):
    """A transformers text encoder at its released size with random weights and a word-hash tokenizer."""

    def __init__(self, model: torch.nn.Module, vocab: int, *, length: int | None = None,
                 pad_to: int | None = None) -> None:
        super().__init__(length)
        self.model, self.vocab, self.pad_to = model.eval(), vocab, pad_to
        self.dim = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.d_model

    def _ids(self, text: str) -> list[int]:
        return [1 + int(hashlib.md5(w.encode()).hexdigest()[:6], 16) % (self.vocab - 2) for w in text.split()] + [1]

    def _encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = [self._ids(t) for t in texts]
        width = self.pad_to or max(len(i) for i in ids)
        input_ids = torch.zeros(len(ids), width, dtype=torch.long)
        mask = torch.zeros(len(ids), width, dtype=torch.long)
        for row, i in enumerate(ids):
            input_ids[row, :len(i[:width])], mask[row, :len(i[:width])] = torch.tensor(i[:width]), 1
        with torch.inference_mode():
            hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return hidden, mask.bool() if self.pad_to is None else torch.ones_like(mask, dtype=torch.bool)


def build_pipeline() -> SelVAPipeline:
    """Full-size S-16k SelVA with random weights and every component wrapped by a timer."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    t5 = T5EncoderModel(T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_heads=12,
                                 feed_forward_proj="gated-gelu", is_encoder_decoder=False))
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=1024, intermediate_size=4096,
                                        num_hidden_layers=24, num_attention_heads=16, max_position_embeddings=77,
                                        hidden_act="quick_gelu", projection_dim=1024))
    video = official_textsynch().eval()
    decoder = audio_decoder_16k().eval()
    decoder.vocoder.fold_weight_norm()  # as AudioDecoder.load_weights does after loading real weights
    pipeline = SelVAPipeline(name="selva-s16k-random", checksum="random00", generator=small_16k().eval(),
                             video_encoder=video, audio_decoder=decoder,
                             generator_text_encoder=_Timed("text", RandomTextTower(clip, 49408, length=77, pad_to=77)),
                             video_text_encoder=_Timed("text", RandomTextTower(t5, 32128)))
    video.encode_trunk = _Timed("video", video.encode_trunk)
    video.condition = _Timed("video", video.condition)
    decoder.decode = _Timed("audio decode", decoder.decode)
    pipeline.generate = _Timed("generate", pipeline.generate)
    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edit", type=Path, default=REPO / "examples" / "edit_25fps.otio")
    parser.add_argument("--cues", type=Path, default=REPO / "examples" / "cues.yaml")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "bench_render.json")
    args = parser.parse_args()

    t0 = time.perf_counter()
    model = build_pipeline()
    build = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        options = RenderOptions(output_dir=Path(tmp) / "out", cache_dir=Path(tmp) / "cache", steps=args.steps,
                                targets=("otio-resolve", "otio-premiere", "fcp7xml", "otioz"))
        report = render(args.edit, args.cues, model, options, log=lambda line: None)
    assert report.exit_code == 0, [r.error for r in report.failed]
    spent = report.timings
    model_parts = {"text": TIMES["text"], "video": TIMES["video"], "audio decode": TIMES["audio decode"]}
    model_parts["sampling"] = TIMES["generate"] - sum(model_parts.values())
    other = {"plan": spent.get("plan", 0.0), "decode": spent.get("decode", 0.0), "write": spent.get("write", 0.0),
             "conform": spent.get("conform", 0.0), "review": spent.get("review", 0.0)}
    total = spent["total"]
    other["other (bookkeeping)"] = total - TIMES["generate"] - sum(other.values())
    rows = {**model_parts, **other}
    non_model = sum(other.values())
    result = {
        "what": "otio-foley render of the example edit, full-size SelVA S-16k architecture, random weights",
        "edit": str(args.edit.relative_to(REPO)), "stems": len(report.results),
        "windows": sum(len(r.plan.windows) for r in report.results),
        "generate_calls": CALLS["generate"],
        "steps": args.steps, "seconds": {k: round(v, 3) for k, v in rows.items()}, "total_seconds": round(total, 3),
        "model_seconds": round(TIMES["generate"], 3), "non_model_share": round(non_model / total, 4),
        "build_seconds": round(build, 2), "machine": {
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            "torch": torch.__version__}}
    print(f"render of {result['edit']}: {result['stems']} stems, {result['windows']} windows in "
          f"{result['generate_calls']} generate calls, {args.steps} steps, "
          f"{torch.get_num_threads()} threads, load {result['machine']['load_avg_1m_at_end']}")
    print(f"{'part':22} {'seconds':>9} {'share':>7}")
    for name, seconds in rows.items():
        print(f"{name:22} {seconds:9.2f} {seconds / total:7.1%}")
    print(f"{'total':22} {total:9.2f} {1:7.1%}")
    print(f"non-model share: {non_model / total:.2%} (target <= 5%)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
