"""Each loss term equals a direct computation on small tensors; a perfect prediction gives the minimum."""
import math

import pytest
import torch
import torch.nn.functional as F

from instancevg.config import LossConfig
from instancevg.training.losses import InstanceVGCriterion, dice_loss, mask_bce_loss
from instancevg.training.targets import TrainTargets, make_targets

S, G = 8, 4  # mask side (input size) and attention grid
CFG = LossConfig()


def direct_dice(logits, targets):
    """The formula of the docstring, one mask at a time in float64."""
    values = []
    for x, y in zip(logits.double(), targets.double()):
        p = torch.sigmoid(x)
        values.append(1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1))
    return torch.stack(values).mean()


def direct_bce(logits, targets):
    x, y = logits.double().flatten(), targets.double().flatten()
    return -(y * torch.log(torch.sigmoid(x)) + (1 - y) * torch.log(1 - torch.sigmoid(x))).mean()


def direct_giou(a, b):
    """GIoU of two cxcywh boxes, scalar arithmetic."""
    ax1, ay1, ax2, ay2 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx1, by1, bx2, by2 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    hull = (max(ax2, bx2) - min(ax1, bx1)) * (max(ay2, by2) - min(ay1, by1))
    return inter / union - (hull - union) / hull


def square_mask(x0, y0, x1, y1):
    m = torch.zeros(S, S)
    m[y0:y1, x0:x1] = 1
    return m


@pytest.fixture()
def batch():
    """B=2, N=3 queries, 2 decoder layers; sample 0 has two targets, sample 1 none."""
    torch.manual_seed(0)
    masks0 = torch.stack([square_mask(0, 0, 4, 4), square_mask(4, 4, 8, 8)])
    union0 = masks0.amax(0)
    targets = make_targets(boxes_xyxy=[torch.tensor([[0.0, 0.0, 4.0, 4.0], [4.0, 4.0, 8.0, 8.0]]), torch.zeros(0, 4)],
                           instance_masks=[masks0, torch.zeros(0, S, S)], union_masks=[union0, torch.zeros(S, S)],
                           empty=[False, True], size=S)
    outputs = {
        "class_logits_per_layer": torch.randn(2, 2, 3, 2),
        "boxes_per_layer": torch.rand(2, 2, 3, 4) * 0.4 + 0.2,
        "points": torch.rand(2, 3, 2),
        "instance_mask_logits": torch.randn(2, 3, S, S),
        "global_mask_logits": torch.randn(2, 1, S, S),
        "global_attn_map": torch.rand(2, G, G) / (G * G),
        "exist_logits": torch.randn(2, 2),
    }
    return outputs, targets


def test_dice_and_bce_match_the_formulas():
    torch.manual_seed(1)
    x, y = torch.randn(3, 5, 5), (torch.rand(3, 5, 5) > 0.5).float()
    assert math.isclose(dice_loss(x, y).item(), direct_dice(x, y).item(), rel_tol=1e-6)
    assert math.isclose(mask_bce_loss(x, y).item(), direct_bce(x, y).item(), rel_tol=1e-6)
    empty = torch.zeros(0, 5, 5, requires_grad=True)
    assert dice_loss(empty, empty.detach()).item() == 0 and mask_bce_loss(empty, empty.detach()).item() == 0


def test_targets_are_normalised_cxcywh(batch):
    _, targets = batch
    assert torch.allclose(targets.boxes[0], torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]]))
    assert targets.boxes[1].shape == (0, 4) and targets.is_empty.tolist() == [0, 1]
    assert targets.num_boxes == 2


