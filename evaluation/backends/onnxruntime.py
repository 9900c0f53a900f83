"""The ONNX Runtime backend: portable graphs on the CPU or CUDA execution providers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.sidecar import read_sidecar, sidecar_path
from instancevg.structures import INPUT_NAMES, RAW_OUTPUT_NAMES, RawOutputs

from .graph import fixed_batch, run_in_chunks, settings_from_sidecar

PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}
_NUMPY = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32, "bool": np.bool_}


class OnnxRuntimeBackend:
    """Runs a ``--target portable`` graph exported by instancevg-export (settings from its sidecar)."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, tokenizer: str | Path | None = None, device: str = "cpu",
                 threads: int | None = None):
        import onnx
        import onnxruntime as ort

        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise FileNotFoundError(f"ONNX graph not found: {self.onnx_path}")
        sidecar_file = sidecar_path(self.onnx_path)
        self.sidecar = read_sidecar(self.onnx_path)
        custom = sorted({n.op_type for n in onnx.load(str(self.onnx_path), load_external_data=False).graph.node
                         if n.domain not in ("", "ai.onnx", "ai.onnx.ml")})
        if self.sidecar.get("target") == "tensorrt" or custom:
            raise ValueError(f"{self.onnx_path} is a tensorrt-target graph (custom nodes {custom or '?'} that only "
                             "TensorRT runs, with libinstancevg_plugins.so): export the same checkpoint with "
                             "--target portable for ONNX Runtime, or build an engine from this graph with "
                             "instancevg-build-engine and use --backend tensorrt --engine model.engine")
        self.config, self.post, self.tokenizer_path = settings_from_sidecar(self.sidecar, str(sidecar_file), tokenizer)
        if device not in PROVIDERS:
            raise ValueError(f"device must be one of {sorted(PROVIDERS)} for onnxruntime, got {device!r}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # INT8 (Q/DQ) graphs record the session settings ONNX Runtime needs for them (export/quantize.py)
        session = (self.sidecar.get("int8") or {}).get("onnxruntime_session") or {}
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                                   session.get("graph_optimization_level", "ORT_ENABLE_ALL"))
        self.session = ort.InferenceSession(str(self.onnx_path), options, providers=PROVIDERS[device],
                                            disabled_optimizers=list(session.get("disabled_optimizers", [])))
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
                "target": self.sidecar.get("target"), "config": self.config.name,
                "checkpoint": self.sidecar.get("checkpoint"), "onnxruntime": ort.__version__}
