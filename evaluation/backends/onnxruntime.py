"""The ONNX Runtime backend: portable graphs on the CPU or CUDA execution providers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.sidecar import read_sidecar, sidecar_path
from instancevg.structures import INPUT_NAMES, RAW_OUTPUT_NAMES, RawOutputs

from .graph import fixed_batch, run_in_chunks, settings_from_sidecar



def providers(device: str) -> list:
    """ONNX Runtime execution providers for "cpu", "cuda" or "cuda:N" (the CUDA provider on GPU N)."""
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return ["CPUExecutionProvider"]
    if kind == "cuda" and (not index or index.isdigit()):
        return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]
    raise ValueError(f"device must be cpu, cuda or cuda:N for onnxruntime, got {device!r}")


_NUMPY = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32, "bool": np.bool_}


class OnnxRuntimeBackend:
    """Runs a graph exported by instancevg-export (settings from its sidecar): portable graphs as they are,
    tensorrt-target graphs with the plugin nodes running the plugins' own kernels as custom operators
    (export/ort_session.py), so the exact graph TensorRT receives is evaluated without TensorRT."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, tokenizer: str | Path | None = None, device: str = "cpu",
                 threads: int | None = None, tokenizer_required: bool = True):
        import onnxruntime as ort

        from export.ort_session import onnxruntime_session

        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise FileNotFoundError(f"ONNX graph not found: {self.onnx_path}")
        sidecar_file = sidecar_path(self.onnx_path)
        self.sidecar = read_sidecar(self.onnx_path)
        self.config, self.post, self.tokenizer_path = settings_from_sidecar(
            self.sidecar, str(sidecar_file), tokenizer, tokenizer_required)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # INT8 (Q/DQ) graphs record the session settings ONNX Runtime needs for them (export/quantize.py)
        settings = (self.sidecar.get("int8") or {}).get("onnxruntime_session") or {}
        try:
            self.session = onnxruntime_session(self.onnx_path, providers(device), options, settings)
        except RuntimeError as exc:
            raise RuntimeError(f"{self.onnx_path}: {exc}") from None
        self.input_types = {i["name"]: _NUMPY[i["dtype"]] for i in self.sidecar["inputs"]}
        self.batch = fixed_batch(self.sidecar)
        self.device = device

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {k: np.ascontiguousarray(inputs[k], dtype=self.input_types[k]) for k in INPUT_NAMES}
        return dict(zip(RAW_OUTPUT_NAMES, self.session.run(list(RAW_OUTPUT_NAMES), feeds)))

    def forward(self, inputs: dict[str, np.ndarray]) -> RawOutputs:
        return run_in_chunks(self._run, inputs, self.batch)

    def describe(self) -> dict:
        import onnxruntime as ort

        return {"name": self.name, "onnx": str(self.onnx_path), "device": self.device,
                "providers": self.session.get_providers(), "precision": self.sidecar.get("precision"),
                "plugin_kernels": "host build (custom operators)" if self.sidecar.get("target") == "tensorrt" else None,
                "target": self.sidecar.get("target"), "config": self.config.name,
                "checkpoint": self.sidecar.get("checkpoint"), "onnxruntime": ort.__version__}
