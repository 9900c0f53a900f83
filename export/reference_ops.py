"""Python implementations of the two plugin nodes for ``onnx.reference.ReferenceEvaluator``.

They hold no math of their own: each calls the op of ``instancevg.ops`` (the one definition of its
semantics, which the TensorRT plugins implement too) on the node's inputs, with the plugin's type rules:
MSDeformAttn computes in float32 and returns the value's type (the kernels keep coordinates, weights and
sums in float32 whatever the I/O type); PointSelect returns int32 indices and float32 points.
"""
from __future__ import annotations

import numpy as np
import torch
from onnx.reference.op_run import OpRun

from instancevg import ops
from instancevg.ops.export_target import PLUGIN_DOMAIN


class PluginContractError(ValueError):
    """A plugin node received inputs the plugin node contract does not allow (the plugin would refuse
    them too)."""


class MSDeformAttn(OpRun):
    """value [B,S,M,D], spatial_shapes [L,2] int32, level_start_index [L] int32,
    sampling_locations [B,Q,M,L,P,2], attention_weights [B,Q,M,L,P] -> [B,Q,M*D] (value's type)."""

    op_domain = PLUGIN_DOMAIN

    def _run(self, value, spatial_shapes, level_start_index, sampling_locations, attention_weights,
             plugin_namespace=None, plugin_version=None):
        for name, tensor in (("spatial_shapes", spatial_shapes), ("level_start_index", level_start_index)):
            if tensor.dtype != np.int32:
                raise PluginContractError(f"MSDeformAttn input {name} must be int32 (plugin contract), "
                                          f"got {tensor.dtype}")
        with torch.no_grad():
            out = ops.ms_deform_attn(torch.from_numpy(np.asarray(value, np.float32)),
                                     [tuple(int(v) for v in hw) for hw in spatial_shapes],
                                     torch.from_numpy(level_start_index.astype(np.int64)),
                                     torch.from_numpy(np.asarray(sampling_locations, np.float32)),
                                     torch.from_numpy(np.asarray(attention_weights, np.float32)))
        return (out.numpy().astype(value.dtype),)


class PointSelect(OpRun):
    """scores [B,h,w] float32 -> indices [B,N] int32, points [B,N,2] float32 (attributes num_points,
    w_dist)."""

    op_domain = PLUGIN_DOMAIN

    def _run(self, scores, plugin_namespace=None, plugin_version=None, num_points=None, w_dist=None):
        if scores.dtype != np.float32:
            raise PluginContractError(f"PointSelect scores must be float32 (plugin contract), got {scores.dtype}")
        with torch.no_grad():
            indices, points = ops.select_points(torch.from_numpy(scores), int(num_points), float(w_dist))
        return indices.numpy().astype(np.int32), points.numpy().astype(np.float32)


PLUGIN_OPS = (MSDeformAttn, PointSelect)
