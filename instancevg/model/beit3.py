"""BEiT-3 multiway encoder, written to torchscale 0.3.0's layout and numerics (keys ``beit3.*``).

One joint pre-LN transformer over ``[CLS, patches, text]``; every projection, norm and FFN has two
experts: ``A`` for the vision tokens (CLS + patches), ``B`` for the text tokens (torchscale's multiway transformer, as in the official model).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..config import EncoderConfig
from .layers import DropPath, LayerNorm


class Multiway(nn.Module):
    """Expert A on tokens [0, split), expert B on the rest (split along the sequence, dim 1)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.A = module
        self.B = copy.deepcopy(module)

    def forward(self, x: torch.Tensor, split: int) -> torch.Tensor:
        a, b = x.split([split, x.shape[1] - split], dim=1)
        return torch.cat([self.A(a), self.B(b)], dim=1)


class MultiwayAttention(nn.Module):
    """torchscale MultiheadAttention with sub-LN (``inner_attn_ln``) before the output projection."""

    def __init__(self, dim: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scaling = self.head_dim ** -0.5
        self.k_proj = Multiway(nn.Linear(dim, dim))
        self.v_proj = Multiway(nn.Linear(dim, dim))
        self.q_proj = Multiway(nn.Linear(dim, dim))
        self.out_proj = Multiway(nn.Linear(dim, dim))
        self.inner_attn_ln = Multiway(LayerNorm(dim, eps=eps))

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor, split: int) -> torch.Tensor:
        """x [B, T, C]; key_padding_mask [B, T] bool (True = ignore)."""
        B, T, C = x.shape
        q = self.q_proj(x, split) * self.scaling
        k = self.k_proj(x, split)
        v = self.v_proj(x, split)
        q, k, v = (t.view(B, T, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        logits = q @ k.transpose(-1, -2)  # [B, H, T, T]
        logits = logits.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        probs = F.softmax(logits, dim=-1, dtype=torch.float32).type_as(logits)
        out = (probs @ v).transpose(1, 2).reshape(B, T, C)
        return self.out_proj(self.inner_attn_ln(out, split), split)


class FeedForward(nn.Module):
    """fc1 -> GELU -> sub-LN -> fc2 (one expert)."""

    def __init__(self, dim: int, hidden: int, eps: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.ffn_layernorm = LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.ffn_layernorm(F.gelu(self.fc1(x).float()).type_as(x)))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: EncoderConfig, drop_path: float):
        super().__init__()
        self.self_attn = MultiwayAttention(cfg.embed_dim, cfg.heads, cfg.layernorm_eps)
        self.self_attn_layer_norm = Multiway(LayerNorm(cfg.embed_dim, eps=cfg.layernorm_eps))
        self.ffn = Multiway(FeedForward(cfg.embed_dim, cfg.ffn_dim, cfg.layernorm_eps))
        self.final_layer_norm = Multiway(LayerNorm(cfg.embed_dim, eps=cfg.layernorm_eps))
        self.drop_path = DropPath(drop_path)

    def forward(self, x, key_padding_mask, split):
        x = x + self.drop_path(self.self_attn(self.self_attn_layer_norm(x, split), key_padding_mask, split))
        return x + self.drop_path(self.ffn(self.final_layer_norm(x, split), split))


class PositionTables(nn.Module):
    """Learned position tables: A (vision, num_patches + 3 rows), B (text); positions start at 2."""

    def __init__(self, vision_rows: int, text_rows: int, dim: int):
        super().__init__()
        self.A = nn.Embedding(vision_rows, dim)
        self.B = nn.Embedding(text_rows, dim)

    def forward(self, num_vision: int, num_text: int) -> torch.Tensor:
        """[1, num_vision + num_text, C]."""
        return torch.cat([self.A.weight[2:2 + num_vision], self.B.weight[2:2 + num_text]], dim=0)[None]


class Encoder(nn.Module):
    def __init__(self, cfg: EncoderConfig, num_patches: int):
        super().__init__()
        self.embed_positions = PositionTables(num_patches + 3, cfg.max_text_positions, cfg.embed_dim)
        rates = [cfg.drop_path_rate * i / max(cfg.layers - 1, 1) for i in range(cfg.layers)]  # linear schedule
        self.layers = nn.ModuleList(EncoderLayer(cfg, rate) for rate in rates)
        self.layer_norm = Multiway(LayerNorm(cfg.embed_dim, eps=cfg.layernorm_eps))


class VisionEmbedding(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))  # unused (pre-training only)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.proj = nn.Conv2d(3, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, 1 + (H/p)(W/p), C]."""
        x = self.proj(image).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)


class BEiT3(nn.Module):
    """Joint image-text encoder; returns the normalised tokens [B, 1 + P + L, C]."""

    def __init__(self, cfg: EncoderConfig, image_size: int):
        super().__init__()
        self.cfg = cfg
        num_patches = (image_size // cfg.patch_size) ** 2
        self.text_embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.vision_embed = VisionEmbedding(cfg)
        self.encoder = Encoder(cfg, num_patches)

    def forward(self, image: torch.Tensor, text_ids: torch.Tensor, text_pad_mask: torch.Tensor) -> torch.Tensor:
        vision = self.vision_embed(image)
        text = self.text_embed(text_ids)
        split = vision.shape[1]
        x = torch.cat([vision, text], dim=1) + self.encoder.embed_positions(split, text.shape[1])
        pad = torch.cat([text_pad_mask.new_zeros(vision.shape[:2]), text_pad_mask], dim=1).bool()
        x = x * (~pad).unsqueeze(-1).to(x.dtype)  # padded tokens are zeroed, then masked as keys
        for layer in self.encoder.layers:
            x = layer(x, pad, split)
        return self.encoder.layer_norm(x, split)
