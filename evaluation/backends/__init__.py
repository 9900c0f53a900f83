"""Backends: each computes RawOutputs from the shared preprocessed inputs; nothing else differs
(``triton``: the core model of a running Triton deployment).

A backend has ``name``, ``config`` (the ModelConfig: image size, max tokens, queries), ``post`` (the
post-processing settings), ``tokenizer_path``, ``forward(inputs) -> RawOutputs`` on the three network
inputs (image [B,3,S,S] float32, text_ids [B,L] int64, text_pad_mask [B,L] bool) and ``describe()`` for
reports. Backends are imported lazily, so a machine without torch CUDA or TensorRT can still use the rest.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from instancevg.config import ModelConfig, PostprocessConfig
from instancevg.structures import RawOutputs


class Backend(Protocol):
    name: str
    config: ModelConfig
    post: PostprocessConfig
    tokenizer_path: str

    def forward(self, inputs: dict[str, np.ndarray]) -> RawOutputs: ...

    def describe(self) -> dict: ...


_LAZY = {"PyTorchBackend": "pytorch", "OnnxRuntimeBackend": "onnxruntime", "TensorRTBackend": "tensorrt",
         "TritonBackend": "triton"}


def __getattr__(name):  # lazy: importing a backend class imports its runtime only then
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)


__all__ = ["Backend", *_LAZY]
