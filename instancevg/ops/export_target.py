"""Which ONNX form the ops emit while ``torch.onnx.export`` traces the model.

The model always calls the same op functions (``ms_deform_attn``, ``select_points``); during an ONNX
export they ask :func:`emit_plugin_nodes` whether to emit one ``instancevg`` custom node (the TensorRT
plugin node contract) or their standard-op form. The target is a context variable, set only inside
``with onnx_export_target("tensorrt"):`` and restored on exit, so nothing outside the context (other
threads, later exports, eager runs) sees it.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch

TARGETS = ("tensorrt", "portable")

# Outside any context the ops emit standard ONNX: a plain torch.onnx.export of the model is portable.
_target: contextvars.ContextVar[str] = contextvars.ContextVar("instancevg_onnx_export_target",
                                                              default="portable")

# The plugin node contract (engines/plugin_contract.py, plugins/README.md): domain, namespace and version of both custom nodes.
PLUGIN_DOMAIN = "instancevg"
PLUGIN_NAMESPACE = "instancevg"
PLUGIN_VERSION = "1"


@contextlib.contextmanager
def onnx_export_target(target: str) -> Iterator[str]:
    """Make the ops emit the ONNX form of ``target`` ("tensorrt" or "portable") inside the block."""
    if target not in TARGETS:
        raise ValueError(f"unknown ONNX export target {target!r}; expected one of {', '.join(TARGETS)}")
    token = _target.set(target)
    try:
        yield target
    finally:
        _target.reset(token)


def current_export_target() -> str:
    """The target set by the innermost :func:`onnx_export_target` ("portable" outside any)."""
    return _target.get()


def emit_plugin_nodes() -> bool:
    """True while an ONNX export traces the model for the tensorrt target: ops emit custom nodes."""
    return torch.onnx.is_in_onnx_export() and _target.get() == "tensorrt"


def plugin_attributes(**fields) -> dict:
    """The attributes of a plugin node: namespace and version (for TensorRT's ONNX parser) + the creator's
    fields."""
    return {"plugin_namespace": PLUGIN_NAMESPACE, "plugin_version": PLUGIN_VERSION, **fields}
