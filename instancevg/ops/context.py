"""Per-call settings of the ops, held in context variables (set inside a ``with`` block, restored on exit,
invisible to other threads):

- which implementation computes ``ms_deform_attn`` and ``select_points``: ``reference`` (PyTorch, the
  semantics) or ``plugin`` (the TensorRT plugins' own kernels through their C ABI, ``instancevg.ops.kernels``:
  the host build on CPU tensors, the CUDA build on CUDA tensors);
- forced selections: the text tokens and grid cells AQSM selects, replaced by given indices (comparing a
  stage-by-stage run with a reference that selected otherwise, e.g. on an exact tie).
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch

IMPLEMENTATIONS = ("reference", "plugin")

_implementation: contextvars.ContextVar[str] = contextvars.ContextVar("instancevg_ops", default="reference")
_forced: contextvars.ContextVar[dict] = contextvars.ContextVar("instancevg_forced_selection", default={})


@contextlib.contextmanager
def use_ops(implementation: str) -> Iterator[str]:
    """Run the custom ops with ``implementation`` ("reference" or "plugin") inside the block."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown op implementation {implementation!r}; expected one of "
                         f"{', '.join(IMPLEMENTATIONS)}")
    token = _implementation.set(implementation)
    try:
        yield implementation
    finally:
        _implementation.reset(token)


def current_ops() -> str:
    """The implementation set by the innermost :func:`use_ops` ("reference" outside any)."""
    return _implementation.get()


@contextlib.contextmanager
def forced_selection(text_index: torch.Tensor | None = None, point_index: torch.Tensor | None = None
                     ) -> Iterator[None]:
    """Inside the block, AQSM takes ``text_index`` [B, N] as the selected text tokens and ``point_index``
    [B, N] (flat row-major cells) as the selected points instead of selecting them (None: select)."""
    token = _forced.set({"text": text_index, "points": point_index})
    try:
        yield
    finally:
        _forced.reset(token)


def forced_text_index() -> torch.Tensor | None:
    return _forced.get().get("text")


def forced_point_index() -> torch.Tensor | None:
    return _forced.get().get("points")
