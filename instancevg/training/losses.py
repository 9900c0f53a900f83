"""InstanceVG training losses as the official ``UniGRefDeformableHead.forward_train`` computes them
(equal to it on the official golden data: tests/data/golden/README.md). Every term is returned by name:

DETR set loss (``SetCriterion`` + ``DETRLoss``), matched per decoder layer:
    loss_class[_l]  cross-entropy over all queries, target 0 for matched queries and 1 (no-object)
                    otherwise, class weights [1, no_object_weight], weighted mean;
    loss_bbox[_l]   sum of L1 (cxcywh) over matched pairs / num_boxes;
    loss_giou[_l]   sum of (1 - GIoU) over matched pairs / num_boxes.
    No suffix = last layer; ``_l`` = auxiliary layer l (0, 1 for three layers).
    loss_det = det_scale * (w_class*loss_class + w_bbox*loss_bbox + w_giou*loss_giou
                            + sum over aux layers of (loss_class_l + loss_bbox_l + loss_giou_l)):
    the official ``DETRLoss`` weights only the exact keys of its weight dict, so the auxiliary terms keep
    weight 1 (a quirk kept on purpose: official checkpoints were trained with it).
    num_boxes = GT boxes of the batch, summed over the processes, divided by the world size, >= 1.

Masks (compared at the input resolution after bilinear align_corners=True upsampling):
    part_pos_dice / part_pos_bce   matched queries (last-layer matching) vs their GT instance masks, all
                                   positives of the batch together;
    part_neg_dice / part_neg_bce   unmatched queries vs all-zero masks;
    loss_part_mask = (dice + bce)_pos + neg_mask * (dice + bce)_neg;
    global_dice / global_bce       global mask vs the union mask; loss_global_mask = their sum;
    attn_dice / attn_bce           the AQSM global attention map [B, 1, g, g] vs the union mask resized
                                   nearest to g x g; the map holds softmax probabilities and is used as
                                   logits (official); loss_attn_map = attn_map * (dice + bce);
    loss_mask = loss_part_mask + loss_global_mask + loss_attn_map.
Existence:
    exist_ce = cross_entropy(exist_logits, is_empty, weight=exist_class_weights); loss_label_nt =
    exist * exist_ce.
Total: loss = loss_det + loss_mask + loss_label_nt.

dice = mean over masks of 1 - (2*sum(sigmoid(x)*y) + 1) / (sum(sigmoid(x)) + sum(y) + 1);
bce = binary cross-entropy with logits, mean over every element (``mask_dice``/``mask_bce`` weight them).

One deviation: when a batch holds no matched query (every sample empty) or no unmatched one, the
official code averages over zero masks and returns NaN; here that term is 0 (still attached to the
graph), so small batches of no-target samples train.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F

from ..config import LossConfig
from ..model.head import upsample_mask_logits
from .. import distributed
from ..boxes import box_cxcywh_to_xyxy, generalized_box_iou
from .matcher import HungarianMatcher, Match
from .targets import TrainTargets


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the M masks of 1 - (2*sum(p*y) + 1) / (sum(p) + sum(y) + 1), p = sigmoid(logits).

    logits, targets: [M, ...]; M = 0 gives 0 (attached to ``logits``' graph).
    """
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    probs = logits.sigmoid().flatten(1)
    targets = targets.flatten(1)
    numerator = 2 * (probs * targets).sum(1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).mean()


def mask_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, mean over every element; empty input gives 0."""
    if logits.numel() == 0:
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="mean")


def global_num_boxes(local_count: int, device: torch.device) -> float:
    """Average number of GT boxes per process (all-reduced under DDP), clamped to >= 1 (official)."""
    count = torch.tensor([float(local_count)], device=device)
    return float(torch.clamp(distributed.all_reduce_mean(count), min=1).item())


@dataclass
class LossOutput:
    """total: the scalar to back-propagate; terms: every named term (scalars, graph attached);
    matches: per decoder layer (index -1 = last), B pairs (query indices, GT indices);
    num_boxes: the normaliser used for the box terms."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    matches: list[list[Match]] = field(default_factory=list)
    num_boxes: float = 1.0

    def scalars(self) -> dict[str, float]:
        """Every term (and the total as ``loss``) as Python floats, for logs."""
        return {name: float(value.detach()) for name, value in self.terms.items()}


