"""The official model's golden outputs (tests/data/golden/README.md): loading, the weight recipe, the inputs.

``Golden`` reads the trimmed copy in the repository (default) or a full golden folder
($INSTANCEVG_GOLDEN_DIR, with golden_gres_base.npz as the official run wrote it). Arrays of at most
FULL_LIMIT bytes are stored whole; larger float arrays as a fixed subset of SUBSET_SIZE elements (the same
indices for ours, see ``subset``) with the full array's max |value|, which is what the per-array tolerance
max|ours - golden| <= rel * max|golden| is relative to; binary masks bit-packed.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parent / "data"
FULL_LIMIT = 128 * 1024
SUBSET_SIZE = 16384
STATE_DICT_KEYS = DATA / "official" / "state_dict_gres_base.json"


def subset_indices(name: str, size: int) -> np.ndarray:
    """The flat indices kept of a large array: SUBSET_SIZE distinct ones, fixed by the array's name."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return np.sort(rng.choice(size, size=min(SUBSET_SIZE, size), replace=False))


def golden_folder() -> Path:
    given = os.environ.get("INSTANCEVG_GOLDEN_DIR")
    return Path(given) if given else DATA / "golden"


def golden_image() -> np.ndarray:
    """The golden input image (golden README §2): torch.randn((2, 3, 320, 320)) with generator seed 1."""
    return torch.randn((2, 3, 320, 320), generator=torch.Generator().manual_seed(1)).numpy()


class Golden:
    """Arrays of the golden run by name; ``close(name, ours)`` is the per-array comparison."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or golden_folder()
        path = self.folder / "golden_gres_base.npz"
        if not path.is_file():
            raise FileNotFoundError(f"golden data not found: {path}")
        self.npz = np.load(path)
        self.files = set(self.npz.files)
        self.trimmed = "input_image" not in self.files

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.files:
            return self.npz[name]
        if name == "input_image":
            image = golden_image()
            digest = hashlib.sha256(image.tobytes()).hexdigest()
            if digest != str(self.npz["input_image__sha256"]):
                raise AssertionError("torch.randn no longer reproduces the golden input image (checksum differs)")
            return image
        if f"{name}__bits" in self.files:
            shape = tuple(self.npz[f"{name}__shape"])
            return np.unpackbits(self.npz[f"{name}__bits"], count=math.prod(shape)).reshape(shape).astype(np.uint8)
        raise KeyError(f"{name} is not in {self.folder} (stored as a subset? use close())")

    def near_threshold(self, name: str) -> np.ndarray:
        """Pixels whose golden logit lies within 1e-4 of the mask threshold: name 'instance' [2,10,320,320]
        or 'global' [2,320,320]."""
        if not self.trimmed:
            logits = self.npz["instance_mask_logits_320"] if name == "instance" else \
                self.npz["global_mask_logits_320"][:, 0]
            return np.abs(logits) < 1e-4
        return self[f"near_{name}_320"].astype(bool)

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """image [2,3,320,320] float32, text_ids [2,50] int64, text_pad_mask [2,50] bool."""
        return tuple(torch.from_numpy(self[k]) for k in ("input_image", "input_text_ids", "input_text_pad_mask"))

    def errors(self, name: str, ours) -> tuple[float, float]:
        """(max |ours - golden| over the stored elements, max |golden| of the whole array)."""
        ours = ours.detach().float().cpu().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours)
        if name in self.files:
            ref = self.npz[name]
            assert ours.shape == ref.shape, f"{name}: shape {ours.shape} != golden {ref.shape}"
            return float(np.abs(ours.astype(np.float64) - ref).max()), float(np.abs(ref).max())
        shape = tuple(self.npz[f"{name}__shape"])
        assert ours.shape == shape, f"{name}: shape {ours.shape} != golden {shape}"
        ref = self.npz[f"{name}__subset"]
        err = float(np.abs(ours.ravel()[subset_indices(name, ours.size)].astype(np.float64) - ref).max())
        return err, float(self.npz[f"{name}__maxabs"])

    def close(self, name: str, ours, rel: float = 1e-4) -> float:
        """Assert max|ours - golden| <= rel * max|golden| (over the stored elements); returns the ratio
        error / max|golden|."""
        err, scale = self.errors(name, ours)
        assert err <= rel * scale, f"{name}: max error {err:.3e} > {rel} x {scale:.3e}"
        return err / scale


def make_tensor(name: str, shape) -> torch.Tensor:
    """The golden weight recipe (golden README §1): every tensor from its key name and shape alone."""
    shape = list(shape)
    g = torch.Generator().manual_seed(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
    if name.endswith("num_batches_tracked"):
        return torch.tensor(0, dtype=torch.int64)
    if name.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=g)
    if name.endswith("running_var"):
        return 1.0 + 0.1 * torch.rand(shape, generator=g)
    if name == "head.detrloss.criterion.empty_weight":
        return torch.tensor([1.0, 0.1], dtype=torch.float32)
    if len(shape) == 1 and name.endswith(".weight"):  # norm scales
        return 1.0 + 0.05 * torch.randn(shape, generator=g)
    if len(shape) == 1:  # biases and other vectors
        return 0.02 * torch.randn(shape, generator=g)
    return torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))


def golden_state_dict(folder: Path | None = None) -> dict[str, torch.Tensor]:
    """The golden gres-base weights, every tensor checked against the recorded sha256."""
    folder = folder or golden_folder()
    keys = json.loads(STATE_DICT_KEYS.read_text())["keys"]
    checksums = json.loads((folder / "weights_checksums.json").read_text())
    state = {}
    for name, shape in keys.items():
        tensor = make_tensor(name, shape)
        digest = hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()
        assert digest == checksums[name]["sha256"], f"weight recipe differs from the golden weights at {name}"
        state[name] = tensor
    return state
