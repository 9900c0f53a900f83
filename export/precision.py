"""Precision of exported graphs: the FP16 policy (defined once, in instancevg/model/precision.py, where the
PyTorch backend's --precision fp16 uses it too) as the sidecar records it, and the graph I/O types."""
from __future__ import annotations

import torch

from instancevg.model.precision import FLOAT32_MODULES, apply_fp16_policy, float32_modules

__all__ = ["FLOAT32_MODULES", "apply_fp16_policy", "float32_modules", "describe_policy", "io_float_dtype"]


def describe_policy() -> dict:
    """The policy as the sidecar records it."""
    return {
        "weights": "float16",
        "float32": ["LayerNorm statistics and affine", "AQSM (text filter, T2I attention, point selection, "
                    "query MLP)", "reference points and sampling-location arithmetic", "box decoding",
                    "existence-logit mean"],
        "float32_modules": list(FLOAT32_MODULES) + ["every LayerNorm"],
        "ms_deform_attn_io": "float16",
        "point_select_io": "float32",
    }


def io_float_dtype(fp16_io: bool) -> torch.dtype:
    return torch.float16 if fp16_io else torch.float32
