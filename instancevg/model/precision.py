"""The FP16 policy: which parts of the model keep float32 when it computes in FP16 (the strongly typed FP16
graph of ``instancevg-export --fp16``, the PyTorch backend's ``--precision fp16``).

TensorRT 11 has no weak typing: the types in the ONNX graph are the types the engine runs. The graph gets
them from the model itself. ``apply_fp16_policy`` casts the weights to FP16 except for the modules below,
and the model's forward computes in the type of the weights it holds, with explicit casts where a float32
island begins or ends:

- every LayerNorm (``instancevg.model.layers.LayerNorm``): statistics and affine in float32;
- the AQSM query generator (``head.query_generation``): the text filter, the T2I attention logits ->
  softmax -> max -> sigmoid -> point selection path and the query MLP. The sigmoid of an attention
  probability lies in ~[0.5, 0.503] and neighbouring cells differ by 1e-5..1e-4, below FP16 resolution
  near 0.5 (~5e-4): in FP16 the engine would pick other points than PyTorch;
- the reference points (sigmoid) and sampling locations, box decoding (inverse sigmoid + sigmoid) and the
  existence mean over all pixels: float32 by construction in the model code.

Everything else is FP16, including the MSDeformAttn node's inputs and output (its kernels compute
coordinates, weights and sums in float32 whatever the I/O type); PointSelect's scores are float32.
"""
from __future__ import annotations

from torch import nn

from .layers import LayerNorm

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
