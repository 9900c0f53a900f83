"""Golden equivalence with the official model (../shared/facts/golden): gres-base with the deterministic
weights of its README, loaded through the checkpoint loader, reproduces every stored stage.

Tolerances (golden README §3): float32 arrays max|ours - golden| <= 1e-4 * max|golden|; indices exact;
probabilities/scores 1e-6 absolute; boxes in pixels 1e-3 px; binary masks identical except at pixels
whose golden logit lies within 1e-4 of the threshold's logit.
"""
import numpy as np
import pytest
import torch

from instancevg.checkpoint import load_checkpoint
from instancevg.config import PostprocessConfig, get_config
from instancevg.model import build_model
from instancevg.postprocess import postprocess
from instancevg.structures import RawOutputs

from ..conftest import facts_dir, golden_dir, golden_state_dict

GOLDEN = golden_dir()
FACTS = facts_dir()
pytestmark = pytest.mark.skipif(GOLDEN is None or FACTS is None,
                                reason="golden folder not found (set INSTANCEVG_GOLDEN_DIR or place ../shared)")
REL = 1e-4


@pytest.fixture(scope="module")
def run():
    state = golden_state_dict(GOLDEN, FACTS)
    model = build_model(get_config("gres-base")).eval()
    # official-style file content: "state_dict" with DDP's prefix
    load_checkpoint(model, {"state_dict": {"module." + k: v for k, v in state.items()}, "epoch": 9})
    g = np.load(GOLDEN / "golden_gres_base.npz")
    capture = {}
    with torch.no_grad():
        out = model.forward_all(torch.from_numpy(g["input_image"]), torch.from_numpy(g["input_text_ids"]),
                                torch.from_numpy(g["input_text_pad_mask"]), capture=capture)
    return g, out, capture, model


def close(g, name, ours, rel=REL):
    ref = g[name]
    ours = ours.detach().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours)
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} != golden {ref.shape}"
    err = np.abs(ours.astype(np.float64) - ref).max()
    assert err <= rel * np.abs(ref).max(), f"{name}: max error {err:.3e} > {rel} x {np.abs(ref).max():.3e}"


def test_shared_heads_take_copy_2(run):
    _, _, _, model = run
    state = model.state_dict()
    assert torch.equal(state["head.class_embed.0.weight"], state["head.class_embed.2.weight"])


def test_encoder_stages(run):
    g, _, cap, _ = run
    idx = g["beit_layer_token_index"]
    close(g, "beit_embed_out_tokens", cap["beit_embed_out"][:, idx])
    close(g, "beit_layer_out_tokens", torch.stack([x[:, idx] for x in cap["beit_layer_out"]]))
    for name in ("beit_cls", "beit_image_tokens", "beit_text_tokens", "F_v", "F_t", "S_global"):
        close(g, name, cap[name])
    for i, level in enumerate(cap["fpn_levels"]):
        close(g, f"fpn_c{i + 1}", level)


def test_masks_and_existence(run):
    g, out, _, _ = run
    close(g, "nt_logits", out["exist_logits"])
    close(g, "global_mask_logits_80", out["global_mask_logits"])
    close(g, "instance_mask_logits_80", out["instance_mask_logits"])
    up = torch.nn.functional.interpolate(out["instance_mask_logits"], size=(320, 320), mode="bilinear",
                                         align_corners=True)
    close(g, "instance_mask_logits_320", up)


def test_aqsm_indices_exact_and_maps(run):
    g, _, cap, _ = run
    for name in ("text_sel_index", "text_sel_valid", "point_index"):
        assert np.array_equal(cap[name].numpy(), g[name]), f"{name} differs"
    for name in ("text_sel_feat", "t2i_norm0_out", "t2i_norm1_out", "t2i_norm2_out", "t2i_queries",
                 "aqsm_queries", "points_xy"):
        close(g, name, cap[name])
    for name in ("t2i_cross_attn_map", "global_attn_map"):
        assert np.abs(cap[name].numpy() - g[name]).max() <= 1e-6
    close(g, "t2i_key_pos_embed", cap["t2i_key_pos_embed"][0].T.reshape(-1, 20, 20))


def test_decoder_and_heads(run):
    g, out, cap, _ = run
    for name in ("query_pos", "reference_points"):
        close(g, name, cap[name])
    for name in ("dec_norm0_out", "dec_norm1_out", "msda_sampling_locations", "msda_attention_weights",
                 "msda_core_out"):
        close(g, name, torch.stack(cap[name]))
    close(g, "dec_layer_out", cap["dec_layer_out"])
    close(g, "box_raw_per_layer", cap["box_raw_per_layer"])
    close(g, "class_logits_per_layer", out["class_logits_per_layer"])
    close(g, "boxes_cxcywh_per_layer", out["boxes_per_layer"])
    close(g, "class_logits", out["class_logits"])
    close(g, "boxes_cxcywh", out["boxes"])


def test_injected_indices_reproduce_outputs(run):
    g, out, _, model = run
    with torch.no_grad():
        forced = model.forward_all(torch.from_numpy(g["input_image"]), torch.from_numpy(g["input_text_ids"]),
                                   torch.from_numpy(g["input_text_pad_mask"]),
                                   text_index=torch.from_numpy(g["text_sel_index"]),
                                   point_index=torch.from_numpy(g["point_index"]))
    assert torch.equal(forced["boxes"], out["boxes"]) and torch.equal(forced["class_logits"], out["class_logits"])


@pytest.mark.parametrize("thr_q,tag", [(0.7, "070"), (0.43, "043"), (0.25, "025")])
@pytest.mark.parametrize("mode", ["merge", "instance"])
def test_postprocessing(run, thr_q, tag, mode):
    g, out, _, _ = run
    raw = RawOutputs(**{k: out[k] for k in ("class_logits", "boxes", "points", "instance_mask_logits",
                                            "global_mask_logits", "exist_logits")})
    preds = postprocess(raw, PostprocessConfig(thr_q=thr_q, out_mask=mode), 320)
    inst_logits = g["instance_mask_logits_320"]
    glob_logits = g["global_mask_logits_320"][:, 0]
    for b, p in enumerate(preds):
        inv = np.argsort(p.query_index)  # back to the network's query order
        assert np.abs(p.scores[inv] - g["pp_scores"][b]).max() <= 1e-6
        assert np.abs(p.boxes[inv] - g["pp_boxes_xyxy"][b]).max() <= 1e-3
        assert np.array_equal(p.selected[inv], g[f"pp_q{tag}_selected"][b])
        assert np.all(np.diff(p.scores) <= 0), "queries must be sorted by score"
        diff = p.instance_masks[inv] != g["pp_instance_mask_bin"][b].astype(bool)
        assert np.all(np.abs(inst_logits[b][diff]) < 1e-4), "instance mask differs away from the threshold"
        diff = p.mask != g[f"pp_q{tag}_{mode}_mask"][b].astype(bool)
        near = (np.abs(glob_logits[b]) < 1e-4) | (np.abs(inst_logits[b]) < 1e-4).any(0)
        assert np.all(near[diff]), f"{int(diff.sum())} output-mask pixels differ away from the threshold"
