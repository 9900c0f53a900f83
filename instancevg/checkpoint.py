"""Checkpoint I/O: official InstanceVG checkpoints, official BEiT-3 pretrained weights, our own saves.

Official InstanceVG files are ``torch.save`` dicts whose ``state_dict`` may carry DDP's ``module.``
prefix; BEiT-3 pretrained files hold their weights under ``model`` (or ``module``) with keys
``beit3.*``. We save in the official format, so official tools read our checkpoints too.

Files are read with torch's safe unpickler only (tensors, containers, numbers, plus the numpy scalars
official checkpoints hold among their metrics); a file that needs anything else is refused, naming the
type, unless the caller trusts it (``trusted=True``, ``--trust-checkpoint``).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .io import atomic_path

BEIT3_PREFIX = "vis_enc."
POSITION_TABLE_A = "beit3.encoder.embed_positions.A.weight"
NUM_EXTRA_POSITIONS = 3  # two unused fairseq rows + CLS, kept as they are when the grid is resized


class CheckpointMismatchError(ValueError):
    """A state dict that does not fit the model; the message lists every offending key."""

    def __init__(self, source: str, missing, unexpected, mismatched):
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)
        lines = [f"{source} does not fit the model:"]
        for title, items in (("missing keys", self.missing), ("unexpected keys", self.unexpected),
                             ("mis-shaped keys (checkpoint vs model)", self.mismatched)):
            if items:
                shown = items[:20]
                more = f" ... and {len(items) - 20} more" if len(items) > 20 else ""
                lines.append(f"  {len(items)} {title}: " + ", ".join(map(str, shown)) + more)
        super().__init__("\n".join(lines))


class CheckpointFormatError(ValueError):
    """A file that is not a readable checkpoint (empty, truncated, not a torch file, not a dict)."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint whose unpickling needs a type outside the safe allowlist; loading it would run code
    the file chooses, so it is loaded only with ``trusted=True`` (``--trust-checkpoint``)."""

    def __init__(self, path: Path, types: list[str]):
        self.path, self.types = path, list(types)
        super().__init__(
            f"{path}: refused to unpickle {', '.join(self.types)}: safe loading (torch.load weights_only=True) "
            "accepts tensors, containers, numbers and numpy scalars only, and unpickling other types can run "
            "code chosen by the file. Load it only if you trust its source: pass --trust-checkpoint "
            "(Python: trusted=True)")


def _numpy_scalar_globals() -> list:
    """What torch.save pickles for a numpy number (official metric values, e.g. a cIoU computed from numpy
    sums, are numpy scalars): ``numpy._core.multiarray.scalar`` (``numpy.core.multiarray.scalar`` when
    written under numpy 1.x) called with a ``numpy.dtype`` whose state is set by its class
    (``numpy.dtypes.Float64DType``, ...). Only bool, integer and float dtypes; no arrays."""
    import numpy as np

    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar
    numbers = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
               np.float16, np.float32, np.float64)
    return [(scalar, "numpy._core.multiarray.scalar"), (scalar, "numpy.core.multiarray.scalar"), np.dtype,
            *{type(np.dtype(t)) for t in numbers}]


_REFUSED = (re.compile(r"Unsupported global: GLOBAL (\S+) was not an allowed global"),
            re.compile(r"unsupported GLOBAL (\S+) whose module"),
            re.compile(r"Can only build .* but got <class '([^']+)'>"))


def _refused_types(path: Path, error: pickle.UnpicklingError) -> list[str]:
    """The types safe loading refused in ``path``: every unsafe global found by reading the pickle
    without running it, else the one named in torch's message; [] when the error is not a refusal."""
    message = str(error)
    named = [m.group(1) for pattern in _REFUSED for m in [pattern.search(message)] if m]
    if not named:
        return []
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a legacy (non-zip) file: only the message names the type
        found = []
    return found or named[:1]


def read_file(path: str | os.PathLike, trusted: bool = False) -> dict:
    """A checkpoint file as a dict, loaded on CPU.

    Safe loading always (``torch.load(weights_only=True)`` with numpy scalars allowed); a file that needs
    any other type raises UnsafeCheckpointError unless ``trusted`` (full unpickling, which runs whatever
    the file asks). Files that are not checkpoints raise CheckpointFormatError; both are ValueErrors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    expected = "expected a checkpoint written by torch.save (a dict: state dict or InstanceVG checkpoint)"
    if path.stat().st_size == 0:
        raise CheckpointFormatError(f"{path}: the file is empty; {expected}")
    try:
        if trusted:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        else:
            with torch.serialization.safe_globals(_numpy_scalar_globals()):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = [] if trusted else _refused_types(path, exc)
        if refused:
            raise UnsafeCheckpointError(path, refused) from None
        raise CheckpointFormatError(f"{path}: not a readable checkpoint ({_first_line(exc)}); {expected}") from None
    except Exception as exc:  # truncated or foreign files make torch raise anything (RuntimeError, EOFError, ...)
        raise CheckpointFormatError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                                    f"{_first_line(exc)}); {expected}") from None
    if not isinstance(obj, Mapping):
        raise CheckpointFormatError(f"{path}: expected a dict (state dict or checkpoint), got {type(obj).__name__}")
    return dict(obj)


def _first_line(exc: BaseException) -> str:
    """The informative line of a torch/pickle error (torch prefixes weights-only errors with advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else line)
    if not lines:
        return type(exc).__name__
    line = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", lines[0])
    return line.split(". ")[0].rstrip(".")


