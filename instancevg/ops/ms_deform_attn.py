"""Multi-scale deformable attention (Deformable-DETR), reference semantics."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .context import current_ops
from .export_target import PLUGIN_DOMAIN, emit_plugin_nodes, plugin_attributes


def _level_shapes(spatial_shapes: torch.Tensor | Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    if isinstance(spatial_shapes, torch.Tensor):
        spatial_shapes = spatial_shapes.tolist()
    return [(int(h), int(w)) for h, w in spatial_shapes]


def level_starts(shapes: Sequence[tuple[int, int]]) -> list[int]:
    """Offset of each level in the flattened value: [0, H_0*W_0, H_0*W_0 + H_1*W_1, ...]."""
    starts = [0]
    for h, w in shapes[:-1]:
        starts.append(starts[-1] + h * w)
    return starts


def _drop_non_finite_samples(locations: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples whose location is NaN/inf contribute nothing, whatever their weight, as in the kernels
    (grid_sample would read garbage there): such a location is moved outside the map (where zero padding
    reads zeros) and its weight set to 0. locations [..., 2] normalised (x, y), weights [...]."""
    finite = torch.isfinite(locations).all(-1)
    locations = torch.where(finite[..., None], locations, torch.full_like(locations, -1.0))
    return locations, torch.where(finite, weights, torch.zeros_like(weights))


def _plugin_node(value: torch.Tensor, shapes: list[tuple[int, int]], sampling_locations: torch.Tensor,
                 attention_weights: torch.Tensor) -> torch.Tensor:
    """One ``instancevg::MSDeformAttn`` node (the plugin node contract): the index inputs are int32
    constants, since TensorRT's parser passes INT64 to custom plugins unconverted (engines/README.md, rule plugin-int32)."""
    B, _, M, D = value.shape
    Q = sampling_locations.shape[1]
    spatial_shapes = torch.tensor(shapes, dtype=torch.int32, device=value.device)
    level_start_index = torch.tensor(level_starts(shapes), dtype=torch.int32, device=value.device)
    return torch.onnx.ops.symbolic(
        f"{PLUGIN_DOMAIN}::MSDeformAttn",
        (value, spatial_shapes, level_start_index, sampling_locations.to(value.dtype),
         attention_weights.to(value.dtype)),
        plugin_attributes(), dtype=value.dtype, shape=(B, Q, M * D), version=1)


def ms_deform_attn(value: torch.Tensor, spatial_shapes, level_start_index, sampling_locations: torch.Tensor,
                   attention_weights: torch.Tensor) -> torch.Tensor:
    """Weighted bilinear sampling of a multi-level value map.

    Args:
        value: [B, S, M, D], S = sum of H_l * W_l, levels concatenated row-major in level order.
        spatial_shapes: [L, 2] (H_l, W_l), a tensor or a sequence of int pairs (static in graphs).
        level_start_index: [L], offset of each level in S (implied by spatial_shapes; accepted for the
            plugin contract and checked for consistency when it is a tensor in eager mode).
        sampling_locations: [B, Q, M, L, P, 2] normalised (x, y); pixel = loc * size - 0.5
            (align_corners=False); bilinear corners outside the map read zeros (zero padding); a sample
            whose location is NaN/inf contributes nothing, whatever its weight.
        attention_weights: [B, Q, M, L, P].

    Returns:
        [B, Q, M * D], channel m * D + d.

    ONNX export: one ``MSDeformAttn`` custom node for the tensorrt target (``export_target``), else
    the decomposition below (one GridSample per level), which is also the eager reference. Eager runs
    under ``use_ops("plugin")`` call the plugin kernels instead (``plugin``).
    """
    shapes = _level_shapes(spatial_shapes)
    B, S, M, D = value.shape
    _, Q, _, L, P, _ = sampling_locations.shape
    if len(shapes) != L or sum(h * w for h, w in shapes) != S:
        raise ValueError(f"spatial_shapes {shapes} do not match value [S={S}] and {L} sampling levels")
    if emit_plugin_nodes():
        return _plugin_node(value, shapes, sampling_locations, attention_weights)
    if isinstance(level_start_index, (torch.Tensor, list, tuple)) and not torch.jit.is_tracing() \
            and not torch.compiler.is_compiling() and not torch.onnx.is_in_onnx_export():
        given = level_start_index.tolist() if isinstance(level_start_index, torch.Tensor) else list(level_start_index)
        if given != level_starts(shapes):
            raise ValueError(f"level_start_index {given} != expected {level_starts(shapes)}")
    if current_ops() == "plugin":
        from . import plugin

        return plugin.ms_deform_attn(value, shapes, sampling_locations, attention_weights)
    values = value.split([h * w for h, w in shapes], dim=1)
    sampled, level_weights = [], []
    for level, (h, w) in enumerate(shapes):
        locations, weights = _drop_non_finite_samples(sampling_locations[:, :, :, level],
                                                      attention_weights[:, :, :, level])
        level_weights.append(weights)
        # [B, H*W, M, D] -> [B*M, D, H, W]; contiguous: CPU FP16 grid_sample misreads strided inputs
        v = values[level].flatten(2).transpose(1, 2).reshape(B * M, D, h, w).contiguous()
        # [B, Q, M, P, 2] -> [B*M, Q, P, 2] in grid_sample's [-1, 1] convention, align_corners=False
        g = (2 * locations - 1).transpose(1, 2).flatten(0, 1).contiguous()
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    # [B*M, D, Q, L, P] weighted by [B*M, 1, Q, L, P]
    stacked = torch.stack(sampled, dim=-2)
    weights = torch.stack(level_weights, dim=3).transpose(1, 2).reshape(B * M, 1, Q, L, P)
    out = (stacked * weights).flatten(-2).sum(-1)  # [B*M, D, Q]
    return out.view(B, M * D, Q).transpose(1, 2).contiguous()
