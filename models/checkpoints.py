"""Reading released checkpoint files safely and loading them strictly, with one-line errors.

Files are read with `torch.load(mmap=True, weights_only=True)` (no pickled code runs; tensors stay on disk
until touched, so keys a caller filters out are never materialised) or with safetensors. Before
`load_state_dict`, `check_fit` compares keys and shapes so a wrong file is named by its first bad key
and both shapes, instead of PyTorch's multi-line report. MD5 sums of multi-GB files are cached per
(size, mtime) in the models directory, so verification costs one read per downloaded file.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import save
from torch import nn

from otio_foley.atomic import write_bytes_atomic, write_text_atomic
from otio_foley.errors import UserError

MD5_CACHE = ".md5-cache.json"
_CHUNK = 16 << 20


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def cached_md5(path: Path, cache_dir: Path) -> str:
    """MD5 of `path`, remembered in `cache_dir/.md5-cache.json` while its size and mtime are unchanged."""
    stat = path.stat()
    cache_file = cache_dir / MD5_CACHE
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    key = str(path.resolve())
    entry = cache.get(key)
    if entry and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns:
        return entry["md5"]
    md5 = md5_file(path)
    cache[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "md5": md5}
    try:  # best effort: a read-only shared cache still works, it just re-hashes
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cache_file, json.dumps(cache, indent=1))
    except OSError:
        pass
    return md5


def read_state_dict(path: Path, *, keep: Callable[[str], bool] | None = None,
                    sub_dict: str | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a `.pth`/`.pt`/`.bin` (zip pickle) or `.safetensors` file, optionally one sub-dict of it
    (`best_netG.pt['generator']`) and only the keys `keep` accepts."""
    keep = keep or (lambda key: True)
    damaged = "the file is truncated or damaged: delete it and download it again"
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), "pt") as f:
                return {k: f.get_tensor(k) for k in f.keys() if keep(k)}
        except (SafetensorError, OSError) as err:
            raise UserError(f"cannot read safetensors file ({first_line(err)})", path=str(path), fix=damaged)
    try:
        try:
            obj = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except RuntimeError as err:  # pre-1.6 (non-zip) files cannot be memory-mapped; read them whole
            if "mmap" not in str(err):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise UserError(f"cannot read as a PyTorch checkpoint ({first_line(err)})", path=str(path), fix=damaged)
    if sub_dict is not None:
        if not isinstance(obj, Mapping) or sub_dict not in obj:
            raise UserError(f"no '{sub_dict}' entry in the checkpoint", path=str(path),
                            fix="this is not the expected file")
        obj = obj[sub_dict]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError("not a flat state dict of tensors", path=str(path), fix="this is not the expected file")
    return {k: v for k, v in obj.items() if keep(k)}


# torch.nn.init's initialisers: every built-in layer and our own reset_parameters go through these.
_INITIALISERS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
                 "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
                 "sparse_")


@contextmanager
def skipped_init() -> Iterator[None]:
    """Build modules without their random initialisation, for a strict load that overwrites every parameter
    and persistent buffer right after: drawing ~580 M random numbers first costs seconds at every start.
    Computed constants (filters, mel bases, RoPE tables) do not go through torch.nn.init and stay exact."""
    saved = {name: getattr(nn.init, name) for name in _INITIALISERS}
    try:
        for name in saved:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def write_safetensors(path: Path, state: Mapping[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """A safetensors file written atomically, whose bytes depend only on `state` and `metadata`.

    safetensors (0.8) writes metadata in a Rust HashMap's random order (safetensors/safetensors#584, open), so
    identical runs wrote files whose sha256 differed. The header is re-serialised as compact JSON with sorted
    metadata keys: only the order changes, never the length, so the padding and the tensor offsets stay valid."""
    data = save({k: v.contiguous() for k, v in state.items()}, metadata=metadata)  # save refuses strided views
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    if len(text) > size:
        raise ValueError(f"safetensors header re-serialised to {len(text)} bytes, not {size}")
    write_bytes_atomic(path, data[:8] + text.ljust(size) + data[8 + size:])  # the library pads with spaces


def check_fit(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """UserError naming the first missing, unexpected or wrongly shaped key, before a strict load."""
    expected = module.state_dict()
    fix = "the file belongs to another model or variant; check the model name or re-download it"
    for key, tensor in expected.items():
        if key not in state_dict:
            missing = sum(k not in state_dict for k in expected)
            raise UserError(f"key {key} is missing ({missing} of {len(expected)} keys missing)", path=source,
                            fix=fix)
        if tuple(state_dict[key].shape) != tuple(tensor.shape):
            raise UserError(f"key {key} has shape {tuple(state_dict[key].shape)}, the model expects "
                            f"{tuple(tensor.shape)}", path=source, fix=fix)
    for key in state_dict:
        if key not in expected:
            extra = sum(k not in expected for k in state_dict)
            raise UserError(f"unexpected key {key} ({extra} unexpected keys)", path=source, fix=fix)


def load_checked(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str, *,
                 assign: bool = False) -> nn.Module:
    """`check_fit`, then a strict `load_state_dict` (`assign=True` for modules built on the meta device)."""
    check_fit(module, state_dict, source)
    module.load_state_dict(state_dict, strict=True, assign=assign)
    return module


def with_parametrized_weight_norm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Legacy weight-norm names (`x.weight_g`, `x.weight_v`, as the released BigVGAN files most likely use)
    renamed to torch.nn.utils.parametrizations' (`x.parametrizations.weight.original0/1`), so `check_fit`
    compares like with like; files already in the new naming pass through unchanged."""
    renamed = {}
    for key, value in state_dict.items():
        if key.endswith(".weight_g"):
            key = key[: -len("weight_g")] + "parametrizations.weight.original0"
        elif key.endswith(".weight_v"):
            key = key[: -len("weight_v")] + "parametrizations.weight.original1"
        renamed[key] = value
    return renamed