def extract_state_dict(obj: Mapping, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict inside an official InstanceVG checkpoint (``state_dict``), a BEiT-3 file
    (``model`` / ``module``) or a bare state dict; DDP's ``module.`` prefix removed."""
    for key in ("state_dict", "model", "module"):
        if key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    state = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"{source}: entry {k!r} is a {type(v).__name__}, expected a tensor")
        state[k[len("module."):] if k.startswith("module.") else k] = v
    return state


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str,
                     ignore_missing: tuple[str, ...] = (), allow_unexpected: bool = False) -> None:
    """Raise CheckpointMismatchError listing missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith(ignore_missing)]
    unexpected = [] if allow_unexpected else [k for k in state if k not in expected]
    mismatched = [f"{k} {list(state[k].shape)} vs {list(v.shape)}" for k, v in expected.items()
                  if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(source, missing, unexpected, mismatched)


def load_checkpoint(model: nn.Module, checkpoint: str | os.PathLike | Mapping, trusted: bool = False) -> dict:
    """Load an InstanceVG checkpoint strictly into ``model``; returns the file's other entries.

    ``trusted``: unpickle a file that safe loading refuses (see ``read_file``); only for trusted sources.

    The shared class/box heads appear three times (``.0/.1/.2``); like the official model, the copies
    are written in order into the one shared module, so ``.2`` is what takes effect.
    """
    source = str(checkpoint) if not isinstance(checkpoint, Mapping) else "checkpoint"
    obj = read_file(checkpoint, trusted) if not isinstance(checkpoint, Mapping) else dict(checkpoint)
    state = extract_state_dict(obj, source)
    check_state_dict(model, state, source)
    model.load_state_dict(state, strict=True)
    return {k: v for k, v in obj.items() if k != "state_dict"}


def interpolate_position_table(table: torch.Tensor, grid: int) -> torch.Tensor:
    """Resize table A ([3 + n*n, C]) to a grid x grid patch grid, bicubic (align_corners=False), keeping
    the first three rows."""
    extra, patches = table[:NUM_EXTRA_POSITIONS], table[NUM_EXTRA_POSITIONS:]
    old = int(round(patches.shape[0] ** 0.5))
    if old * old != patches.shape[0]:
        raise ValueError(f"position table A has {table.shape[0]} rows, not 3 + a square number")
    if old == grid:
        return table
    patches = patches.reshape(1, old, old, -1).permute(0, 3, 1, 2).float()
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
    return torch.cat([extra, patches.permute(0, 2, 3, 1).flatten(0, 2).to(table.dtype)], dim=0)


def load_beit3_pretrained(model: nn.Module, path: str | os.PathLike | Mapping, trusted: bool = False) -> list[str]:
    """Load official BEiT-3 pretrained weights (e.g. beit3_base_patch16_224.pth) into ``model.vis_enc``.

    Table A is interpolated to the configured patch grid. Keys outside the encoder (pre-training or
    retrieval heads) are ignored and returned; every encoder key must be present and fit. ``trusted`` as
    in ``read_file``.
    """
    source = str(path) if not isinstance(path, Mapping) else "BEiT-3 weights"
    obj = read_file(path, trusted) if not isinstance(path, Mapping) else dict(path)
    state = extract_state_dict(obj, source)
    original_names = {(k if k.startswith("beit3.") else "beit3." + k): k for k in state}
    state = {name: state[k] for name, k in original_names.items()}
    encoder = model.vis_enc
    if POSITION_TABLE_A in state:
        grid = int(round((encoder.state_dict()[POSITION_TABLE_A].shape[0] - NUM_EXTRA_POSITIONS) ** 0.5))
        state[POSITION_TABLE_A] = interpolate_position_table(state[POSITION_TABLE_A], grid)
    expected = encoder.state_dict()
    ignored = [original_names[k] for k in state if k not in expected]
    state = {k: v for k, v in state.items() if k in expected}
    check_state_dict(encoder, state, source, ignore_missing=("beit3.vision_embed.mask_token",))
    encoder.load_state_dict(state, strict=False)
    return ignored


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """torch.save through a temporary file in the same folder, then an atomic rename."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(model: nn.Module, path: str | os.PathLike, **extra) -> None:
    """Save in the official format: ``{"state_dict": ..., **extra}`` (optimizer, scheduler, epoch, ...)."""
    module = model.module if hasattr(model, "module") else model
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    atomic_torch_save({"state_dict": state, **extra}, path)


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file (checkpoint provenance in sidecars and reports)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
