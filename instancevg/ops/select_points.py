"""Dynamic point selection (AQSM), reference semantics in a fixed-shape form."""
from __future__ import annotations

import math

import torch


def points_from_indices(indices: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Cell centres ((col + 0.5) / w, (row + 0.5) / h) as (x, y) for flat row-major indices [B, N]."""
    rows = torch.div(indices, w, rounding_mode="floor")
    cols = indices - rows * w
    return torch.stack(((cols.float() + 0.5) / w, (rows.float() + 0.5) / h), dim=-1)


def select_points(scores: torch.Tensor, num_points: int, w_dist: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy score-plus-spread selection of ``num_points`` grid cells.

    The first point is argmax(s); each next one maximises s(c) + w_dist * d(c) / sqrt(h^2 + w^2) over the
    cells not yet chosen, d(c) being the Euclidean distance in cells (row, col) to the nearest chosen
    cell. Ties go to the first cell in row-major order. Identical to the official shrinking-set loop
    (running min-distance vector, chosen cells at -inf, plain argmax). No sigmoid is applied here.

    Args:
        scores: [B, h, w] float32, s = sigmoid(attention map).
    Returns:
        indices [B, N] int64 (row * w + col) and points [B, N, 2] float32 (x, y) in [0, 1].
    """
    if scores.dim() != 3:
        raise ValueError(f"scores must be [B, h, w], got shape {tuple(scores.shape)}")
    B, h, w = scores.shape
    if not 1 <= num_points <= h * w:
        raise ValueError(f"num_points must lie in [1, {h * w}], got {num_points}")
    s = scores.reshape(B, h * w).float()
    cells = torch.arange(h * w, device=scores.device)
    rows = torch.div(cells, w, rounding_mode="floor").float()
    cols = (cells % w).float()
    scale = w_dist / math.sqrt(h * h + w * w)
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
