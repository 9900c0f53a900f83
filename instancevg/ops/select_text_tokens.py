"""Text filter of AQSM: which text tokens seed the queries, reference semantics in fixed shapes."""
from __future__ import annotations

import torch

from .context import forced_text_index


def text_token_indices(features: torch.Tensor, pad_mask: torch.Tensor, num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the ``num`` selected tokens and their validity.

    score = mean over channels of features * valid (the official code's mean, not the paper's L2 norm).
    With n_valid >= num: topk of the scores of the first n_valid positions, descending, all valid.
    Otherwise: positions 0..num-1 in sequence order, valid where position < n_valid. Inside
    ``forced_selection(text_index=...)`` the given positions are returned (validity by the same rule).

    Args:
        features: [B, L, C]; pad_mask: [B, L] bool, True on padding.
    Returns:
        index [B, num] int64, valid [B, num] bool.
    """
    B, L, _ = features.shape
    if pad_mask.shape != (B, L):
        raise ValueError(f"pad_mask must be [{B}, {L}], got {tuple(pad_mask.shape)}")
    if not 1 <= num <= L:
        raise ValueError(f"num must lie in [1, {L}], got {num}")
    valid = ~pad_mask.bool()
    scores = (features * valid.unsqueeze(-1).to(features.dtype)).mean(-1)
    n_valid = valid.sum(1, keepdim=True)
    positions = torch.arange(L, device=features.device).unsqueeze(0)
    ranked = torch.where(positions < n_valid, scores, torch.full_like(scores, float("-inf")))
    top = ranked.topk(num, dim=1).indices
    enough = n_valid >= num
    in_order = positions[:, :num].expand(B, num)
    forced = forced_text_index()
    index = torch.where(enough, top, in_order) if forced is None else forced
    sel_valid = enough | (in_order < n_valid)
    return index, sel_valid


def select_text_tokens(features: torch.Tensor, pad_mask: torch.Tensor, num: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Selected (masked) token features [B, num, C], their validity [B, num] and positions [B, num] int64
    (:func:`text_token_indices`)."""
    index, valid = text_token_indices(features, pad_mask, num)
    masked = features * (~pad_mask.bool()).unsqueeze(-1).to(features.dtype)
    selected = masked.gather(1, index.unsqueeze(-1).expand(-1, -1, features.shape[-1]))
    return selected, valid, index
