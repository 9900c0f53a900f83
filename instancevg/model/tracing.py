"""The intermediates of an InstanceVG forward, for stage-by-stage comparisons (the official golden data,
CUDA vs CPU, precision debugging), taken with forward hooks: the model's forward knows nothing of them.

    with record_intermediates(model) as stages:
        model(image, text_ids, text_pad_mask)
    stages["F_v"], stages["point_index"], stages["msda_core_out"][layer], ...

The names are those of the golden data (tests/data/golden/README.md):

| name | shape | where |
|---|---|---|
| beit_embed_out | [B, T, E] | input of encoder layer 0 (embeddings + positions, padding zeroed) |
| beit_layer_out | list of [B, T, E] | each encoder layer's output (before the final LayerNorm) |
| beit_cls, beit_image_tokens, beit_text_tokens | [B, E], [B, g*g, E], [B, L, E] | encoder output, split |
| F_v, F_t | [B, C, g, g], [B, L, C] | the two projections |
| fpn_levels | list of [B, C, H_l, W_l] | SimFPN |
| S_global | [B, C, 4g, 4g] | UNet decoder |
| text_sel_index, text_sel_valid, text_sel_feat | [B, N], [B, N], [B, N, C] | text filter |
| t2i_key_pos_embed | [1, g*g, C] | sine position embedding of the T2I keys |
| t2i_norm0_out, t2i_norm1_out, t2i_norm2_out | [B, N, C] | the T2I layer's three LayerNorms |
| t2i_queries, t2i_cross_attn_map | [B, N, C], [B, N, g*g] | T2I decoder outputs |
| global_attn_map, point_index, points_xy | [B, g, g], [B, N], [B, N, 2] | point selection |
| aqsm_queries | [B, N, C] | the query MLP |
| query_pos, reference_points | [B, N, C], [B, N, 2] | decoder inputs |
| dec_norm0_out, dec_norm1_out | list of [B, N, C] | per decoder layer |
| msda_sampling_locations, msda_attention_weights, msda_core_out | lists of [B,N,M,L,P,2], [B,N,M,L,P], [B,N,C] | per decoder layer |
| dec_layer_out | [layers, B, N, C] | decoder states |
| box_raw_per_layer | [layers, B, N, 4] | box MLP before decoding |
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn


@contextlib.contextmanager
def record_intermediates(model: nn.Module) -> Iterator[dict[str, Any]]:
    """Hooks on ``model`` (an InstanceVG) for the block: the yielded dict holds the intermediates of the
    latest forward (``forward`` or ``forward_all``), under the names of the module docstring."""
    stages: dict[str, Any] = {}
    head = model.head
    aqsm = head.query_generation
    t2i = aqsm.T2I_decoder
    decoder_layers = head.decoder_transformer.decoder.layers
    handles = []

    def on_output(module: nn.Module, fn):
        handles.append(module.register_forward_hook(lambda m, args, out: fn(out)))

    def on_input(module: nn.Module, fn):
        handles.append(module.register_forward_pre_hook(lambda m, args: fn(args)))

    def start(args):  # the encoder runs first: a new forward begins
        stages.clear()
        stages.update(text_length=args[1].shape[1], beit_layer_out=[],
                      **{k: [] for k in ("dec_norm0_out", "dec_norm1_out", "msda_sampling_locations",
                                         "msda_attention_weights", "msda_core_out")})

    def encoder_out(tokens):
        length = stages.pop("text_length")
        stages.update(beit_cls=tokens[:, 0], beit_image_tokens=tokens[:, 1:-length],
                      beit_text_tokens=tokens[:, -length:])

    def aqsm_out(out):
        stages.update(text_sel_index=out.text_index, text_sel_valid=out.text_valid, global_attn_map=out.global_map,
                      point_index=out.point_index, points_xy=out.points)

    def t2i_in(args):
        stages.update(text_sel_feat=args[1], t2i_key_pos_embed=args[3])

    def sampling_in(args):
        stages["msda_sampling_locations"].append(args[1])
        stages["msda_attention_weights"].append(args[2])

    def decoder_out(out):
        stages.update(dec_layer_out=out[0], reference_points=out[1])

    beit3 = model.vis_enc.beit3
    on_input(beit3, start)
    on_output(beit3, encoder_out)
    on_input(beit3.encoder.layers[0], lambda args: stages.__setitem__("beit_embed_out", args[0]))
    for layer in beit3.encoder.layers:
        on_output(layer, lambda out: stages["beit_layer_out"].append(out))
    on_output(head.img_embedding, lambda out: stages.__setitem__("F_v", out))
    on_output(head.lan_embedding, lambda out: stages.__setitem__("F_t", out))
    on_output(head.neck, lambda out: stages.__setitem__("fpn_levels", out))
    on_output(head.unet_decoder, lambda out: stages.__setitem__("S_global", out))
    on_output(aqsm, aqsm_out)
    on_input(t2i, t2i_in)
    on_output(t2i, lambda out: stages.update(t2i_queries=out[0], t2i_cross_attn_map=out[1]))
    for i, norm in enumerate(t2i.layers[0].norms):
        on_output(norm, lambda out, i=i: stages.__setitem__(f"t2i_norm{i}_out", out))
    on_output(aqsm.mlp, lambda out: stages.__setitem__("aqsm_queries", out))
    on_output(head.query_pos_embedding, lambda out: stages.__setitem__("query_pos", out))
    on_output(head.decoder_transformer, decoder_out)
    for layer in decoder_layers:
        on_output(layer.norms[0], lambda out: stages["dec_norm0_out"].append(out))
        on_output(layer.norms[1], lambda out: stages["dec_norm1_out"].append(out))
        on_input(layer.attentions[1].sampling, sampling_in)
        on_output(layer.attentions[1].sampling, lambda out: stages["msda_core_out"].append(out))
    boxes_raw: list = []
    on_input(head, lambda args: boxes_raw.clear())
    on_output(head.bbox_embed[0], boxes_raw.append)  # one module, called once per decoder layer
    on_output(head, lambda out: stages.__setitem__("box_raw_per_layer", torch.stack(boxes_raw)))
    try:
        yield stages
    finally:
        for handle in handles:
            handle.remove()
