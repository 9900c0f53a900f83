"""Small building blocks shared by the model's modules (names follow the official state-dict keys)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU in between (DETR's MLP; keys ``layers.{i}``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims, dims[1:] + [output_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm whose statistics are float32 whatever the input type (the FP16 policy of
    instancevg/model/precision.py): reduced-precision inputs are normalised in float32 and the result returned in the
    input type. Identical to nn.LayerNorm on float32 inputs (same keys, same numerics)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        native = x.dtype == torch.float32 and (self.weight is None or self.weight.dtype == torch.float32)
        # under autocast (mixed-precision training) layer_norm already runs in float32: keep its behaviour
        if native or torch.is_autocast_enabled(x.device.type):
            return super().forward(x)
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


class LayerNorm2d(LayerNorm):
    """LayerNorm over the channels of an NCHW map (eps 1e-5, as mmcv's build_norm_layer sets it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class DropPath(nn.Module):
    """Stochastic depth per sample (training only)."""

    def __init__(self, prob: float):
        super().__init__()
        self.prob = prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class FFN(nn.Module):
    """Post-norm transformer FFN with identity (keys ``layers.0.0`` and ``layers.1``)."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout)),
            nn.Linear(hidden_dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class ResidualAttention(nn.Module):
    """Batch-first multi-head attention with positions added to query and key, plus the identity.

    Returns the output [B, Nq, C] and the head-averaged attention weights [B, Nq, Nk].
    """

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, query, key, value, query_pos=None, key_pos=None, need_weights: bool = False):
        q = query if query_pos is None else query + query_pos
        k = key if key_pos is None else key + key_pos
        out, weights = self.attn(q, k, value, need_weights=need_weights)
        return query + self.proj_drop(out), weights


def sine_position_embedding(h: int, w: int, num_feats: int, temperature: float = 10000.0,
                            scale: float = 2 * math.pi, eps: float = 1e-6,
                            device=None) -> torch.Tensor:
    """DETR's normalised 2-D sine embedding of an unmasked h x w grid: [2*num_feats, h, w], cat(y, x)."""
    y = torch.arange(1, h + 1, dtype=torch.float32, device=device)[:, None].expand(h, w)
    x = torch.arange(1, w + 1, dtype=torch.float32, device=device)[None, :].expand(h, w)
    y = y / (h + eps) * scale
    x = x / (w + eps) * scale
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos_x = x[..., None] / dim_t
    pos_y = y[..., None] / dim_t
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=-1).flatten(-2)
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=-1).flatten(-2)
    return torch.cat((pos_y, pos_x), dim=-1).permute(2, 0, 1)


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """logit(x) with x clamped to [0, 1] and both terms to >= eps (Deformable-DETR's definition)."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))
