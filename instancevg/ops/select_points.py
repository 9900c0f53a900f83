"""Dynamic point selection (AQSM), reference semantics in a fixed-shape form."""
from __future__ import annotations

import math

import numpy as np
import torch

from .context import current_ops, forced_point_index
from .export_target import PLUGIN_DOMAIN, emit_plugin_nodes, plugin_attributes


def distance_scale(w_dist: float, h: int, w: int) -> float:
    """The float32 factor of the distances: float32(float32(w_dist) / sqrt(h^2 + w^2)), the quotient taken
    in float64. The one definition of the selection's scale: the reference below, the ONNX attribute
    (float32 w_dist) and both kernels (pointSelectScale in plugins/common/pointSelectMath.h) use exactly
    this value, so that FP32 selections agree bit for bit. Returned as the Python float of that float32."""
    return float(np.float32(float(np.float32(w_dist)) / math.sqrt(h * h + w * w)))


def points_from_indices(indices: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Cell centres ((col + 0.5) / w, (row + 0.5) / h) as (x, y) for flat row-major indices [B, N]."""
    rows = torch.div(indices, w, rounding_mode="floor")
    cols = indices - rows * w
    return torch.stack(((cols.float() + 0.5) / w, (rows.float() + 0.5) / h), dim=-1)


def _plugin_node(scores: torch.Tensor, num_points: int, w_dist: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``instancevg::PointSelect`` node (the plugin node contract): scores [B, h, w] float32 ->
    indices [B, N] int32, points [B, N, 2] float32; the indices are widened to int64 after the node, as
    the op's contract (and the model's gather) has them."""
    B = scores.shape[0]
    indices, points = torch.onnx.ops.symbolic_multi_out(
        f"{PLUGIN_DOMAIN}::PointSelect", (scores.float(),),
        plugin_attributes(num_points=int(num_points), w_dist=float(w_dist)),
        dtypes=(torch.int32, torch.float32), shapes=((B, num_points), (B, num_points, 2)), version=1)
    return indices.long(), points


def select_points(scores: torch.Tensor, num_points: int, w_dist: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy score-plus-spread selection of ``num_points`` grid cells.

    The first point is argmax(s); each next one maximises s(c) + scale * d(c) over the cells not yet
    chosen, d(c) being the Euclidean distance in cells (row, col) to the nearest chosen cell and scale =
    :func:`distance_scale` (w_dist / sqrt(h^2 + w^2) in float32). Every operation is one float32 operation,
    rounded separately (the kernels do the same). Ties go to the first cell in row-major order; a NaN score
    ranks highest (torch.argmax). Identical to the official shrinking-set loop (running min-distance
    vector, chosen cells at -inf, plain argmax). No sigmoid is applied here.

    Args:
        scores: [B, h, w] float32, s = sigmoid(attention map).
    Returns:
        indices [B, N] int64 (row * w + col) and points [B, N, 2] float32 (x, y) in [0, 1].

    ONNX export: one ``PointSelect`` custom node for the tensorrt target (``export_target``), else this
    fixed unrolled loop of standard ops (ArgMax, Where, Min, Sqrt, ...). Eager runs under
    ``use_ops("plugin")`` call the plugin kernels instead; inside ``forced_selection`` the given cells are
    returned.
    """
    if scores.dim() != 3:
        raise ValueError(f"scores must be [B, h, w], got shape {tuple(scores.shape)}")
    B, h, w = scores.shape
    if not 1 <= num_points <= h * w:
        raise ValueError(f"num_points must lie in [1, {h * w}], got {num_points}")
    forced = forced_point_index()
    if forced is not None:
        return forced, points_from_indices(forced, h, w)
    if emit_plugin_nodes():
        return _plugin_node(scores, num_points, w_dist)
    if current_ops() == "plugin":
        from . import plugin

        return plugin.select_points(scores, num_points, w_dist)
    s = scores.reshape(B, h * w).float()
    cells = torch.arange(h * w, device=scores.device)
    rows = torch.div(cells, w, rounding_mode="floor").float()
    cols = (cells % w).float()
    scale = distance_scale(w_dist, h, w)  # a float32 value: the float32 product below is exact to it
    neg_inf = torch.full_like(s, float("-inf"))
    chosen = torch.zeros_like(s, dtype=torch.bool)
    dmin = torch.full_like(s, float("inf"))
    picks = []
    for k in range(num_points):
        combined = s if k == 0 else torch.where(chosen, neg_inf, s + scale * dmin)
        idx = combined.argmax(dim=1)  # first maximal index
        picks.append(idx)
        chosen = chosen | (cells[None] == idx[:, None])
        dr = rows[None] - rows[idx][:, None]
        dc = cols[None] - cols[idx][:, None]
        dmin = torch.minimum(dmin, torch.sqrt(dr * dr + dc * dc))
    indices = torch.stack(picks, dim=1)
    return indices, points_from_indices(indices, h, w)
