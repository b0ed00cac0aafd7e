"""Parity runners: one function per official class, discovered by tests/test_parity.py.

Each module in this package defines `RUNNERS = {"<official class path>": run}` where the key is the first
dotted name of the fixture JSON's `official_class` (e.g. "selva.model.networks_generator.MMAudio") and
`run(tensors, meta) -> {"out.x": tensor, "mid.y": tensor, ...}` rebuilds the fixture's computation with our
modules from `params.*` and `in.*`. Every `out.*` of the fixture must be returned; `mid.*` are compared
when returned. A new fixture of a known class is therefore tested with no code change.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

import torch

Runner = Callable[[dict[str, torch.Tensor], dict], dict[str, torch.Tensor]]


def all_runners() -> dict[str, Runner]:
    runners: dict[str, Runner] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        runners.update(getattr(module, "RUNNERS", {}))
    return runners


def params(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The fixture's weights under their official state_dict names."""
    return {k[len("params."):]: v for k, v in tensors.items() if k.startswith("params.")}
