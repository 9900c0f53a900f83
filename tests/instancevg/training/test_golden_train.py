"""Golden equivalence of the training losses with the official ``forward_train``
(tests/data/golden/golden_gres_base_train.npz): gres-base with the golden weights, eval-mode forward
(as the golden was made), the golden's hand-made targets.

Tolerances (tests/data/golden/README.md): matching indices exact; cost matrices and every loss term
relative 1e-4 (about 1e-5 is reachable in float32, 1e-4 is safe).
"""

import numpy as np
import pytest
import torch

from instancevg.checkpoint import load_checkpoint
from instancevg.config import get_config
from instancevg.model import build_model
from instancevg.training.losses import InstanceVGCriterion, attention_map_target
from instancevg.training.targets import make_targets

from ...golden import Golden, golden_folder, golden_state_dict

REL = 1e-4
SIZE = 320

# our term name -> golden array name
RAW_DETR_TERMS = {f"loss_{kind}{suffix}": f"detr_raw_loss_{kind}{suffix}"
                  for kind in ("class", "bbox", "giou") for suffix in ("", "_0", "_1")}
MASK_TERMS = {name: name for name in ("part_pos_dice", "part_pos_bce", "part_neg_dice", "part_neg_bce",
                                      "global_dice", "global_bce", "attn_dice", "attn_bce", "loss_part_mask",
                                      "loss_label_nt", "loss_mask", "loss_det")}
MASK_TERMS["exist_ce"] = "nt_ce"


@pytest.fixture(scope="module")
def run():
    model = build_model(get_config("gres-base")).eval()  # eval mode: the golden has no dropout
    load_checkpoint(model, {"state_dict": golden_state_dict()})
    train = np.load(golden_folder() / "golden_gres_base_train.npz")
    with torch.no_grad():
        outputs = model.forward_all(*Golden().inputs())
    targets = make_targets(
        boxes_xyxy=[train["gt_boxes_xyxy_s0"], np.zeros((0, 4), np.float32)],
        instance_masks=[train["gt_instance_masks_s0"], np.zeros((0, SIZE, SIZE), np.uint8)],
        union_masks=list(train["gt_union_mask"]), empty=[bool(e) for e in train["gt_is_empty"]], size=SIZE)
    criterion = InstanceVGCriterion(model.cfg.loss)
    with torch.no_grad():
        losses = criterion(outputs, targets)
    return train, outputs, targets, criterion, losses


def assert_close(name, ours, ref, rel=REL):
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} != golden {ref.shape}"
    err = np.abs(ours - ref).max()
    assert err <= rel * max(np.abs(ref).max(), 1e-12), f"{name}: ours {ours} vs golden {ref} (error {err:.3e})"


def test_targets_match_official_preparation(run):
    train, _, targets, _, _ = run
    assert_close("gt_boxes_cxcywh_norm_s0", targets.boxes[0].numpy(), train["gt_boxes_cxcywh_norm_s0"], rel=1e-6)
    assert targets.boxes[1].shape == (0, 4)
    assert targets.is_empty.tolist() == train["gt_is_empty"].tolist()
    grid = attention_map_target(targets.union_masks, 20)
    assert np.array_equal(grid.numpy().astype(np.uint8), train["attn_map_target_20"])


@pytest.mark.parametrize("layer,prefix", [(2, "match_final"), (0, "match_aux0"), (1, "match_aux1")])
def test_matching_equals_official(run, layer, prefix):
    train, outputs, targets, criterion, losses = run
    costs = criterion.matcher.cost_matrices(outputs["class_logits_per_layer"][layer],
                                            outputs["boxes_per_layer"][layer], outputs["points"], targets.boxes)
    assert_close(f"{prefix}_cost_s0", costs[0].numpy(), train[f"{prefix}_cost_s0"])
    assert costs[1].shape == (10, 0)
    query_index, gt_index = losses.matches[layer][0]
    assert query_index.tolist() == train[f"{prefix}_pred_index_s0"].tolist()
    assert gt_index.tolist() == train[f"{prefix}_gt_index_s0"].tolist()
    assert losses.matches[layer][1][0].numel() == 0


def test_num_boxes(run):
    train, _, _, _, losses = run
    assert losses.num_boxes == float(train["num_boxes"])


@pytest.mark.parametrize("ours,golden", sorted(RAW_DETR_TERMS.items()) + sorted(MASK_TERMS.items()))
def test_loss_term_equals_official(run, ours, golden):
    train, _, _, _, losses = run
    assert_close(ours, losses.terms[ours].item(), train[golden])


def test_weighted_detr_terms_and_total(run):
    train, _, _, criterion, losses = run
    cfg = criterion.cfg
    weights = {"loss_class": cfg.loss_class, "loss_bbox": cfg.loss_bbox, "loss_giou": cfg.loss_giou}
    for name, weight in weights.items():
        assert_close(name, weight * losses.terms[name].item(), train[f"detr_weighted_{name}"])
        for aux in ("_0", "_1"):  # auxiliary layers keep weight 1
            assert_close(name + aux, losses.terms[name + aux].item(), train[f"detr_weighted_{name}{aux}"])
    total = float(train["loss_det"] + train["loss_mask"] + train["loss_label_nt"])
    assert_close("loss", losses.total.item(), total)
