"""Point-prior deformable decoder: 3 post-norm layers of self-attention and multi-scale deformable
attention over the flattened FPN memory (no encoder), all with the same reference points."""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import ops
from .layers import FFN, LayerNorm, ResidualAttention


class MSDeformAttn(nn.Module):
    """Deformable-DETR multi-scale deformable attention (keys ``sampling_offsets``, ``attention_weights``,
    ``value_proj``, ``output_proj``)."""

    def __init__(self, dim: int, heads: int, levels: int, points: int, dropout: float):
        super().__init__()
        self.heads, self.levels, self.points = heads, levels, points
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self):
        """Deformable-DETR init: radial offset grid, uniform attention, xavier projections."""
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.heads, dtype=torch.float32) * (2.0 * math.pi / self.heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.heads, 1, 1, 2)
        grid = grid.repeat(1, self.levels, self.points, 1)
        grid = grid * torch.arange(1, self.points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def forward(self, x, query_pos, memory, reference, level_shapes, capture=None):
        """x, query_pos [B, N, C]; memory [B, S, C]; reference [B, N, 2] (x, y), may exceed 1."""
        B, N, C = x.shape
        query = x + query_pos
        value = self.value_proj(memory).view(B, memory.shape[1], self.heads, C // self.heads)
        offsets = self.sampling_offsets(query).view(B, N, self.heads, self.levels, self.points, 2)
        weights = self.attention_weights(query).view(B, N, self.heads, self.levels * self.points)
        weights = weights.softmax(-1).view(B, N, self.heads, self.levels, self.points)
        # sampling locations are computed in float32 (reference is float32) and handed to the op in
        # the value's type: FP16 graphs feed the MSDeformAttn node FP16 (plugin node contract)
        normalizer = torch.tensor([[w, h] for h, w in level_shapes], dtype=torch.float32, device=x.device)
        locations = reference[:, :, None, None, None, :] + offsets.float() / normalizer[None, None, None, :, None, :]
        locations = locations.to(value.dtype)
        starts, total = [], 0
        for h, w in level_shapes:
            starts.append(total)
            total += h * w
        out = ops.ms_deform_attn(value, level_shapes, torch.tensor(starts), locations, weights)
        if capture is not None:
            capture.setdefault("msda_sampling_locations", []).append(locations)
            capture.setdefault("msda_attention_weights", []).append(weights)
            capture.setdefault("msda_core_out", []).append(out)
        return x + self.dropout(self.output_proj(out))


class DeformableDecoderLayer(nn.Module):
    def __init__(self, dim, heads, ffn_dim, levels, points, dropout):
        super().__init__()
        self.attentions = nn.ModuleList([ResidualAttention(dim, heads, dropout),
                                         MSDeformAttn(dim, heads, levels, points, dropout)])
        self.ffns = nn.ModuleList([FFN(dim, ffn_dim, dropout)])
        self.norms = nn.ModuleList(LayerNorm(dim) for _ in range(3))

    def forward(self, x, query_pos, memory, reference, level_shapes, capture=None):
        x, _ = self.attentions[0](x, x, x, query_pos, query_pos)
        x = self.norms[0](x)
        n0 = x
        x = self.norms[1](self.attentions[1](x, query_pos, memory, reference, level_shapes, capture))
        n1 = x
        x = self.norms[2](self.ffns[0](x))
        if capture is not None:
            capture.setdefault("dec_norm0_out", []).append(n0)
            capture.setdefault("dec_norm1_out", []).append(n1)
        return x


class DeformableDecoder(nn.Module):
    def __init__(self, dim, heads, ffn_dim, layers, levels, points, dropout):
        super().__init__()
        self.layers = nn.ModuleList(DeformableDecoderLayer(dim, heads, ffn_dim, levels, points, dropout)
                                    for _ in range(layers))


class DeformableTransformer(nn.Module):
    """Decoder-only deformable transformer. ``level_embeds`` is kept for the official keys but, as in
    the official forward (no encoder), reaches no output."""

    def __init__(self, dim, heads, ffn_dim, layers, levels, points, dropout):
        super().__init__()
        self.level_embeds = nn.Parameter(torch.zeros(levels, dim))
        self.decoder = DeformableDecoder(dim, heads, ffn_dim, layers, levels, points, dropout)
        self.reference_points = nn.Linear(dim, 2)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for layer in self.decoder.layers:
            layer.attentions[1].reset_parameters()
        nn.init.normal_(self.level_embeds)
        nn.init.xavier_normal_(self.reference_points.weight)
        nn.init.constant_(self.reference_points.bias, 0.0)

    def forward(self, levels: list[torch.Tensor], queries, query_pos, points, capture=None):
        """levels: FPN maps [B, C, H_l, W_l]; queries, query_pos [B, N, C]; points [B, N, 2].

        Returns the per-layer states [layers, B, N, C] and the reference points [B, N, 2]."""
        level_shapes = [tuple(f.shape[-2:]) for f in levels]
        memory = torch.cat([f.flatten(2).transpose(1, 2) for f in levels], dim=1)
        # float32 reference points (FP16 policy): box decoding and sampling locations build on them
        reference = self.reference_points(query_pos).float().sigmoid() + points.float()
        states, x = [], queries
        for layer in self.decoder.layers:
            x = layer(x, query_pos, memory, reference, level_shapes, capture)
            states.append(x)
        if capture is not None:
            capture["reference_points"] = reference
        return torch.stack(states), reference