def test_every_term_equals_a_direct_computation(batch):
    outputs, targets = batch
    criterion = InstanceVGCriterion(CFG)
    losses = criterion(outputs, targets)
    terms = losses.terms
    assert losses.num_boxes == 2.0
    det = 0.0
    for layer in range(2):
        matches = losses.matches[layer]
        assert matches[1][0].numel() == 0
        suffix = "" if layer == 1 else f"_{layer}"
        cls = outputs["class_logits_per_layer"][layer].double()
        boxes = outputs["boxes_per_layer"][layer].double()
        matched = {(0, q) for q in matches[0][0].tolist()}
        # weighted CE: sum_i w_i * (-log p_i[t_i]) / sum_i w_i
        num, den = 0.0, 0.0
        for b in range(2):
            for q in range(3):
                t = 0 if (b, q) in matched else 1
                w = 1.0 if t == 0 else CFG.no_object_weight
                num += w * -torch.log_softmax(cls[b, q], -1)[t].item()
                den += w
        l1 = giou = 0.0
        for q, g in zip(*(m.tolist() for m in matches[0])):
            l1 += (boxes[0, q] - targets.boxes[0][g].double()).abs().sum().item()
            giou += 1 - direct_giou(boxes[0, q].tolist(), targets.boxes[0][g].tolist())
        expected = {"loss_class": num / den, "loss_bbox": l1 / 2, "loss_giou": giou / 2}
        for name, value in expected.items():
            assert math.isclose(terms[name + suffix].item(), value, rel_tol=1e-5), name + suffix
        weights = (CFG.loss_class, CFG.loss_bbox, CFG.loss_giou) if layer == 1 else (1.0, 1.0, 1.0)
        det += sum(w * expected[n] for w, n in zip(weights, ("loss_class", "loss_bbox", "loss_giou")))
    assert math.isclose(terms["loss_det"].item(), CFG.det_scale * det, rel_tol=1e-5)

    # instance masks: last-layer matching, positives vs their GT, the rest vs empty masks
    queries, gts = losses.matches[-1][0]
    inst = outputs["instance_mask_logits"]
    pos_pred = inst[0, queries]
    pos_gt = targets.instance_masks[0][gts]
    unmatched0 = [q for q in range(3) if q not in queries.tolist()]
    neg_pred = torch.cat([inst[0, unmatched0], inst[1]])
    expected = {"part_pos_dice": direct_dice(pos_pred, pos_gt), "part_pos_bce": direct_bce(pos_pred, pos_gt),
                "part_neg_dice": direct_dice(neg_pred, torch.zeros_like(neg_pred)),
                "part_neg_bce": direct_bce(neg_pred, torch.zeros_like(neg_pred))}
    union = targets.union_masks
    expected["global_dice"] = direct_dice(outputs["global_mask_logits"][:, 0], union)
    expected["global_bce"] = direct_bce(outputs["global_mask_logits"][:, 0], union)
    attn_target = union[:, ::2, ::2]  # nearest 8 -> 4 picks every other pixel from the first
    expected["attn_dice"] = direct_dice(outputs["global_attn_map"], attn_target)
    expected["attn_bce"] = direct_bce(outputs["global_attn_map"], attn_target)
    logp = torch.log_softmax(outputs["exist_logits"].double(), -1)
    w = CFG.exist_class_weights
    expected["exist_ce"] = (w[0] * -logp[0, 0] + w[1] * -logp[1, 1]) / (w[0] + w[1])
    for name, value in expected.items():
        assert math.isclose(terms[name].item(), float(value), rel_tol=1e-5), name
    part = expected["part_pos_dice"] + expected["part_pos_bce"] + CFG.neg_mask * (
        expected["part_neg_dice"] + expected["part_neg_bce"])
    mask = part + expected["global_dice"] + expected["global_bce"] + CFG.attn_map * (
        expected["attn_dice"] + expected["attn_bce"])
    assert math.isclose(terms["loss_part_mask"].item(), float(part), rel_tol=1e-5)
    assert math.isclose(terms["loss_mask"].item(), float(mask), rel_tol=1e-5)
    assert math.isclose(terms["loss_label_nt"].item(), CFG.exist * float(expected["exist_ce"]), rel_tol=1e-5)
    total = terms["loss_det"] + terms["loss_mask"] + terms["loss_label_nt"]
    assert math.isclose(losses.total.item(), total.item(), rel_tol=1e-6)
    assert terms["loss"] is losses.total


def test_neg_mask_weight_zero_drops_the_negative_term(batch):
    outputs, targets = batch
    terms = InstanceVGCriterion(LossConfig(neg_mask=0.0))(outputs, targets).terms
    assert math.isclose(terms["loss_part_mask"].item(),
                        (terms["part_pos_dice"] + terms["part_pos_bce"]).item(), rel_tol=1e-6)


