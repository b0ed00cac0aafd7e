"""FLAN-T5 and CLIP-text encoders at tiny random configs (no downloads): key conversion from an open_clip
checkpoint layout against an independent plain-torch reference, open_clip tokenisation rules, T5 masks."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from otio_foley.models.text_encoders import (CLIP_CONTEXT, ClipTextEncoder, ClipTokenizer, T5TextEncoder,
                                             clip_text_config, convert_open_clip_text)

WIDTH, HEADS, LAYERS, VOCAB = 32, 4, 2, 600


def open_clip_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in open_clip's CLIP layout: text tower, projection, scale and an image tower."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    sd = {"token_embedding.weight": rnd(VOCAB, WIDTH), "positional_embedding": rnd(CLIP_CONTEXT, WIDTH),
          "ln_final.weight": 1 + rnd(WIDTH, scale=0.1), "ln_final.bias": rnd(WIDTH, scale=0.1),
          "text_projection": rnd(WIDTH, 16), "logit_scale": torch.tensor(4.6),
          "visual.conv1.weight": rnd(WIDTH, 3, 14, 14), "visual.class_embedding": rnd(WIDTH),
          "visual.transformer.resblocks.0.attn.in_proj_weight": rnd(3 * WIDTH, WIDTH)}
    for i in range(LAYERS):
        p = f"transformer.resblocks.{i}."
        sd |= {p + "ln_1.weight": 1 + rnd(WIDTH, scale=0.1), p + "ln_1.bias": rnd(WIDTH, scale=0.1),
               p + "attn.in_proj_weight": rnd(3 * WIDTH, WIDTH), p + "attn.in_proj_bias": rnd(3 * WIDTH),
               p + "attn.out_proj.weight": rnd(WIDTH, WIDTH), p + "attn.out_proj.bias": rnd(WIDTH),
               p + "ln_2.weight": 1 + rnd(WIDTH, scale=0.1), p + "ln_2.bias": rnd(WIDTH, scale=0.1),
               p + "mlp.c_fc.weight": rnd(4 * WIDTH, WIDTH), p + "mlp.c_fc.bias": rnd(4 * WIDTH),
               p + "mlp.c_proj.weight": rnd(WIDTH, 4 * WIDTH), p + "mlp.c_proj.bias": rnd(WIDTH)}
    return sd


def reference_features(sd: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """open_clip's text path written out with plain ops: pre-LN causal blocks, quick-GELU, ln_final, L2."""
    x = sd["token_embedding.weight"][ids] + sd["positional_embedding"]
    n, hd = ids.shape[1], WIDTH // HEADS
    causal = torch.full((n, n), float("-inf")).triu(1)
    for i in range(LAYERS):
        p = f"transformer.resblocks.{i}."
        h = F.layer_norm(x, (WIDTH,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"], 1e-5)
        q, k, v = (h @ sd[p + "attn.in_proj_weight"].T + sd[p + "attn.in_proj_bias"]).split(WIDTH, -1)
        q, k, v = (t.unflatten(-1, (HEADS, hd)).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / hd ** 0.5 + causal, -1) @ v
        x = x + att.transpose(1, 2).flatten(2) @ sd[p + "attn.out_proj.weight"].T + sd[p + "attn.out_proj.bias"]
        h = F.layer_norm(x, (WIDTH,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"], 1e-5)
        h = h @ sd[p + "mlp.c_fc.weight"].T + sd[p + "mlp.c_fc.bias"]
        x = x + (h * torch.sigmoid(1.702 * h)) @ sd[p + "mlp.c_proj.weight"].T + sd[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (WIDTH,), sd["ln_final.weight"], sd["ln_final.bias"], 1e-5)
    return F.normalize(x, dim=-1)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet (printable bytes map to themselves, the rest to 256+)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


@pytest.fixture(scope="module")
def clip_tokenizer(tmp_path_factory) -> ClipTokenizer:
    """A tiny CLIP BPE in the OpenAI vocab.json/merges.txt layout (byte alphabet, a few merges)."""
    merges = ["d o", "do g</w>", "b a", "ba r", "bar k</w>"]
    alphabet = list(bytes_to_unicode().values())
    vocab = alphabet + [c + "</w>" for c in alphabet] + [m.replace(" ", "") for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder = tmp_path_factory.mktemp("bpe")
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return ClipTokenizer(folder / "vocab.json", folder / "merges.txt")


def test_open_clip_conversion_matches_reference(clip_tokenizer: ClipTokenizer) -> None:
    sd = open_clip_state()
    converted = convert_open_clip_text(sd)
    assert not any("visual" in k or "projection" in k.split(".")[0] or "logit" in k for k in converted)
    encoder = ClipTextEncoder.from_open_clip_state(clip_tokenizer, sd, clip_text_config(WIDTH, HEADS, LAYERS, VOCAB))
    ids = torch.randint(1, 500, (2, CLIP_CONTEXT), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = F.normalize(encoder.model(input_ids=ids).last_hidden_state, dim=-1)
    torch.testing.assert_close(ours, reference_features(sd, ids), atol=2e-5, rtol=1e-4)


def test_conversion_covers_every_text_parameter() -> None:
    from transformers import CLIPTextModel

    expected = set(CLIPTextModel(clip_text_config(WIDTH, HEADS, LAYERS, VOCAB)).state_dict()) - {"embeddings.position_ids"}
    assert set(convert_open_clip_text(open_clip_state())) == expected


def test_clip_tokenizer_follows_open_clip(clip_tokenizer: ClipTokenizer) -> None:
    tok = clip_tokenizer.tokenizer
    sot, eot, dog = (tok.convert_tokens_to_ids(t) for t in ("<|startoftext|>", "<|endoftext|>", "dog</w>"))
    ids = clip_tokenizer(["  DOG &amp;\n", "dog " * 200])
    assert ids.shape == (2, CLIP_CONTEXT) and ids.dtype == torch.long
    amp = tok.convert_tokens_to_ids("&</w>")
    assert ids[0, :4].tolist() == [sot, dog, amp, eot]  # lower-cased, HTML unescaped, whitespace stripped
    assert (ids[0, 4:] == 0).all()  # padded with id 0 like open_clip, not with EOT
    assert ids[1, 0] == sot and ids[1, -1] == eot and (ids[1, 1:-1] == dog).all()  # truncated, EOT kept last


def test_clip_encoder_output_is_fixed_length_normalised(clip_tokenizer: ClipTokenizer) -> None:
    encoder = ClipTextEncoder.from_open_clip_state(clip_tokenizer, open_clip_state(),
                                                   clip_text_config(WIDTH, HEADS, LAYERS, VOCAB))
    feats, mask = encoder(["dog bark", ""])
    assert feats.shape == (2, CLIP_CONTEXT, WIDTH) and mask.all()
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(2, CLIP_CONTEXT))
    # Positions after EOT still carry features (they depend on the pad id), unlike a zero-padded cache.
    assert feats[1, -1].abs().sum() > 0


def tiny_t5():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    words = ["<pad>", "</s>", "<unk>", "a", "dog", "barks", "loud", "glass"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                        unk_token="<unk>")
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(words), d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2)
    return tokenizer, T5EncoderModel(config)


def test_t5_features_and_mask_per_prompt() -> None:
    tokenizer, model = tiny_t5()
    encoder = T5TextEncoder(tokenizer, model)
    feats, mask = encoder(["a dog barks loud", "glass"])
    assert feats.shape == (2, 5, 16) and mask.tolist() == [[True] * 5, [True, True, False, False, False]]
    alone = T5TextEncoder(tokenizer, model)(["glass"])[0]
    torch.testing.assert_close(feats[1, :2], alone[0], atol=1e-5, rtol=1e-5)  # padding does not leak
    assert (feats[1, 2:] == 0).all()
    ids = tokenizer(["a dog barks loud"], return_tensors="pt")
    with torch.no_grad():
        direct = model(**ids).last_hidden_state
    torch.testing.assert_close(feats[:1], direct)
