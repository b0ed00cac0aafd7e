"""The MMAudio flow network (MM-DiT over latent | clip | text), also SelVA's generator.

It predicts the flow-matching velocity of normalised audio latents given CLIP-video features, frame-aligned
sync features (Synchformer or TextSynch) and CLIP-text features. Parameter names follow the official
`state_dict` so released checkpoints load strictly (parity README §2, §4). Duration-dependent pieces (RoPE
tables, sync upsampling) are derived from the input lengths at `prepare` time instead of being stored as
buffers, so one network serves any clip length.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .layers import MLP, ConvMLP, RMSNorm
from .sequence import (LATENT_DOWNSAMPLE, SYNC_TOKENS_PER_SEGMENT, SequenceLengths, sequence_lengths,
                       timed_sync_weights)

# Keys of non-persistent buffers that old official checkpoints may still contain.
LEGACY_BUFFER_KEYS = ("t_embed.freqs", "latent_rot", "clip_rot")
ROPE_THETA = 10_000


@dataclass(frozen=True)
class GeneratorConfig:
    latent_dim: int
    clip_dim: int
    sync_dim: int
    text_dim: int
    hidden_dim: int
    depth: int  # joint + fused blocks
    fused_depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    text_seq_len: int = 77
    v2: bool = False  # SiLU activations and a (hidden, max_period=1) timestep embedding
    sample_rate: int = 16_000  # of the audio back-end; fixes the latent rate with hop_length
    hop_length: int = 256
    # How the S*8 sync tokens reach the latent frames. "stretch" is the official nearest upsampling of the
    # flattened sequence, whose tokens land up to 8 frames (0.3 s) from the frames they encode; the released
    # models learnt to undo that. "timed" puts each token on its own frames (`timed_sync_weights`): selva-tiny
    # uses it because, at its size and budget, the generator did not learn the undoing (a generator given the
    # true mel as sync features cut its flow loss at t = 0.05 to 0.64 on the right frames, to 0.92 "stretch").
    sync_placement: str = "stretch"

    def __post_init__(self) -> None:
        if self.sync_placement not in ("stretch", "timed"):
            raise ValueError(f"sync_placement must be 'stretch' or 'timed', got {self.sync_placement!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    @property
    def latent_rate(self) -> float:
        """Latent frames per second: the mel frame rate halved by the VAE (as `sequence_lengths` counts)."""
        return self.sample_rate / self.hop_length / LATENT_DOWNSAMPLE

    def lengths(self, duration: float) -> SequenceLengths:
        return replace(sequence_lengths(duration, self.sample_rate, self.hop_length), text=self.text_seq_len)


def _official(latent_dim: int, heads: int, depth: int, fused: int, sample_rate: int, hop: int,
              v2: bool = False) -> GeneratorConfig:
    return GeneratorConfig(latent_dim=latent_dim, clip_dim=1024, sync_dim=768, text_dim=1024,
                           hidden_dim=64 * heads, depth=depth, fused_depth=fused, num_heads=heads,
                           v2=v2, sample_rate=sample_rate, hop_length=hop)


CONFIGS: dict[str, GeneratorConfig] = {
    "small_16k": _official(20, 7, 12, 8, 16_000, 256),
    "small_44k": _official(40, 7, 12, 8, 44_100, 512),
    "medium_44k": _official(40, 14, 12, 8, 44_100, 512),
    "large_44k": _official(40, 14, 21, 14, 44_100, 512),
    "large_44k_v2": _official(40, 14, 21, 14, 44_100, 512, v2=True),
}


# ----------------------------------------------------------------------------------------------- helpers

class TokenConv1d(nn.Conv1d):
    """Conv1d over the token axis of channel-last (B, N, C) tensors, 'same' padding."""

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int) -> None:
        super().__init__(in_dim, out_dim, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def rope_table(length: int, head_dim: int, scale: float = 1.0,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """Rotation matrices [[cos, -sin], [sin, cos]] per (position, pair): (1, length, head_dim/2, 2, 2), fp32.

    `scale` multiplies the frequencies; clip tokens use latent_len/clip_len so they sit on the latent time axis.
    """
    with torch.autocast(device_type="cuda", enabled=False):
        positions = torch.arange(length, dtype=torch.float32, device=device)
        freqs = 1.0 / ROPE_THETA ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
        angles = positions[:, None] * (freqs * scale)[None, :]
        cos, sin = angles.cos(), angles.sin()
        return torch.stack([cos, -sin, sin, cos], dim=-1).view(1, length, head_dim // 2, 2, 2)


def apply_rope(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs (2i, 2i+1) of (B, H, N, head_dim) by `rot`, computed in fp32."""
    with torch.autocast(device_type="cuda", enabled=False):
        pairs = x.float().unflatten(-1, (-1, 1, 2))  # (B, H, N, hd/2, 1, 2)
        out = rot[..., 0] * pairs[..., 0] + rot[..., 1] * pairs[..., 1]  # (B, H, N, hd/2, 2)
        return out.flatten(-2).to(x.dtype)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """SDPA over (B, H, N, hd), heads merged back head-major to (B, N, H*hd)."""
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


