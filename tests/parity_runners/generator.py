"""Parity runners for the MMAudio/SelVA flow network (generator_small_2s) and flow matching (flow_matching_train)."""
from __future__ import annotations

import torch

from otio_foley.models.flow_matching import (euler_sample, flow_loss, guided_velocity, interpolate, logit_normal_t,
                                  target_velocity)
from otio_foley.models.generator import FlowGenerator, GeneratorConfig
from parity_runners import params


def build(meta: dict, tensors: dict[str, torch.Tensor]) -> FlowGenerator:
    args = meta["constructor_args"]
    config = GeneratorConfig(**{k: args[k] for k in ("latent_dim", "clip_dim", "sync_dim", "text_dim", "hidden_dim",
                                                     "depth", "fused_depth", "num_heads", "mlp_ratio",
                                                     "text_seq_len", "v2")})
    net = FlowGenerator(config).eval()
    net.load_official(params(tensors))
    return net


def record_outputs(net: FlowGenerator, got: dict[str, torch.Tensor]) -> list:
    """Forward hooks storing the conditional pass's intermediate values under their fixture names."""
    def store(name: str, pick=lambda out: out):
        def hook(module, inputs, output):
            got.setdefault(name, pick(output))
        return hook

    handles = [net.t_embed.register_forward_hook(store("mid.t_embed")),
               net.global_cond_mlp.register_forward_hook(store("mid.global_cond_mlp")),
               net.audio_input_proj.register_forward_hook(store("mid.audio_input_proj"))]
    for i, block in enumerate(net.joint_blocks):
        streams = ("latent",) if block.clip_block.pre_only else ("latent", "clip", "text")  # pre-only: unchanged
        for j, stream in enumerate(streams):
            handles.append(block.register_forward_hook(store(f"mid.joint_block{i}.{stream}", lambda o, j=j: o[j])))
    for i, block in enumerate(net.fused_blocks):
        handles.append(block.register_forward_hook(store(f"mid.fused_block{i}.latent")))
    return handles


def run_generator(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, torch.Tensor]:
    net = build(meta, tensors)
    seq = meta["sequence"]
    latent, t = tensors["in.latent"], tensors["in.t"]
    clip, sync, text, neg = (tensors[f"in.{k}"] for k in ("clip_f", "sync_f", "text_f", "neg_text_f"))
    b, n = latent.shape[:2]
    assert n == seq["latent_seq_len"]
    got: dict[str, torch.Tensor] = {}

    handles = record_outputs(net, got)
    cond = net.prepare(clip, sync, text, n)
    got["out.flow_cond"] = net.velocity(latent, t, cond)
    for h in handles:
        h.remove()
    got.update({f"mid.cond.{k}": getattr(cond, k) for k in ("clip_f", "sync_f", "text_f", "clip_f_c", "text_f_c")})
    got["mid.latent_rot"], got["mid.clip_rot"] = cond.latent_rot, cond.clip_rot

    null_clip, null_sync = net.null_clip(b, clip.shape[1]), net.null_sync(b, sync.shape[1])
    got["out.flow_null"] = net(latent, t, null_clip, null_sync, net.null_text(b))
    got["out.flow_null_negtext"] = net(latent, t, null_clip, null_sync, neg)
    got["out.flow_selva_cond"] = net(latent, t, null_clip, sync, text)

    sampling = meta["sampling"]
    lengths = net.config.lengths(seq["duration_s"])
    assert (lengths.latent, lengths.clip, lengths.sync) == (n, clip.shape[1], sync.shape[1])

    def sample(cond_clip: torch.Tensor, negative: torch.Tensor | None, trace: str | None) -> torch.Tensor:
        velocity = guided_velocity(net.velocity, net.prepare(cond_clip, sync, text, n),
                                   net.null_conditions(b, lengths, negative), sampling["cfg_strength"])
        steps = iter(range(sampling["num_steps"]))

        def traced(step_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            v = velocity(step_t, x)
            if trace:
                i = next(steps)
                got[f"{trace}.step{i}.x"], got[f"{trace}.step{i}.v_cfg"] = x, v
            return v

        return euler_sample(traced, tensors["in.x0"], steps=sampling["num_steps"])

    got["mid.sample_selva.t_grid"] = torch.linspace(0, 1, sampling["num_steps"] + 1)
    for name, cond_clip, negative in (("selva", null_clip, neg), ("mmaudio", clip, None)):
        x1 = sample(cond_clip, negative, "mid.sample_selva" if name == "selva" else None)
        got[f"out.sample_{name}.x1"] = x1
        got[f"out.sample_{name}.x1_unnormalized"] = net.unnormalize(x1)
    return got


def run_flow_matching(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, torch.Tensor]:
    x0, x1, t = tensors["in.x0"], tensors["in.x1"], tensors["in.t"]
    seed = int(meta["log_normal_sample_call"]["generator"].split("manual_seed(")[1].rstrip(")"))
    return {
        "out.xt": interpolate(x0, x1, t),
        "out.v_target": target_velocity(x0, x1),
        "out.loss": flow_loss(tensors["in.pred_v"], x0, x1),
        "out.t_logit_normal": logit_normal_t(x0.shape[0], torch.Generator().manual_seed(seed)),
    }


RUNNERS = {
    "selva.model.networks_generator.MMAudio": run_generator,
    "selva.model.flow_matching.FlowMatching": run_flow_matching,
}
