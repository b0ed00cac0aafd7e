"""Shared test fixtures. Parity fixtures come from OTIO_FOLEY_PARITY_DIR (default ../shared/parity)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def parity_dir() -> Path:
    return Path(os.environ.get("OTIO_FOLEY_PARITY_DIR", REPO.parent / "shared" / "parity"))


@pytest.fixture(scope="session")
def parity_path() -> Path:
    path = parity_dir()
    if not (path / "MANIFEST.json").exists():
        pytest.fail(f"parity fixtures not found at {path} (set OTIO_FOLEY_PARITY_DIR)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _offline_and_small() -> None:
    """Tests never reach a hub and use few threads (CI has 2 cores)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
