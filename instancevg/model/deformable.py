"""Point-prior deformable decoder: 3 post-norm layers of self-attention and multi-scale deformable
attention over the flattened FPN memory (no encoder), all with the same reference points."""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import ops
from .layers import FFN, LayerNorm, ResidualAttention


class DeformableSampling(nn.Module):
    """The sampling core, ``ops.ms_deform_attn``, as a module without parameters (a place for hooks):
    value [B, S, M, D], sampling locations [B, Q, M, L, P, 2], attention weights [B, Q, M, L, P] ->
    [B, Q, M * D]. The level shapes are fixed by the config."""

    def __init__(self, level_shapes: tuple[tuple[int, int], ...]):
        super().__init__()
        self.level_shapes = [tuple(hw) for hw in level_shapes]
        self.level_starts = ops.level_starts(self.level_shapes)

    def forward(self, value: torch.Tensor, locations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return ops.ms_deform_attn(value, self.level_shapes, self.level_starts, locations, weights)


class MSDeformAttn(nn.Module):
    """Deformable-DETR multi-scale deformable attention (keys ``sampling_offsets``, ``attention_weights``,
    ``value_proj``, ``output_proj``) over levels of fixed shapes [(H_l, W_l)]."""

    def __init__(self, dim: int, heads: int, level_shapes: tuple[tuple[int, int], ...], points: int,
                 dropout: float):
        super().__init__()
        self.heads, self.levels, self.points = heads, len(level_shapes), points
        levels = self.levels
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.sampling = DeformableSampling(level_shapes)
        # (W_l, H_l) per level, the offsets' normaliser; a buffer, so forward copies nothing from the host
        # (CUDA-graph capturable); not in the state dict (official checkpoints have no such key)
        self.register_buffer("offset_normalizer", torch.tensor([[w, h] for h, w in level_shapes],
                                                               dtype=torch.float32), persistent=False)
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

    def forward(self, x, query_pos, memory, reference):
        """x, query_pos [B, N, C]; memory [B, S, C]; reference [B, N, 2] (x, y), may exceed 1."""
        B, N, C = x.shape
        query = x + query_pos
        value = self.value_proj(memory).view(B, memory.shape[1], self.heads, C // self.heads)
        offsets = self.sampling_offsets(query).view(B, N, self.heads, self.levels, self.points, 2)
        weights = self.attention_weights(query).view(B, N, self.heads, self.levels * self.points)
        weights = weights.softmax(-1).view(B, N, self.heads, self.levels, self.points)
        # sampling locations are computed in float32 (reference is float32) and handed to the op in
        # the value's type: FP16 graphs feed the MSDeformAttn node FP16 (plugin node contract)
        normalizer = self.offset_normalizer.float()[None, None, None, :, None, :]
        locations = reference[:, :, None, None, None, :] + offsets.float() / normalizer
        out = self.sampling(value, locations.to(value.dtype), weights)
        return x + self.dropout(self.output_proj(out))


class DeformableDecoderLayer(nn.Module):
    def __init__(self, dim, heads, ffn_dim, level_shapes, points, dropout):
        super().__init__()
        self.attentions = nn.ModuleList([ResidualAttention(dim, heads, dropout),
                                         MSDeformAttn(dim, heads, level_shapes, points, dropout)])
        self.ffns = nn.ModuleList([FFN(dim, ffn_dim, dropout)])
        self.norms = nn.ModuleList(LayerNorm(dim) for _ in range(3))

    def forward(self, x, query_pos, memory, reference):
        x, _ = self.attentions[0](x, x, x, query_pos, query_pos)
        x = self.norms[0](x)
        x = self.norms[1](self.attentions[1](x, query_pos, memory, reference))
        return self.norms[2](self.ffns[0](x))


class DeformableDecoder(nn.Module):
    def __init__(self, dim, heads, ffn_dim, layers, level_shapes, points, dropout):
        super().__init__()
        self.layers = nn.ModuleList(DeformableDecoderLayer(dim, heads, ffn_dim, level_shapes, points, dropout)
                                    for _ in range(layers))


class DeformableTransformer(nn.Module):
    """Decoder-only deformable transformer over FPN levels of the fixed shapes ``level_shapes``
    [(H_l, W_l)]. ``level_embeds`` is kept for the official keys but, as in the official forward (no
    encoder), reaches no output."""

    def __init__(self, dim, heads, ffn_dim, layers, level_shapes, points, dropout):
        super().__init__()
        self.level_shapes = [tuple(hw) for hw in level_shapes]
        self.level_embeds = nn.Parameter(torch.zeros(len(level_shapes), dim))
        self.decoder = DeformableDecoder(dim, heads, ffn_dim, layers, level_shapes, points, dropout)
        self.reference_points = nn.Linear(dim, 2)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for layer in self.decoder.layers:
            layer.attentions[1].reset_parameters()
        nn.init.normal_(self.level_embeds)
        nn.init.xavier_normal_(self.reference_points.weight)
        nn.init.constant_(self.reference_points.bias, 0.0)

    def forward(self, levels: list[torch.Tensor], queries, query_pos, points):
        """levels: FPN maps [B, C, H_l, W_l]; queries, query_pos [B, N, C]; points [B, N, 2].

        Returns the per-layer states [layers, B, N, C] and the reference points [B, N, 2]."""
        shapes = [tuple(f.shape[-2:]) for f in levels]
        if shapes != self.level_shapes:
            raise ValueError(f"FPN levels {shapes} do not have the configured shapes {self.level_shapes}")
        memory = torch.cat([f.flatten(2).transpose(1, 2) for f in levels], dim=1)
        # float32 reference points (FP16 policy): box decoding and sampling locations build on them
        reference = self.reference_points(query_pos).float().sigmoid() + points.float()
        states, x = [], queries
        for layer in self.decoder.layers:
            x = layer(x, query_pos, memory, reference)
            states.append(x)
        return torch.stack(states), reference