class InstanceVGCriterion:
    """The official InstanceVG training loss (see the module docstring).

    Args: cfg: the loss weights (``ModelConfig.loss``).
    Call: criterion(outputs, targets, num_boxes=None) with ``outputs`` = ``InstanceVG.forward_all``'s dict
    (class_logits_per_layer [L,B,N,2], boxes_per_layer [L,B,N,4], points [B,N,2],
    instance_mask_logits [B,N,h,w], global_mask_logits [B,1,h,w], global_attn_map [B,g,g],
    exist_logits [B,2]) and ``targets`` at input size S. ``num_boxes`` overrides the all-reduced count.
    All losses are computed in float32 (safe under autocast).
    """

    def __init__(self, cfg: LossConfig):
        self.cfg = cfg
        self.matcher = HungarianMatcher(cfg.cost_class, cfg.cost_bbox, cfg.cost_giou, cfg.cost_point)

    # ------------------------------------------------------------------ DETR set loss, one layer
    def layer_terms(self, class_logits: torch.Tensor, boxes: torch.Tensor, matches: list[Match],
                    gt_boxes: list[torch.Tensor], num_boxes: float) -> dict[str, torch.Tensor]:
        """loss_class, loss_bbox, loss_giou of one decoder layer.

        class_logits [B,N,2], boxes [B,N,4] cxcywh; matches: B (query idx, GT idx); gt_boxes: B [K,4].
        """
        batch_index = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(matches)]).to(boxes.device)
        query_index = torch.cat([q for q, _ in matches]).to(boxes.device)
        target_classes = torch.ones(class_logits.shape[:2], dtype=torch.int64, device=class_logits.device)
        target_classes[batch_index, query_index] = 0
        class_weight = torch.tensor([1.0, self.cfg.no_object_weight], device=class_logits.device)
        loss_class = F.cross_entropy(class_logits.transpose(1, 2), target_classes, class_weight)

        src = boxes[batch_index, query_index]
        tgt = torch.cat([gt[g.to(gt.device)] for gt, (_, g) in zip(gt_boxes, matches)]).to(src)
        loss_bbox = F.l1_loss(src, tgt, reduction="none").sum() / num_boxes
        if src.shape[0]:
            giou = torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt)))
            loss_giou = (1 - giou).sum() / num_boxes
        else:
            loss_giou = boxes.sum() * 0.0
        return {"loss_class": loss_class, "loss_bbox": loss_bbox, "loss_giou": loss_giou}

    # ------------------------------------------------------------------ masks
    def seg_terms(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(dice, bce) of masks [M, ...] vs targets of the same shape."""
        return dice_loss(logits, targets), mask_bce_loss(logits, targets)

    def seg_loss(self, dice: torch.Tensor, bce: torch.Tensor) -> torch.Tensor:
        return self.cfg.mask_dice * dice + self.cfg.mask_bce * bce

    def part_mask_terms(self, mask_logits: torch.Tensor, matches: list[Match],
                        instance_masks: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Instance-mask terms. mask_logits [B,N,S,S]; matches of the last layer; instance_masks B [K,S,S]."""
        pos_pred, pos_gt, neg_pred = [], [], []
        for pred, (query_index, gt_index), gt in zip(mask_logits, matches, instance_masks):
            unmatched = torch.ones(pred.shape[0], dtype=torch.bool, device=pred.device)
            unmatched[query_index.to(pred.device)] = False
            pos_pred.append(pred[query_index.to(pred.device)])
            pos_gt.append(gt[gt_index.to(gt.device)].to(pred))
            neg_pred.append(pred[unmatched])
        pos_pred, pos_gt, neg_pred = torch.cat(pos_pred), torch.cat(pos_gt), torch.cat(neg_pred)
        terms = {}
        terms["part_pos_dice"], terms["part_pos_bce"] = self.seg_terms(pos_pred, pos_gt)
        terms["part_neg_dice"], terms["part_neg_bce"] = self.seg_terms(neg_pred, torch.zeros_like(neg_pred))
        terms["loss_part_mask"] = (self.seg_loss(terms["part_pos_dice"], terms["part_pos_bce"])
                                   + self.cfg.neg_mask * self.seg_loss(terms["part_neg_dice"], terms["part_neg_bce"]))
        return terms

    # ------------------------------------------------------------------ all terms
    def __call__(self, outputs: dict, targets: TrainTargets, num_boxes: Optional[float] = None) -> LossOutput:
        cfg = self.cfg
        class_per_layer = outputs["class_logits_per_layer"].float()
        boxes_per_layer = outputs["boxes_per_layer"].float()
        points = outputs.get("points")
        points = points.float() if points is not None else None
        device = class_per_layer.device
        gt_boxes = [b.to(device) for b in targets.boxes]
        if len(gt_boxes) != class_per_layer.shape[1]:
            raise ValueError(f"criterion: {len(gt_boxes)} targets for a batch of {class_per_layer.shape[1]}")
        if num_boxes is None:
            num_boxes = global_num_boxes(targets.num_boxes, device)

        terms: dict[str, torch.Tensor] = {}
        num_layers = class_per_layer.shape[0]
        matches_per_layer = []
        det = class_per_layer.new_zeros(())
        # official order: the last layer first, then the auxiliary layers 0 .. L-2, each re-matched
        for layer in [num_layers - 1] + list(range(num_layers - 1)):
            matches = self.matcher(class_per_layer[layer], boxes_per_layer[layer], points, gt_boxes)
            layer_terms = self.layer_terms(class_per_layer[layer], boxes_per_layer[layer], matches, gt_boxes,
                                           num_boxes)
            if layer == num_layers - 1:
                det = det + (cfg.loss_class * layer_terms["loss_class"] + cfg.loss_bbox * layer_terms["loss_bbox"]
                             + cfg.loss_giou * layer_terms["loss_giou"])
                terms.update(layer_terms)
            else:  # auxiliary layers keep weight 1 (official DETRLoss quirk)
                det = det + layer_terms["loss_class"] + layer_terms["loss_bbox"] + layer_terms["loss_giou"]
                terms.update({f"{k}_{layer}": v for k, v in layer_terms.items()})
            matches_per_layer.append((layer, matches))
        matches_per_layer = [m for _, m in sorted(matches_per_layer, key=lambda item: item[0])]
        terms["loss_det"] = cfg.det_scale * det

        size = targets.union_masks.shape[-1]
        union = targets.union_masks.to(device).float()
        instance_logits = upsample_mask_logits(outputs["instance_mask_logits"].float(), size)
        terms.update(self.part_mask_terms(instance_logits, matches_per_layer[-1],
                                          [m.to(device) for m in targets.instance_masks]))
        global_logits = upsample_mask_logits(outputs["global_mask_logits"].float(), size)
        terms["global_dice"], terms["global_bce"] = self.seg_terms(global_logits, union[:, None])
        terms["loss_global_mask"] = self.seg_loss(terms["global_dice"], terms["global_bce"])

        attn = outputs["global_attn_map"].float()[:, None]  # probabilities, used as logits (official)
        attn_target = attention_map_target(union, attn.shape[-1])
        terms["attn_dice"], terms["attn_bce"] = self.seg_terms(attn, attn_target[:, None])
        terms["loss_attn_map"] = cfg.attn_map * self.seg_loss(terms["attn_dice"], terms["attn_bce"])
        terms["loss_mask"] = terms["loss_part_mask"] + terms["loss_global_mask"] + terms["loss_attn_map"]

        exist_weight = torch.tensor(cfg.exist_class_weights, dtype=torch.float32, device=device)
        terms["exist_ce"] = F.cross_entropy(outputs["exist_logits"].float(), targets.is_empty.to(device),
                                            weight=exist_weight)
        terms["loss_label_nt"] = cfg.exist * terms["exist_ce"]
        total = terms["loss_det"] + terms["loss_mask"] + terms["loss_label_nt"]
        terms["loss"] = total
        return LossOutput(total=total, terms=terms, matches=matches_per_layer, num_boxes=num_boxes)


def attention_map_target(union_masks: torch.Tensor, grid: int) -> torch.Tensor:
    """Union masks [B,S,S] resized with nearest interpolation to the attention grid -> [B,grid,grid]."""
    return F.interpolate(union_masks[:, None].float(), size=(grid, grid), mode="nearest")[:, 0]
