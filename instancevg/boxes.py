"""Box geometry, the one implementation: the training matcher and losses (torch, differentiable), the
post-processing (boxes, NMS), every evaluator and the parity agreement (numpy: scoring needs no torch) use
these functions, which take torch tensors or numpy arrays alike and compute with the same operations.

Boxes are ``[..., 4]``; ``xyxy`` = corners, ``cxcywh`` = (centre x, centre y, width, height); the area of a
float box is ``(x2 - x1) * (y2 - y1)`` (continuous coordinates, no +1). The operation order is that of the
official code (DETR's ``box_ops``, which mmdet's ``bbox_overlaps`` matches for the REC evaluation), so that
float32 values compared with a threshold agree with the official ones bit for bit. Divisions the official
code leaves unguarded are guarded, without NaN in values or gradients: IoU with a union of 0 (two
zero-area boxes) is 0; GIoU with an enclosing area of 0 keeps only the IoU term (0).
"""
from __future__ import annotations

import numpy as np


def _xp(boxes):
    """The array module of ``boxes``: numpy for numpy arrays, else torch (imported only then)."""
    if isinstance(boxes, np.ndarray):
        return np
    import torch

    return torch


def box_cxcywh_to_xyxy(boxes):
    cx, cy, w, h = (boxes[..., i] for i in range(4))
    return _xp(boxes).stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)


def box_xyxy_to_cxcywh(boxes):
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    return _xp(boxes).stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)


def box_area(boxes):
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _safe_divide(numerator, denominator):
    """numerator / denominator where denominator > 0, else 0 (finite gradients everywhere)."""
    xp = _xp(numerator)
    positive = denominator > 0
    return xp.where(positive, numerator / xp.where(positive, denominator, xp.ones_like(denominator)),
                    xp.zeros_like(numerator))


def _corner_extent(boxes1, boxes2, inner: bool):
    """Width and height [N, M] of the pairwise intersection (inner) or enclosing box, clipped at 0."""
    xp = _xp(boxes1)
    low, high = (xp.maximum, xp.minimum) if inner else (xp.minimum, xp.maximum)
    top_left = low(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = high(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = xp.clip(bottom_right - top_left, 0, None)
    return wh[..., 0] * wh[..., 1]


def box_iou(boxes1, boxes2):
    """Pairwise IoU and union of xyxy boxes [N, 4] x [M, 4] -> ([N, M], [N, M]); IoU 0 where the union is 0."""
    inter = _corner_extent(boxes1, boxes2, inner=True)
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return _safe_divide(inter, union), union


def generalized_box_iou(boxes1, boxes2):
    """Pairwise GIoU of xyxy boxes [N, 4] x [M, 4] -> [N, M]: IoU - (C - union) / C, C the area of the smallest
    enclosing box (Rezatofighi et al. 2019); the penalty is 0 where C is 0."""
    iou, union = box_iou(boxes1, boxes2)
    enclosing = _corner_extent(boxes1, boxes2, inner=False)
    return iou - _safe_divide(enclosing - union, enclosing)


def nms(boxes, scores, iou_threshold: float):
    """Greedy NMS (torch): indices [K] of the kept boxes, by descending score; a box is suppressed when its
    IoU with a kept one exceeds ``iou_threshold``. boxes [N, 4] xyxy, scores [N]."""
    import torch

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
