"""Reading the ONNX sidecar (``model.json`` written by ``instancevg-export``) and writing the engine's.

Engines are built and run from files only: the graph, its sidecar and the plugin library.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """model.onnx -> model.json, model.engine -> model.engine.json."""
    path = Path(model_path)
    return path.with_suffix(".json") if path.suffix == ".onnx" else path.with_name(path.name + ".json")


def read_sidecar(model_path: str | os.PathLike) -> dict:
    path = sidecar_path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"sidecar {path} of {model_path} not found: export the model with "
                                "instancevg-export, which writes it next to the graph")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"sidecar {path} is not valid JSON: {exc}") from None


def graph_inputs(sidecar: dict, source: str = "sidecar") -> tuple[list[tuple[str, list[int]]], tuple[int, int, int] | None]:
    """[(name, shape with the batch first)] and the (min, opt, max) batch range (None: fixed batch)."""
    try:
        inputs = [(i["name"], list(i["shape"])) for i in sidecar["inputs"]]
    except (KeyError, TypeError):
        raise ValueError(f"{source}: 'inputs' must list {{name, shape, dtype}} entries") from None
    batch = sidecar.get("batch") or {}
    if batch.get("dynamic"):
        lo, opt, hi = int(batch["min"]), int(batch["opt"]), int(batch["max"])
        if not 1 <= lo <= opt <= hi:
            raise ValueError(f"{source}: batch range must satisfy 1 <= min <= opt <= max, got {lo}:{opt}:{hi}")
        return [(n, [1] + s[1:]) for n, s in inputs], (lo, opt, hi)
    return inputs, None


def file_sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
