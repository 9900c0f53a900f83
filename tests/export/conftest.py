"""Shared, session-cached exports of the tiny model (each trace takes ~20 s on 2 cores)."""
from __future__ import annotations

import pytest

from export import BatchSpec, ExportOptions, build_graph

# The four target x precision combinations; the opsets and batches are spread over them so that one
# trace each also covers opset 17/18 and fixed batches (the CLI test covers opset 19 + dynamic batch).
COMBINATIONS = {
    "tensorrt-fp32": ExportOptions(target="tensorrt", fp16=False, batch=BatchSpec.fixed(2), opset=18),
    "tensorrt-fp16": ExportOptions(target="tensorrt", fp16=True, batch=BatchSpec.fixed(2), opset=18),
    "portable-fp16": ExportOptions(target="portable", fp16=True, batch=BatchSpec.fixed(2), opset=17),
}
# not verified by the combination tests (the CLI test verifies portable fp32); built only when asked for
# (TensorRT compatibility of all four combinations, instancevg-debug-precision's FP32 side)
EXTRA_COMBINATIONS = {
    "portable-fp32": ExportOptions(target="portable", fp16=False, batch=BatchSpec.fixed(2), opset=17, verify=False),
}


class TracedCache:
    def __init__(self):
        self._graphs = {}

    def __call__(self, name: str):
        if name not in self._graphs:
            options = {**COMBINATIONS, **EXTRA_COMBINATIONS}[name]
            self._graphs[name] = build_graph("tiny", options, random_weights=True, log=None)
        return self._graphs[name]


@pytest.fixture(scope="session")
def traced():
    """traced("tensorrt-fp16") -> the TracedGraph of that combination (built once per session)."""
    return TracedCache()