def test_num_boxes_is_clamped_and_overridable(batch):
    outputs, targets = batch
    empty = TrainTargets([torch.zeros(0, 4)] * 2, [torch.zeros(0, S, S)] * 2, torch.zeros(2, S, S),
                         torch.ones(2, dtype=torch.int64))
    losses = InstanceVGCriterion(CFG)(outputs, empty)
    assert losses.num_boxes == 1.0
    # all-empty batch: no positive mask; the official code would average over nothing (NaN), here 0
    assert losses.terms["part_pos_dice"].item() == 0 and torch.isfinite(losses.total)
    assert losses.terms["loss_bbox"].item() == 0
    halved = InstanceVGCriterion(CFG)(outputs, targets, num_boxes=4.0)
    full = InstanceVGCriterion(CFG)(outputs, targets)
    assert math.isclose(halved.terms["loss_bbox"].item(), full.terms["loss_bbox"].item() / 2, rel_tol=1e-6)


def perfect_outputs(targets, layers=2, n=3):
    """Predictions equal to the targets: matched queries carry the GT boxes, masks and class."""
    B = len(targets)
    cls = torch.zeros(layers, B, n, 2)
    cls[..., 1] = 30.0  # no-object everywhere ...
    boxes = torch.full((layers, B, n, 4), 0.5)
    boxes[..., 2:] = 0.1
    points = torch.full((B, n, 2), 0.5)
    inst = torch.full((B, n, S, S), -30.0)
    for b in range(B):
        for k, box in enumerate(targets.boxes[b]):
            cls[:, b, k] = torch.tensor([30.0, 0.0])  # ... except the queries holding a target
            boxes[:, b, k] = box
            points[b, k] = box[:2]
            inst[b, k] = targets.instance_masks[b][k] * 60 - 30
    union = targets.union_masks
    attn = F.interpolate(union[:, None], size=(G, G), mode="nearest")[:, 0]
    exist = torch.stack([torch.tensor([30.0, 0.0]) if not e else torch.tensor([0.0, 30.0]) for e in targets.is_empty])
    return {"class_logits_per_layer": cls, "boxes_per_layer": boxes, "points": points,
            "instance_mask_logits": inst, "global_mask_logits": (union * 60 - 30)[:, None],
            "global_attn_map": attn, "exist_logits": exist}


def test_perfect_prediction_gives_the_minimum(batch):
    _, targets = batch
    criterion = InstanceVGCriterion(CFG)
    perfect = perfect_outputs(targets)
    best = criterion(perfect, targets)
    for name in ("loss_bbox", "loss_giou", "loss_bbox_0", "loss_giou_0"):
        assert abs(best.terms[name].item()) < 1e-6, name
    for name in ("loss_class", "loss_class_0", "part_pos_dice", "part_pos_bce", "part_neg_dice", "part_neg_bce",
                 "global_dice", "global_bce", "exist_ce"):
        assert best.terms[name].item() < 1e-6, name
    # the attention map holds probabilities used as logits: its floor is > 0, reached by the target map
    generator = torch.Generator().manual_seed(0)
    for trial in range(20):
        noisy = {k: v + 0.3 * torch.randn(v.shape, generator=generator) if k != "points" else v
                 for k, v in perfect.items()}
        noisy["boxes_per_layer"] = noisy["boxes_per_layer"].clamp(0.01, 0.99).abs()
        noisy["global_attn_map"] = noisy["global_attn_map"].clamp(0, 1)
        worse = criterion(noisy, targets)
        assert worse.total.item() > best.total.item()
        for name in ("loss_det", "loss_part_mask", "loss_global_mask", "loss_attn_map", "loss_label_nt"):
            assert worse.terms[name].item() >= best.terms[name].item() - 1e-6, (trial, name)


def test_losses_are_float32_under_half_inputs(batch):
    outputs, targets = batch
    half = {k: v.to(torch.bfloat16) for k, v in outputs.items()}
    losses = InstanceVGCriterion(CFG)(half, targets)
    assert losses.total.dtype == torch.float32 and torch.isfinite(losses.total)
