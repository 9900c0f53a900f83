"""The InstanceVG model: BEiT-3 encoder (``vis_enc.beit3``) + head (``head``), returning RawOutputs."""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..structures import RawOutputs
from .beit3 import BEiT3
from .head import InstanceVGHead


class VisualEncoder(nn.Module):
    """Wrapper that gives the encoder its official prefix ``vis_enc.beit3``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.beit3 = BEiT3(cfg.encoder, cfg.image_size)


class InstanceVG(nn.Module):
    """Generalized visual grounding: image + expression -> per-query boxes, scores and masks.

    forward(image [B,3,H,W] float32 normalised, text_ids [B,L] int, text_pad_mask [B,L] bool) -> RawOutputs
    (instancevg/structures.py). H = W = cfg.image_size and L = cfg.max_tokens are fixed.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.vis_enc = VisualEncoder(cfg)
        self.head = InstanceVGHead(cfg)

    def check_inputs(self, image: torch.Tensor, text_ids: torch.Tensor, text_pad_mask: torch.Tensor):
        """Raise ValueError naming the expected shape/dtype when an input does not fit the config."""
        S, L = self.cfg.image_size, self.cfg.max_tokens
        if image.dim() != 4 or tuple(image.shape[1:]) != (3, S, S):
            raise ValueError(f"image must be [B, 3, {S}, {S}] for config {self.cfg.name!r}, "
                             f"got {list(image.shape)}")
        if not image.is_floating_point():
            raise ValueError(f"image must be a float tensor (normalised), got {image.dtype}")
        B = image.shape[0]
        if tuple(text_ids.shape) != (B, L):
            raise ValueError(f"text_ids must be [{B}, {L}] (max_tokens {L} of config {self.cfg.name!r}), "
                             f"got {list(text_ids.shape)}")
        if text_ids.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"text_ids must be int32 or int64, got {text_ids.dtype}")
        if tuple(text_pad_mask.shape) != (B, L):
            raise ValueError(f"text_pad_mask must be [{B}, {L}], got {list(text_pad_mask.shape)}")
        if text_pad_mask.dtype != torch.bool:
            raise ValueError(f"text_pad_mask must be bool (True = padding), got {text_pad_mask.dtype}")

    def forward_all(self, image, text_ids, text_pad_mask) -> dict:
        """Every head output (RawOutputs fields, per-layer predictions for training, the selections; see
        ``InstanceVGHead.forward``)."""
        g = self.cfg.grid_size
        L = text_ids.shape[1]
        tokens = self.vis_enc.beit3(image, text_ids.long(), text_pad_mask)
        img_tokens = tokens[:, 1:-L].transpose(1, 2).reshape(tokens.shape[0], -1, g, g)
        return self.head(img_tokens, tokens[:, -L:], text_pad_mask)

    def forward(self, image: torch.Tensor, text_ids: torch.Tensor, text_pad_mask: torch.Tensor) -> RawOutputs:
        if not torch.compiler.is_compiling() and not torch.jit.is_tracing():
            self.check_inputs(image, text_ids, text_pad_mask)
        out = self.forward_all(image, text_ids, text_pad_mask)
        return RawOutputs(**{k: out[k] for k in ("class_logits", "boxes", "points", "instance_mask_logits",
                                                 "global_mask_logits", "exist_logits")})


def build_model(cfg: ModelConfig) -> InstanceVG:
    return InstanceVG(cfg)
