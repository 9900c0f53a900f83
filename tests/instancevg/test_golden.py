"""Golden equivalence with the official model (tests/data/golden): gres-base with the deterministic weights
of the golden recipe, loaded through the checkpoint loader, reproduces every stored stage.

Tolerances (tests/data/golden/README.md): float32 arrays max|ours - golden| <= 1e-4 * max|golden|; indices
exact; probabilities/scores 1e-6 absolute; boxes in pixels 1e-3 px; binary masks identical except at pixels
whose golden logit lies within 1e-4 of the threshold's logit.
"""
import numpy as np
import pytest
import torch

from instancevg import ops
from instancevg.checkpoint import load_checkpoint
from instancevg.config import PostprocessConfig, get_config
from instancevg.model import build_model
from instancevg.model.tracing import record_intermediates
from instancevg.postprocess import postprocess
from instancevg.structures import RawOutputs

from ..golden import Golden, golden_state_dict


@pytest.fixture(scope="module")
def run():
    golden = Golden()
    model = build_model(get_config("gres-base")).eval()
    # official-style file content: "state_dict" with DDP's prefix
    load_checkpoint(model, {"state_dict": {"module." + k: v for k, v in golden_state_dict().items()}, "epoch": 9})
    with torch.no_grad(), record_intermediates(model) as stages:
        out = model.forward_all(*golden.inputs())
    return golden, out, dict(stages), model


def test_shared_heads_take_copy_2(run):
    _, _, _, model = run
    state = model.state_dict()
    assert torch.equal(state["head.class_embed.0.weight"], state["head.class_embed.2.weight"])


def test_encoder_stages(run):
    g, _, cap, _ = run
    idx = g["beit_layer_token_index"]
    g.close("beit_embed_out_tokens", cap["beit_embed_out"][:, idx])
    g.close("beit_layer_out_tokens", torch.stack([x[:, idx] for x in cap["beit_layer_out"]]))
    for name in ("beit_cls", "beit_image_tokens", "beit_text_tokens", "F_v", "F_t", "S_global"):
        g.close(name, cap[name])
    for i, level in enumerate(cap["fpn_levels"]):
        g.close(f"fpn_c{i + 1}", level)


def test_masks_and_existence(run):
    g, out, _, _ = run
    g.close("nt_logits", out["exist_logits"])
    g.close("global_mask_logits_80", out["global_mask_logits"])
    g.close("instance_mask_logits_80", out["instance_mask_logits"])
    up = torch.nn.functional.interpolate(out["instance_mask_logits"], size=(320, 320), mode="bilinear",
                                         align_corners=True)
    g.close("instance_mask_logits_320", up)


def test_aqsm_indices_exact_and_maps(run):
    g, _, cap, _ = run
    for name in ("text_sel_index", "text_sel_valid", "point_index"):
        assert np.array_equal(cap[name].numpy(), g[name]), f"{name} differs"
    for name in ("text_sel_feat", "t2i_norm0_out", "t2i_norm1_out", "t2i_norm2_out", "t2i_queries",
                 "aqsm_queries", "points_xy"):
        g.close(name, cap[name])
    for name in ("t2i_cross_attn_map", "global_attn_map"):
        assert np.abs(cap[name].numpy() - g[name]).max() <= 1e-6
    g.close("t2i_key_pos_embed", cap["t2i_key_pos_embed"][0].T.reshape(-1, 20, 20))


def test_decoder_and_heads(run):
    g, out, cap, _ = run
    for name in ("query_pos", "reference_points"):
        g.close(name, cap[name])
    for name in ("dec_norm0_out", "dec_norm1_out", "msda_sampling_locations", "msda_attention_weights",
                 "msda_core_out"):
        g.close(name, torch.stack(cap[name]))
    g.close("dec_layer_out", cap["dec_layer_out"])
    g.close("box_raw_per_layer", cap["box_raw_per_layer"])
    g.close("class_logits_per_layer", out["class_logits_per_layer"])
    g.close("boxes_cxcywh_per_layer", out["boxes_per_layer"])
    g.close("class_logits", out["class_logits"])
    g.close("boxes_cxcywh", out["boxes"])


def test_forced_selection_reproduces_outputs(run):
    g, out, _, model = run
    with torch.no_grad(), ops.forced_selection(torch.from_numpy(g["text_sel_index"]),
                                               torch.from_numpy(g["point_index"])):
        forced = model.forward_all(*g.inputs())
    assert torch.equal(forced["boxes"], out["boxes"]) and torch.equal(forced["class_logits"], out["class_logits"])
    # and forcing other cells does change the outputs (the override takes effect)
    other = torch.from_numpy(g["point_index"])[:, [1, 0, *range(2, 10)]]
    with torch.no_grad(), ops.forced_selection(point_index=other):
        moved = model.forward_all(*g.inputs())
    assert torch.equal(moved["point_index"], other) and not torch.equal(moved["boxes"], out["boxes"])


@pytest.mark.parametrize("thr_q,tag", [(0.7, "070"), (0.43, "043"), (0.25, "025")])
@pytest.mark.parametrize("mode", ["merge", "instance"])
def test_postprocessing(run, thr_q, tag, mode):
    g, out, _, _ = run
    raw = RawOutputs(**{k: out[k] for k in ("class_logits", "boxes", "points", "instance_mask_logits",
                                            "global_mask_logits", "exist_logits")})
    preds = postprocess(raw, PostprocessConfig(thr_q=thr_q, out_mask=mode), 320)
    near_instance, near_global = g.near_threshold("instance"), g.near_threshold("global")
    for b, p in enumerate(preds):
        inv = np.argsort(p.query_index)  # back to the network's query order
        assert np.abs(p.scores[inv] - g["pp_scores"][b]).max() <= 1e-6
        assert np.abs(p.boxes[inv] - g["pp_boxes_xyxy"][b]).max() <= 1e-3
        assert np.array_equal(p.selected[inv], g[f"pp_q{tag}_selected"][b])
        assert np.all(np.diff(p.scores) <= 0), "queries must be sorted by score"
        diff = p.instance_masks[inv] != g["pp_instance_mask_bin"][b].astype(bool)
        assert np.all(near_instance[b][diff]), "instance mask differs away from the threshold"
        diff = p.mask != g[f"pp_q{tag}_{mode}_mask"][b].astype(bool)
        near = near_global[b] | near_instance[b].any(0)
        assert np.all(near[diff]), f"{int(diff.sum())} output-mask pixels differ away from the threshold"


def test_plugin_kernels_reproduce_the_golden_run(run, plugin_kernels):
    """gres-base with the plugins' own kernels (host build) for MSDeformAttn and PointSelect: the official
    selections exactly, every output within the golden tolerance."""
    g, out, _, model = run
    with torch.no_grad(), ops.use_ops("plugin"), record_intermediates(model) as stages:
        plugin = model.forward_all(*g.inputs())
    for name in ("text_sel_index", "point_index"):
        assert np.array_equal(stages[name].numpy(), g[name]), name
    g.close("msda_core_out", torch.stack(stages["msda_core_out"]))
    for ours, golden in (("class_logits", "class_logits"), ("boxes", "boxes_cxcywh"),
                         ("instance_mask_logits", "instance_mask_logits_80"), ("exist_logits", "nt_logits")):
        g.close(golden, plugin[ours])
