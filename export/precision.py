"""The FP16 policy: which parts of the model keep float32 in a strongly typed FP16 graph.

TensorRT 11 has no weak typing (FACTS.md §4): the types in the ONNX graph are the types the engine runs.
The graph gets them from the model itself. ``apply_fp16_policy`` casts the weights to FP16 except for the
modules below, and the model's forward (instancevg/model) computes in the type of the weights it holds,
with explicit casts where a float32 island begins or ends:

- every LayerNorm (``instancevg.model.layers.LayerNorm``): statistics and affine in float32;
- the AQSM query generator (``head.query_generation``): the text filter, the T2I attention logits ->
  softmax -> max -> sigmoid -> point selection path and the query MLP. The sigmoid of an attention
  probability lies in ~[0.5, 0.503] and neighbouring cells differ by 1e-5..1e-4, below FP16 resolution
  near 0.5 (FACTS.md §1 NOTE): in FP16 the engine would pick other points than PyTorch;
- the reference points (sigmoid) and sampling locations, box decoding (inverse sigmoid + sigmoid) and the
  existence mean over all pixels: float32 by construction in the model code.

Everything else is FP16, including the MSDeformAttn node's inputs and output (its kernels compute
coordinates, weights and sums in float32 whatever the I/O type); PointSelect's scores are float32.
"""
from __future__ import annotations

import torch
from torch import nn

from instancevg.model.layers import LayerNorm

# Modules kept float32, by name (in addition to every LayerNorm).
FLOAT32_MODULES = ("head.query_generation",)


def float32_modules(model: nn.Module) -> list[str]:
    """Names of the modules the policy keeps float32: the listed ones and every LayerNorm outside them."""
    names = list(FLOAT32_MODULES)
    for name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm) and not any(name.startswith(k + ".") for k in FLOAT32_MODULES):
            if not isinstance(module, LayerNorm):
                raise TypeError(f"{name} is a plain nn.LayerNorm; FP16 graphs need "
                                "instancevg.model.layers.LayerNorm (float32 statistics)")
            names.append(name)
    return names


def apply_fp16_policy(model: nn.Module) -> list[str]:
    """Cast ``model`` in place to the FP16 policy; returns the names of the float32 modules."""
    keep = float32_modules(model)
    model.half()
    modules = dict(model.named_modules())
    for name in keep:
        modules[name].float()
    return keep


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


def weight_dtypes(model: nn.Module) -> dict[str, int]:
    """Parameter count per dtype (for the report)."""
    counts: dict[str, int] = {}
    for p in model.parameters():
        key = str(p.dtype).replace("torch.", "")
        counts[key] = counts.get(key, 0) + p.numel()
    return counts


def io_float_dtype(fp16_io: bool) -> torch.dtype:
    return torch.float16 if fp16_io else torch.float32
