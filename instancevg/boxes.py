"""Box geometry, the one implementation: the training matcher and losses, the post-processing (boxes, NMS),
every evaluator and the parity agreement use these functions.

Boxes are ``[..., 4]`` torch tensors; ``xyxy`` = corners, ``cxcywh`` = (centre x, centre y, width, height);
the area of a float box is ``(x2 - x1) * (y2 - y1)`` (continuous coordinates, no +1). The operation order is
that of the official code (DETR's ``box_ops``, which mmdet's ``bbox_overlaps`` matches for the REC
evaluation), so that float32 values compared with a threshold agree with the official ones bit for bit.
Divisions the official code leaves unguarded are guarded, without NaN in values or gradients: IoU with a
union of 0 (two zero-area boxes) is 0; GIoU with an enclosing area of 0 keeps only the IoU term (0).
"""
from __future__ import annotations

import torch


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator where denominator > 0, else 0 (finite gradients everywhere)."""
    positive = denominator > 0
    return torch.where(positive, numerator / torch.where(positive, denominator, torch.ones_like(denominator)),
                       torch.zeros_like(numerator))


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise IoU and union of xyxy boxes [N, 4] x [M, 4] -> ([N, M], [N, M]); IoU 0 where the union is 0."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return _safe_divide(inter, union), union


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU of xyxy boxes [N, 4] x [M, 4] -> [N, M]: IoU - (C - union) / C, C the area of the smallest
    enclosing box (Rezatofighi et al. 2019); the penalty is 0 where C is 0."""
    iou, union = box_iou(boxes1, boxes2)
    top_left = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    enclosing = wh[..., 0] * wh[..., 1]
    return iou - _safe_divide(enclosing - union, enclosing)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS: indices [K] of the kept boxes, by descending score; a box is suppressed when its IoU
    with a kept one exceeds ``iou_threshold``. boxes [N, 4] xyxy, scores [N]."""
    order = torch.argsort(scores, descending=True, stable=True)
    overlaps, _ = box_iou(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)
