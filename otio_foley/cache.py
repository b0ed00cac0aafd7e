"""Content-addressed store of generated audio, so re-renders after an edit change only redo what changed.

An entry is one generated window (float32 array at the model's native rate) under its cache key
(`otio_foley.jobs.window_key`: sha256 of everything that determines the audio). Writes go to a temp
file in the same folder and are renamed into place, so readers never see half an entry and concurrent
writers of the same key (render farm) simply both succeed: same key, same audio.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

_KEY = re.compile(r"^[0-9a-f]{64}$")


DEFAULT_OUTPUT_DIR = Path("otio-foley-out")  # OUTDIR of `render` and `plan` when -o is not given


def default_cache_dir(output_dir: Path | str) -> Path:
    """$OTIO_FOLEY_CACHE, else OUTDIR/.cache: the cache travels with the stems it made, and farm shards
    writing into one OUTDIR share it without extra setup. `--cache-dir` overrides both."""
    if os.environ.get("OTIO_FOLEY_CACHE"):
        return Path(os.environ["OTIO_FOLEY_CACHE"])
    return Path(output_dir) / ".cache"


class Cache:
    """`Cache(dir)`: has / get / put of audio arrays by sha256 hex key. Layout: dir/ab/abcdef....npy."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        if not _KEY.match(key):  # keys become file names: never let anything else through
            raise ValueError(f"not a sha256 hex cache key: {key!r}")
        return self.directory / key[:2] / f"{key}.npy"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> np.ndarray:
        """The stored array; KeyError if absent."""
        try:
            return np.load(self.path(key), allow_pickle=False)
        except FileNotFoundError:
            raise KeyError(key) from None

    def put(self, key: str, audio) -> Path:
        """Store `audio` (numpy array or CPU torch tensor) as float32, atomically; returns the entry path."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        array = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:8]}-", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target