# ----------------------------------------------------------------------------------------------- blocks

class SelfAttention(nn.Module):
    """q/k/v projection with per-head RMSNorm on q and k; the fused qkv is interleaved (h, d, 3)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = RMSNorm(dim // num_heads)
        self.k_norm = RMSNorm(dim // num_heads)

    def heads(self, x: torch.Tensor, rot: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, self.num_heads, -1, 3).permute(4, 0, 2, 1, 3)  # (3, B, H, N, hd)
        q, k, v = self.q_norm(qkv[0]), self.k_norm(qkv[1]), qkv[2]
        if rot is not None:
            q, k = apply_rope(q, rot), apply_rope(k, rot)
        return q, k, v


class StreamBlock(nn.Module):
    """One adaLN-modulated transformer stream (MMDiT single block).

    `pre_only` streams (clip/text in the last joint block) only supply k/v: their adaLN gives (shift, scale)
    and they have no post-attention update. kernel_size > 1 uses token convolutions for linear1 and the FFN.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, kernel_size: int,
                 pre_only: bool = False) -> None:
        super().__init__()
        self.pre_only = pre_only
        self.attn = SelfAttention(dim, num_heads)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, (2 if pre_only else 6) * dim))
        if not pre_only:
            hidden = int(dim * mlp_ratio)
            if kernel_size == 1:
                self.linear1: nn.Module = nn.Linear(dim, dim)
                self.ffn: nn.Module = MLP(dim, hidden)
            else:
                self.linear1 = TokenConv1d(dim, dim, kernel_size)
                self.ffn = ConvMLP(dim, hidden, kernel_size)

    @staticmethod
    def _norm(x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), eps=1e-5)

    def pre_attention(self, x: torch.Tensor, c: torch.Tensor, rot: torch.Tensor | None,
                      rows: torch.Tensor | None = None) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """(q, k, v) of the modulated stream, and the remaining modulation for `post_attention`.

        `rows` (B,): x's row i is modulated by c's row rows[i] (see `Conditions.rows`); None: row i."""
        mod = self.adaLN_modulation(c)
        mod = (mod if rows is None else mod[rows]).chunk(2 if self.pre_only else 6, dim=-1)
        qkv = self.attn.heads(modulate(self._norm(x), mod[0], mod[1]), rot)
        return qkv, mod[2:]

    def post_attention(self, x: torch.Tensor, attn_out: torch.Tensor,
                       mod: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.pre_only:
            return x
        gate1, shift2, scale2, gate2 = mod
        x = x + self.linear1(attn_out) * gate1
        return x + self.ffn(modulate(self._norm(x), shift2, scale2)) * gate2

    def forward(self, x: torch.Tensor, c: torch.Tensor, rot: torch.Tensor | None,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        qkv, mod = self.pre_attention(x, c, rot, rows)
        return self.post_attention(x, attention(*qkv), mod)


class JointBlock(nn.Module):
    """One attention over [latent | clip | text]; each stream keeps its own weights and modulation."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, pre_only: bool) -> None:
        super().__init__()
        self.latent_block = StreamBlock(dim, num_heads, mlp_ratio, kernel_size=3)
        self.clip_block = StreamBlock(dim, num_heads, mlp_ratio, kernel_size=3, pre_only=pre_only)
        self.text_block = StreamBlock(dim, num_heads, mlp_ratio, kernel_size=1, pre_only=pre_only)

    def forward(self, latent: torch.Tensor, clip: torch.Tensor, text: torch.Tensor, global_c: torch.Tensor,
                extended_c: torch.Tensor, latent_rot: torch.Tensor, clip_rot: torch.Tensor,
                rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x_qkv, x_mod = self.latent_block.pre_attention(latent, extended_c, latent_rot, rows)
        c_qkv, c_mod = self.clip_block.pre_attention(clip, global_c, clip_rot)
        t_qkv, t_mod = self.text_block.pre_attention(text, global_c, None)
        out = attention(*(torch.cat(parts, dim=2) for parts in zip(x_qkv, c_qkv, t_qkv)))
        x_out, c_out, t_out = out.split([latent.shape[1], clip.shape[1], text.shape[1]], dim=1)
        latent = self.latent_block.post_attention(latent, x_out, x_mod)
        clip = self.clip_block.post_attention(clip, c_out, c_mod)
        text = self.text_block.post_attention(text, t_out, t_mod)
        return latent, clip, text


class TimestepEmbedder(nn.Module):
    """Sinusoidal [cos, sin] embedding of t in [0, 1] (not scaled by 1000), then an MLP."""

    def __init__(self, dim: int, freq_dim: int, max_period: float) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.max_period = max_period
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type="cuda", enabled=False):
            exponent = torch.arange(0, self.freq_dim, 2, dtype=torch.float32, device=t.device) / self.freq_dim
            freqs = (1.0 / 10_000 ** exponent) * (10_000 / self.max_period)
            args = t.float()[:, None] * freqs[None]
            emb = torch.cat([args.cos(), args.sin()], dim=-1)
        return self.mlp(emb.to(t.dtype))


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.conv = TokenConv1d(dim, out_dim, 7)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.conv(modulate(F.layer_norm(x, (x.shape[-1],), eps=1e-5), shift, scale))


# ----------------------------------------------------------------------------------------------- network

@dataclass
class Conditions:
    """Projected conditions: computed once per sampling run, since they do not depend on t or the latent."""

    clip_f: torch.Tensor  # (B, clip_len, D)
    sync_f: torch.Tensor  # (B, latent_len, D), upsampled to the latent rate
    text_f: torch.Tensor  # (B, text_len, D)
    clip_f_c: torch.Tensor  # (B, D)
    text_f_c: torch.Tensor  # (B, D)
    latent_rot: torch.Tensor = field(repr=False)
    clip_rot: torch.Tensor = field(repr=False)
    # Latent row i uses condition row rows[i] (None: row i). CFG's unconditional rows are identical for every
    # prompt with the same negative prompt; sharing one row computes their per-frame adaLN modulation, the
    # largest condition-only cost of a step, once instead of once per prompt.
    rows: torch.Tensor | None = None

    @property
    def batch(self) -> int:
        """Latent rows these conditions serve."""
        return self.clip_f.shape[0] if self.rows is None else len(self.rows)

    def row_index(self) -> torch.Tensor:
        return torch.arange(self.clip_f.shape[0], device=self.clip_f.device) if self.rows is None else self.rows

    def select(self, rows: torch.Tensor) -> Conditions:
        """Conditions for latent rows that use these condition rows, without copying them."""
        return replace(self, rows=self.row_index()[rows])

    def cat(self, other: Conditions) -> Conditions:
        """Stack two condition batches (e.g. conditional and unconditional) along the batch axis."""
        batched = {f.name: torch.cat([getattr(self, f.name), getattr(other, f.name)])
                   for f in fields(self) if f.name not in ("latent_rot", "clip_rot", "rows")}
        rows = None
        if self.rows is not None or other.rows is not None:
            rows = torch.cat([self.row_index(), other.row_index() + self.clip_f.shape[0]])
        return Conditions(**batched, latent_rot=self.latent_rot, clip_rot=self.clip_rot, rows=rows)


class FlowGenerator(nn.Module):
    """MMAudio MM-DiT velocity network (official name `MMAudio`); see the module docstring."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = cfg = config
        d = cfg.hidden_dim
        act = nn.SiLU if cfg.v2 else nn.SELU
        # v2 inserts a SiLU after the clip/text Linear, which shifts the Sequential indices (keys) as officially.
        linear_act = [nn.SiLU()] if cfg.v2 else []
        self.audio_input_proj = nn.Sequential(TokenConv1d(cfg.latent_dim, d, 7), act(), ConvMLP(d, 4 * d, 7))
        self.clip_input_proj = nn.Sequential(nn.Linear(cfg.clip_dim, d), *linear_act, ConvMLP(d, 4 * d, 3))
        self.sync_input_proj = nn.Sequential(TokenConv1d(cfg.sync_dim, d, 7), act(), ConvMLP(d, 4 * d, 3))
        self.text_input_proj = nn.Sequential(nn.Linear(cfg.text_dim, d), *linear_act, MLP(d, 4 * d))
        self.clip_cond_proj = nn.Linear(d, d)
        self.text_cond_proj = nn.Linear(d, d)
        self.global_cond_mlp = MLP(d, 4 * d)
        self.sync_pos_emb = nn.Parameter(torch.zeros(1, 1, SYNC_TOKENS_PER_SEGMENT, cfg.sync_dim))
        self.final_layer = FinalLayer(d, cfg.latent_dim)
        self.t_embed = (TimestepEmbedder(d, d, max_period=1) if cfg.v2
                        else TimestepEmbedder(d, 256, max_period=10_000))
        n_joint = cfg.depth - cfg.fused_depth
        self.joint_blocks = nn.ModuleList(
            JointBlock(d, cfg.num_heads, cfg.mlp_ratio, pre_only=i == n_joint - 1) for i in range(n_joint))
        self.fused_blocks = nn.ModuleList(
            StreamBlock(d, cfg.num_heads, cfg.mlp_ratio, kernel_size=3) for _ in range(cfg.fused_depth))
        # Stored in checkpoints as frozen parameters; identity statistics until set from data or loaded.
        self.latent_mean = nn.Parameter(torch.zeros(1, 1, cfg.latent_dim), requires_grad=False)
        self.latent_std = nn.Parameter(torch.ones(1, 1, cfg.latent_dim), requires_grad=False)
        self.empty_string_feat = nn.Parameter(torch.zeros(cfg.text_seq_len, cfg.text_dim), requires_grad=False)
        self.empty_clip_feat = nn.Parameter(torch.zeros(1, cfg.clip_dim))
        self.empty_sync_feat = nn.Parameter(torch.zeros(1, cfg.sync_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Training init: Xavier linears with zero bias, small t-MLP, and zero adaLN / output layers so every
        block starts as an identity and the first prediction is zero (the DiT "adaLN-Zero" recipe)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for linear in (self.t_embed.mlp[0], self.t_embed.mlp[2]):
            nn.init.normal_(linear.weight, std=0.02)
        zeroed = [self.final_layer.adaLN_modulation[1], self.final_layer.conv]
        zeroed += [blk.adaLN_modulation[1] for blk in self._stream_blocks()]
        for module in zeroed:
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
        for p in (self.sync_pos_emb, self.empty_clip_feat, self.empty_sync_feat):
            nn.init.zeros_(p)

    def _stream_blocks(self) -> Iterator[StreamBlock]:
        for joint in self.joint_blocks:
            yield from (joint.latent_block, joint.clip_block, joint.text_block)
        yield from self.fused_blocks

    # -- conditions ------------------------------------------------------------------------------------

    def lengths(self, duration: float) -> SequenceLengths:
        return self.config.lengths(duration)

    def prepare(self, clip_f: torch.Tensor, sync_f: torch.Tensor, text_f: torch.Tensor,
                latent_len: int) -> Conditions:
        """Project the raw features (B, clip_len, clip_dim), (B, S*8, sync_dim), (B, text_len, text_dim)."""
        b, sync_len, _ = sync_f.shape
        if sync_len % SYNC_TOKENS_PER_SEGMENT:
            raise ValueError(f"sync length {sync_len} is not a whole number of 8-token segments")
        # The same 8 position embeddings are added inside every segment (null features included).
        sync_f = (sync_f.view(b, -1, SYNC_TOKENS_PER_SEGMENT, sync_f.shape[-1]) + self.sync_pos_emb).flatten(1, 2)
        sync_f = self.place_sync(self.sync_input_proj(sync_f), latent_len)
        clip_f = self.clip_input_proj(clip_f)
        text_f = self.text_input_proj(text_f)
        clip_len = clip_f.shape[1]
        head_dim, device = self.config.head_dim, clip_f.device
        return Conditions(
            clip_f=clip_f, sync_f=sync_f, text_f=text_f,
            clip_f_c=self.clip_cond_proj(clip_f.mean(dim=1)),
            text_f_c=self.text_cond_proj(text_f.mean(dim=1)),
            latent_rot=rope_table(latent_len, head_dim, 1.0, device),
            clip_rot=rope_table(clip_len, head_dim, latent_len / clip_len, device),
        )

    def place_sync(self, sync_f: torch.Tensor, latent_len: int) -> torch.Tensor:
        """(B, S*8, D) per-token features → (B, latent_len, D), one per latent frame (`config.sync_placement`)."""
        if self.config.sync_placement == "timed":
            weights = timed_sync_weights(sync_f.shape[1] // SYNC_TOKENS_PER_SEGMENT, latent_len,
                                         self.config.latent_rate)
            return weights.to(sync_f) @ sync_f
        return F.interpolate(sync_f.transpose(1, 2), size=latent_len, mode="nearest-exact").transpose(1, 2)

    def fit_text(self, text_f: torch.Tensor) -> torch.Tensor:
        """Zero-pad or truncate (B, L, text_dim) token features to the fixed text length (77).

        CLIP text is always 77 tokens; shorter encoders (e.g. MiniLM in the tiny model) are padded with zeros,
        in training and inference alike, since this network takes no text mask.
        """
        length = self.config.text_seq_len
        return F.pad(text_f[:, :length], (0, 0, 0, max(0, length - text_f.shape[1])))

    def null_clip(self, batch: int, clip_len: int) -> torch.Tensor:
        return self.empty_clip_feat.unsqueeze(0).expand(batch, clip_len, -1)

    def null_sync(self, batch: int, sync_len: int) -> torch.Tensor:
        return self.empty_sync_feat.unsqueeze(0).expand(batch, sync_len, -1)

    def null_text(self, batch: int) -> torch.Tensor:
        return self.empty_string_feat.unsqueeze(0).expand(batch, -1, -1)

    def null_conditions(self, batch: int, lengths: SequenceLengths,
                        negative_text_f: torch.Tensor | None = None) -> Conditions:
        """Unconditional branch of CFG: null clip and sync, and the negative prompt's text features
        (B, text_len, text_dim) or else the stored empty-string features."""
        text = self.null_text(batch) if negative_text_f is None else negative_text_f
        return self.prepare(self.null_clip(batch, lengths.clip), self.null_sync(batch, lengths.sync), text,
                            lengths.latent)

    # -- velocity --------------------------------------------------------------------------------------

    def velocity(self, latent: torch.Tensor, t: torch.Tensor, cond: Conditions) -> torch.Tensor:
        """Flow velocity for normalised latents (B, N, latent_dim) at times t (B,).

        With shared condition rows (`cond.rows`) every row must be at the same t, as in sampling."""
        x = self.audio_input_proj(latent)
        rows = cond.rows
        if rows is not None:
            if not bool((t == t[0]).all()):
                raise ValueError("shared condition rows need one t for the whole batch")
            t = t[:1].expand(cond.clip_f.shape[0])
        global_c = (self.t_embed(t) + self.global_cond_mlp(cond.clip_f_c + cond.text_f_c)).unsqueeze(1)
        extended_c = global_c + cond.sync_f  # one modulation vector per latent frame and condition row
        clip, text = cond.clip_f, cond.text_f
        if rows is not None:
            global_c, clip, text = global_c[rows], clip[rows], text[rows]
        for block in self.joint_blocks:
            x, clip, text = block(x, clip, text, global_c, extended_c, cond.latent_rot, cond.clip_rot, rows)
        for block in self.fused_blocks:
            x = block(x, extended_c, cond.latent_rot, rows)
        # The official network conditions the final layer on global_c (acknowledged upstream, kept for parity).
        return self.final_layer(x, global_c)

    def forward(self, latent: torch.Tensor, t: torch.Tensor, clip_f: torch.Tensor, sync_f: torch.Tensor,
                text_f: torch.Tensor) -> torch.Tensor:
        return self.velocity(latent, t, self.prepare(clip_f, sync_f, text_f, latent.shape[1]))

    # -- latent statistics, checkpoints, training groups -----------------------------------------------

    def normalize(self, latent: torch.Tensor) -> torch.Tensor:
        return (latent - self.latent_mean) / self.latent_std

    def unnormalize(self, latent: torch.Tensor) -> torch.Tensor:
        return latent * self.latent_std + self.latent_mean

    def load_official(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Strict load of an official `network.state_dict()`, minus legacy non-persistent buffers."""
        self.load_state_dict({k: v for k, v in state_dict.items() if k not in LEGACY_BUFFER_KEYS}, strict=True)

    def stage2_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Parameters SelVA's stage 2 tunes: the sync (video) input path and the adaLN layers that receive
        the per-frame video condition (latent stream of every joint block, every fused block)."""
        prefixes = ["sync_input_proj.", "sync_pos_emb"]
        prefixes += [f"joint_blocks.{i}.latent_block.adaLN_modulation." for i in range(len(self.joint_blocks))]
        prefixes += [f"fused_blocks.{i}.adaLN_modulation." for i in range(len(self.fused_blocks))]
        for name, param in self.named_parameters():
            if name.startswith(tuple(prefixes)):
                yield name, param


def build_generator(name: str) -> FlowGenerator:
    """One of the official variants by name (see CONFIGS)."""
    return FlowGenerator(CONFIGS[name])


def small_16k() -> FlowGenerator:
    return build_generator("small_16k")


def small_44k() -> FlowGenerator:
    return build_generator("small_44k")


def medium_44k() -> FlowGenerator:
    return build_generator("medium_44k")


def large_44k() -> FlowGenerator:
    return build_generator("large_44k")


def large_44k_v2() -> FlowGenerator:
    return build_generator("large_44k_v2")
