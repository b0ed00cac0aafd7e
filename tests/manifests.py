"""Compare a module's state_dict keys and shapes with a full-size checkpoint manifest (../shared/parity/manifests)."""
from __future__ import annotations

import json

import torch
from torch import nn

from conftest import parity_dir


def manifest_keys(name: str) -> dict[str, tuple[int, ...]]:
    """`name` like "mmaudio_small_16k" -> {state_dict key: shape} of the released checkpoint."""
    data = json.loads((parity_dir() / "manifests" / f"{name}.json").read_text())
    return {k: tuple(v[0]) for k, v in data["keys"].items()}


def assert_state_dict_matches(module: nn.Module | dict[str, torch.Tensor], name: str,
                              keep=lambda key: True) -> None:
    """Exactly the manifest's keys (those `keep` accepts) with the same shapes; names the differences."""
    sd = module.state_dict() if isinstance(module, nn.Module) else module
    ours = {k: tuple(v.shape) for k, v in sd.items()}
    theirs = {k: s for k, s in manifest_keys(name).items() if keep(k)}
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    shapes = [f"{k}: ours {ours[k]} vs {theirs[k]}" for k in sorted(set(ours) & set(theirs)) if ours[k] != theirs[k]]
    assert not (missing or extra or shapes), (
        f"{name}: {len(missing)} missing {missing[:5]}, {len(extra)} unexpected {extra[:5]}, "
        f"{len(shapes)} shape mismatches {shapes[:5]}"
    )
