"""AQSM query generator: text filter -> T2I decoder layer -> global attention map -> dynamic point
selection -> query MLP (the paper's instance query generator, IQG)."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .. import ops
from .layers import FFN, MLP, LayerNorm, ResidualAttention, sine_position_embedding


class T2IDecoderLayer(nn.Module):
    """Post-norm DETR decoder layer: self-attn -> LN -> cross-attn -> LN -> FFN -> LN."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.attentions = nn.ModuleList([ResidualAttention(dim, heads, dropout),
                                         ResidualAttention(dim, heads, dropout)])
        self.ffns = nn.ModuleList([FFN(dim, ffn_dim, dropout)])
        self.norms = nn.ModuleList(LayerNorm(dim) for _ in range(3))

    def forward(self, query, query_pos, memory, memory_pos):
        x, _ = self.attentions[0](query, query, query, query_pos, query_pos)
        x = self.norms[0](x)
        x, attn_map = self.attentions[1](x, memory, memory, query_pos, memory_pos, need_weights=True)
        x = self.norms[1](x)
        x = self.norms[2](self.ffns[0](x))
        return x, attn_map


class T2IDecoder(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList([T2IDecoderLayer(dim, heads, ffn_dim, dropout)])
        self.post_norm_layer = LayerNorm(dim)

    def forward(self, query, query_pos, memory, memory_pos):
        """query, query_pos [B, N, C]; memory, memory_pos [B, hw, C] -> refined queries [B, N, C] and the
        head-averaged cross-attention map [B, N, hw]."""
        x, attn_map = self.layers[0](query, query_pos, memory, memory_pos)
        return self.post_norm_layer(x), attn_map


class QueryGeneration(NamedTuple):
    """What AQSM returns: queries [B, N, C] (the input features' type), points [B, N, 2] float32 (x, y) in
    [0, 1], the global attention map [B, h, w] float32 (probabilities, before the sigmoid), the selected
    cells [B, N] int64 (row-major) and text-token positions [B, N] int64 with their validity [B, N] bool."""

    queries: torch.Tensor
    points: torch.Tensor
    global_map: torch.Tensor
    point_index: torch.Tensor
    text_index: torch.Tensor
    text_valid: torch.Tensor


class AQSM(nn.Module):
    """Instance queries and their reference points from the projected text and image features."""

    def __init__(self, dim: int, num_queries: int, heads: int, ffn_dim: int, dropout: float, w_dist: float,
                 dynamic_selection: bool = True):
        super().__init__()
        self.num_queries = num_queries
        self.w_dist = w_dist
        self.dynamic_selection = dynamic_selection
        self.query_embed = nn.Embedding(num_queries, dim)  # unused; kept for the official keys
        self.T2I_decoder = T2IDecoder(dim, heads, ffn_dim, dropout)
        self.mlp = MLP(2 * dim, dim, dim, 3)

    def forward(self, text_feat: torch.Tensor, text_pad_mask: torch.Tensor, img_feat: torch.Tensor
                ) -> QueryGeneration:
        """text_feat: F_t [B, L, C]; text_pad_mask: [B, L] bool (True = padding); img_feat: F_v [B, C, h, w]."""
        B, C, h, w = img_feat.shape
        # AQSM runs in the type of its own weights: FP16 graphs keep them float32, so the text filter,
        # the attention logits -> softmax -> max -> sigmoid -> selection path and the query MLP stay
        # float32 (FP16 cannot resolve neighbouring sigmoid scores near 0.5: export/README.md); the queries go
        # back to the caller's type.
        out_dtype, dtype = img_feat.dtype, self.mlp.layers[0].weight.dtype
        text_feat, img_feat = text_feat.to(dtype), img_feat.to(dtype)
        text_sel, valid, text_index = ops.select_text_tokens(text_feat, text_pad_mask, self.num_queries)
        memory = img_feat.flatten(2).transpose(1, 2)  # [B, hw, C]
        memory_pos = sine_position_embedding(h, w, C // 2, device=img_feat.device)
        memory_pos = memory_pos.flatten(1).transpose(0, 1)[None].to(memory.dtype)
        target = torch.zeros_like(text_sel)
        text_queries, attn = self.T2I_decoder(target, text_sel, memory, memory_pos)
        # max over the valid selected queries; the selection path stays float32 (see above)
        attn = attn.float()
        global_map = attn.masked_fill(~valid[..., None], float("-inf")).amax(dim=1).view(B, h, w)
        if self.dynamic_selection:
            point_index, points = ops.select_points(global_map.sigmoid(), self.num_queries, self.w_dist)
        else:  # ablation: plain top-k of the map
            point_index = global_map.flatten(1).topk(self.num_queries, dim=1).indices
            points = ops.points_from_indices(point_index, h, w)
        point_feat = memory.gather(1, point_index[..., None].expand(-1, -1, C))
        queries = self.mlp(torch.cat([text_queries, point_feat.to(text_queries.dtype)], dim=-1))
        return QueryGeneration(queries.to(out_dtype), points, global_map, point_index, text_index, valid)
