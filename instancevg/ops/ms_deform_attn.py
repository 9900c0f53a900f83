"""Multi-scale deformable attention (Deformable-DETR), reference semantics."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .export_target import PLUGIN_DOMAIN, emit_plugin_nodes, plugin_attributes


def _level_shapes(spatial_shapes: torch.Tensor | Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    if isinstance(spatial_shapes, torch.Tensor):
        spatial_shapes = spatial_shapes.tolist()
    return [(int(h), int(w)) for h, w in spatial_shapes]


def _level_starts(shapes: list[tuple[int, int]]) -> list[int]:
    starts = [0]
    for h, w in shapes[:-1]:
        starts.append(starts[-1] + h * w)
    return starts


def _plugin_node(value: torch.Tensor, shapes: list[tuple[int, int]], sampling_locations: torch.Tensor,
                 attention_weights: torch.Tensor) -> torch.Tensor:
    """One ``instancevg::MSDeformAttn`` node (the plugin node contract): the index inputs are int32
    constants, since TensorRT's parser passes INT64 to custom plugins unconverted (FACTS.md §4)."""
    B, _, M, D = value.shape
    Q = sampling_locations.shape[1]
    spatial_shapes = torch.tensor(shapes, dtype=torch.int32, device=value.device)
    level_start_index = torch.tensor(_level_starts(shapes), dtype=torch.int32, device=value.device)
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
            (align_corners=False); samples outside the map read zeros.
        attention_weights: [B, Q, M, L, P].

    Returns:
        [B, Q, M * D], channel m * D + d.

    ONNX export: one ``MSDeformAttn`` custom node for the tensorrt target (``export_target``), else
    the decomposition below (one GridSample per level), which is also the eager reference.
    """
    shapes = _level_shapes(spatial_shapes)
    B, S, M, D = value.shape
    _, Q, _, L, P, _ = sampling_locations.shape
    if len(shapes) != L or sum(h * w for h, w in shapes) != S:
        raise ValueError(f"spatial_shapes {shapes} do not match value [S={S}] and {L} sampling levels")
    if emit_plugin_nodes():
        return _plugin_node(value, shapes, sampling_locations, attention_weights)
    if isinstance(level_start_index, torch.Tensor) and not torch.jit.is_tracing() \
            and not torch.compiler.is_compiling() and not torch.onnx.is_in_onnx_export():
        starts = _level_starts(shapes)
        if level_start_index.tolist() != starts:
            raise ValueError(f"level_start_index {level_start_index.tolist()} != expected {starts}")
    values = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * sampling_locations - 1  # grid_sample's [-1, 1] convention, align_corners=False
    sampled = []
    for level, (h, w) in enumerate(shapes):
        # [B, H*W, M, D] -> [B*M, D, H, W]
        v = values[level].flatten(2).transpose(1, 2).reshape(B * M, D, h, w)
        # [B, Q, M, P, 2] -> [B*M, Q, P, 2]
        g = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    # [B*M, D, Q, L, P] weighted by [B*M, 1, Q, L, P]
    stacked = torch.stack(sampled, dim=-2)
    weights = attention_weights.transpose(1, 2).reshape(B * M, 1, Q, L, P)
    out = (stacked * weights).flatten(-2).sum(-1)  # [B*M, D, Q]
    return out.view(B, M * D, Q).transpose(1, 2).contiguous()
