"""Parity with the official implementation: every fixture listed in the parity folder's MANIFEST.json.

The folder comes from OTIO_FOLEY_PARITY_DIR (default ../shared/parity). Runners live in
tests/parity_runners/ keyed by the fixture's official class.
"""
from __future__ import annotations

import fnmatch
import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import parity_dir
from parity_runners import all_runners


def fixture_names() -> list[str]:
    manifest = parity_dir() / "MANIFEST.json"
    if not manifest.exists():
        return []
    files = json.loads(manifest.read_text())["files"]
    return sorted(n[: -len(".safetensors")] for n in files if n.endswith(".safetensors") and "/" not in n)


def tolerance(meta: dict, name: str) -> dict | str:
    tol = meta["tolerance"]
    for pattern, budget in tol.get("overrides", {}).items():
        if fnmatch.fnmatchcase(name, pattern):
            return budget
    return tol["default"]


def official_class(meta: dict) -> str:
    return meta["official_class"].split()[0].split("(")[0].rstrip(",")


@pytest.mark.parametrize("fixture", fixture_names())
def test_fixture(fixture: str) -> None:
    folder = parity_dir()
    meta = json.loads((folder / f"{fixture}.json").read_text())
    tensors = load_file(str(folder / f"{fixture}.safetensors"))
    cls = official_class(meta)
    runners = all_runners()
    assert cls in runners, f"{fixture}: no parity runner for official class {cls!r}"
    torch.manual_seed(0)
    with torch.inference_mode():
        got = runners[cls](tensors, meta)
    missing = [k for k in tensors if k.startswith("out.") and k not in got]
    assert not missing, f"{fixture}: runner did not produce {missing}"
    failures = []
    for name, actual in got.items():
        expected = tensors[name]
        actual = actual.to(expected.dtype) if expected.dtype.is_floating_point else actual
        if actual.shape != expected.shape:
            failures.append(f"{fixture}/{name}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}")
            continue
        budget = tolerance(meta, name)
        if budget == "exact" or not expected.dtype.is_floating_point:
            if not torch.equal(actual, expected):
                failures.append(f"{fixture}/{name}: not exactly equal")
            continue
        err = (actual.double() - expected.double()).abs()
        allowed = budget["atol"] + budget["rtol"] * expected.double().abs()
        if not bool((err <= allowed).all()):
            worst = int((err - allowed).argmax())
            failures.append(
                f"{fixture}/{name}: max |diff| {err.max().item():.3g} exceeds atol {budget['atol']:g} + "
                f"rtol {budget['rtol']:g}·|expected| (worst at flat index {worst}: "
                f"{actual.flatten()[worst].item():.6g} vs {expected.flatten()[worst].item():.6g})"
            )
    assert not failures, "\n".join(failures)
