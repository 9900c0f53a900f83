"""Running tensorrt graphs in ``onnx.reference.ReferenceEvaluator`` (numpy): the plugin ops plus
replacements for the few standard ops whose reference implementation cannot run our graphs or is too
slow for them.

- GatherElements: onnx 1.23's reference uses ``np.choose``, which takes at most 64 choices (our gathers
  run over 400+ cells); ``np.take_along_axis`` computes the same thing without that limit.
- MatMul, Gemm, Conv, ConvTranspose, Einsum on FP16 inputs: numpy has no FP16 BLAS (gres-base would take
  tens of minutes); they compute on float32 copies and round the result to FP16, which is also how GPU
  FP16 kernels work (FP16 operands, float32 accumulation, FP16 result). Float32 inputs take the
  reference implementation unchanged.
- QuantizeLinear / DequantizeLinear at opset 17/18 (INT8 graphs): onnx 1.23 implements them from opset 19
  only; opsets 13..18 define the same computation on float32 (19 adds types and ``saturate``, which only
  concerns float8), so the version-19 implementations run them.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from onnx.reference.ops.op_conv import Conv as _Conv
from onnx.reference.ops.op_conv_transpose import ConvTranspose as _ConvTranspose
from onnx.reference.ops.op_dequantize_linear import DequantizeLinear_19
from onnx.reference.ops.op_quantize_linear import QuantizeLinear_19
from onnx.reference.ops.op_einsum import Einsum as _Einsum
from onnx.reference.ops.op_gemm import Gemm_7 as _Gemm

from .reference_ops import PLUGIN_OPS


class GatherElements(OpRun):
    op_domain = ""

    def _run(self, data, indices, axis=None):
        axis = 0 if axis is None else int(axis)
        indices = np.where(indices < 0, indices + data.shape[axis], indices)
        return (np.take_along_axis(data, indices.astype(np.int64), axis=axis),)


def _float32_accumulation(base):
    """A subclass of the reference op ``base`` that runs FP16 inputs on float32 copies and returns FP16."""

    class Float32Accumulation(base):
        op_domain = ""

        def _run(self, *inputs, **attributes):
            half = any(isinstance(x, np.ndarray) and x.dtype == np.float16 for x in inputs)
            if not half:
                return super()._run(*inputs, **attributes)
            widened = [x.astype(np.float32) if isinstance(x, np.ndarray) and x.dtype == np.float16 else x
                       for x in inputs]
            return tuple(y.astype(np.float16) for y in super()._run(*widened, **attributes))

    Float32Accumulation.__name__ = Float32Accumulation.__qualname__ = base.__name__.split("_")[0]
    return Float32Accumulation


class MatMul(OpRun):
    op_domain = ""

    def _run(self, a, b):
        if a.dtype == np.float16 or b.dtype == np.float16:
            return (np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.float16),)
        return (np.matmul(a, b),)


class DequantizeLinear(DequantizeLinear_19):
    op_domain = ""

    # the evaluator binds the attributes of the newest schema; block quantization / output_dtype do not
    # exist before opset 21 and keep their defaults
    def _run(self, x, x_scale, x_zero_point=None, axis=1, block_size=0, output_dtype=None):
        return super()._run(x, x_scale, x_zero_point, axis=1 if axis is None else axis)


class QuantizeLinear(QuantizeLinear_19):
    op_domain = ""

    def _run(self, x, y_scale, zero_point=None, axis=1, saturate=True, block_size=0, output_dtype=None,
             precision=None):
        return super()._run(x, y_scale, zero_point, axis=1 if axis is None else axis)


STANDARD_OP_FIXES = (GatherElements, MatMul, QuantizeLinear, DequantizeLinear) + tuple(
    _float32_accumulation(base) for base in (_Gemm, _Conv, _ConvTranspose, _Einsum))


def reference_session(model: onnx.ModelProto) -> ReferenceEvaluator:
    """A ReferenceEvaluator for ``model`` that knows the instancevg plugin nodes."""
    return ReferenceEvaluator(model, new_ops=list(PLUGIN_OPS) + list(STANDARD_OP_FIXES))
