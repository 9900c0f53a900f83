"""The TensorRT backend: an engine built by instancevg-build-engine, run through engines.runner."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from instancevg.structures import INPUT_NAMES, RawOutputs

from .graph import run_in_chunks, settings_from_sidecar


class TensorRTBackend:
    """Runs ``model.engine`` (settings from the ONNX sidecar recorded in the engine's sidecar)."""

    name = "tensorrt"

    def __init__(self, engine_path: str | Path, tokenizer: str | Path | None = None, plugins: str | None = None,
                 device: str = "cuda", cuda_graph: bool = False):
        from engines.runner import EngineRunner

        index = int(device.split(":")[1]) if ":" in device else 0
        self.engine_path = Path(engine_path)
        self.runner = EngineRunner(str(self.engine_path), plugins, index, cuda_graph)
        onnx_sidecar = self.runner.sidecar["onnx_sidecar"]
        self.config, self.post, self.tokenizer_path = settings_from_sidecar(
            onnx_sidecar, f"{self.engine_path}.json", tokenizer)
        batch = self.runner.sidecar.get("batch")
        self.batch = int(batch[2]) if batch else int(onnx_sidecar["inputs"][0]["shape"][0])
        self.dynamic = bool(batch)
        self.sidecar = self.runner.sidecar

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.runner({k: inputs[k] for k in INPUT_NAMES})
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    def forward(self, inputs: dict[str, np.ndarray]) -> RawOutputs:
        n = len(inputs[INPUT_NAMES[0]])
        # a dynamic profile takes any batch up to its max; a fixed engine takes exactly its batch
        chunk = None if self.dynamic and n <= self.batch else self.batch
        return run_in_chunks(self._run, inputs, chunk)

    def describe(self) -> dict:
        return {"name": self.name, "engine": str(self.engine_path), "tensorrt": self.sidecar.get("tensorrt"),
                "gpu": self.sidecar.get("gpu"), "config": self.config.name,
                "precision": self.sidecar["onnx_sidecar"].get("precision")}
