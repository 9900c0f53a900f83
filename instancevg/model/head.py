"""The InstanceVG head (official ``UniGRefDeformableHead``, key names preserved)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .aqsm import AQSM
from .deformable import DeformableTransformer
from .layers import MLP, inverse_sigmoid
from .neck import SimpleFPN, UnetDecoder


class SegBranch(nn.Module):
    """Global-mask logits: 1x1 conv C -> 1 (key ``predict``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.predict = nn.Conv2d(dim, 1, 1)

    def forward(self, x):
        return self.predict(x)


class Projector(nn.Module):
    """Unused pixel-text projector of the official head, kept so official checkpoints load strictly."""

    def __init__(self, dim: int):
        super().__init__()
        self.vis = nn.Conv2d(dim, dim // 2, 1)
        self.txt = nn.Linear(dim, dim // 2 + 1)


class CriterionBuffers(nn.Module):
    """Holds ``criterion.empty_weight`` ([1, no_object_weight]), the class weights of the DETR loss."""

    def __init__(self, no_object_weight: float):
        super().__init__()
        self.criterion = nn.Module()
        self.criterion.register_buffer("empty_weight", torch.tensor([1.0, no_object_weight]))


class InstanceVGHead(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        C, E = cfg.hidden_dim, cfg.encoder.embed_dim
        self.seg_branch = SegBranch(C)
        self.nt_embed = MLP(C, C, 2, 3)
        class_embed = nn.Linear(C, 2)
        bbox_embed = MLP(C, C, 4, 3)
        nn.init.constant_(bbox_embed.layers[-1].bias.data[2:], -2.0)
        # ONE module shared by the decoder layers, listed once per layer as in official checkpoints
        self.class_embed = nn.ModuleList([class_embed] * cfg.decoder_layers)
        self.bbox_embed = nn.ModuleList([bbox_embed] * cfg.decoder_layers)
        self.lan_embedding = nn.Linear(E, C, bias=False)
        self.img_embedding = nn.Conv2d(E, C, 1, bias=False)
        self.query_embedding = nn.Linear(E, C, bias=False)  # unused (overwritten by AQSM officially)
        self.neck = SimpleFPN(C)
        self.unet_decoder = UnetDecoder(C)
        self.proj_pixel_level_cons = Projector(C)
        self.query_generation = AQSM(C, cfg.num_queries, cfg.t2i_heads, cfg.t2i_ffn_dim, cfg.dropout,
                                     cfg.w_dist, cfg.dynamic_point_selection)
        self.detrloss = CriterionBuffers(cfg.loss.no_object_weight)
        self.decoder_transformer = DeformableTransformer(C, cfg.decoder_heads, cfg.decoder_ffn_dim,
                                                         cfg.decoder_layers, cfg.level_shapes, cfg.num_points,
                                                         cfg.dropout)
        self.query_pos_embedding = nn.Linear(2, C)

    def forward(self, img_tokens: torch.Tensor, text_tokens: torch.Tensor, text_pad_mask: torch.Tensor) -> dict:
        """
        Args:
            img_tokens: [B, C_enc, g, g] BEiT-3 patch tokens as a map; text_tokens: [B, L, C_enc];
            text_pad_mask: [B, L] bool.
        Returns a dict of tensors: class_logits [B,N,2], boxes [B,N,4], points [B,N,2],
        instance_mask_logits [B,N,4g,4g], global_mask_logits [B,1,4g,4g], exist_logits [B,2]; for training:
        class_logits_per_layer [layers,B,N,2], boxes_per_layer [layers,B,N,4], global_attn_map [B,g,g];
        and the selections: point_index [B,N], text_index [B,N] (int64).
        """
        f_v = self.img_embedding(img_tokens)
        f_t = self.lan_embedding(text_tokens)
        levels = self.neck(f_v)
        aqsm = self.query_generation(f_t, text_pad_mask, f_v)
        query_pos = self.query_pos_embedding(aqsm.points.to(f_v.dtype))
        states, reference = self.decoder_transformer(levels, aqsm.queries, query_pos, aqsm.points)
        ref_logit = inverse_sigmoid(reference)
        ref_logit = torch.cat([ref_logit, torch.zeros_like(ref_logit)], dim=-1)
        class_logits, boxes_raw = [], []
        for layer_index, state in enumerate(states):
            class_logits.append(self.class_embed[layer_index](state))
            boxes_raw.append(self.bbox_embed[layer_index](state))
        class_logits = torch.stack(class_logits)
        boxes_raw = torch.stack(boxes_raw)
        boxes = (boxes_raw.float() + ref_logit).sigmoid()  # box decoding in float32 (FP16 policy)
        s_global = self.unet_decoder(*levels)
        instance_masks = torch.einsum("bqc,bchw->bqhw", states[-1], s_global)
        global_masks = self.seg_branch(s_global)
        # the mean over every pixel of S_global accumulates in float32 (FP16 policy)
        exist_logits = self.nt_embed(s_global.flatten(2).transpose(1, 2)).float().mean(1)
        return dict(class_logits=class_logits[-1], boxes=boxes[-1], points=aqsm.points,
                    instance_mask_logits=instance_masks, global_mask_logits=global_masks,
                    exist_logits=exist_logits, class_logits_per_layer=class_logits, boxes_per_layer=boxes,
                    global_attn_map=aqsm.global_map, point_index=aqsm.point_index, text_index=aqsm.text_index)


def upsample_mask_logits(logits: torch.Tensor, size: int) -> torch.Tensor:
    """Stride-4 mask logits [B, K, h, w] -> [B, K, size, size], bilinear, align_corners=True (official)."""
    return F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=True)
