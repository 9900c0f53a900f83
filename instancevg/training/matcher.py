"""Point-guided Hungarian matcher (official ``HungarianMatcher`` with ``cost_class_type="ce_cost"``).

For each image, the cost of giving GT box j to query i is

    C[i, j] = w_bbox * L1(box_i, gt_j) - w_class * softmax(logits_i)[target]
              - w_giou * GIoU(box_i, gt_j) + w_point * L1(point_i, centre(gt_j))

with boxes in normalised cxcywh and ``point_i`` the query's AQSM point (x, y) in [0, 1] (not the
decoder's reference point). ``scipy.optimize.linear_sum_assignment`` picks the assignment of least total
cost; with fewer GT boxes than queries, the other queries stay unmatched (no-object). Every decoder layer
is matched on its own (the auxiliary layers are re-matched, as in the official head).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from scipy.optimize import linear_sum_assignment

from ..boxes import box_cxcywh_to_xyxy, generalized_box_iou

Match = tuple[torch.Tensor, torch.Tensor]  # (query indices, GT indices), int64, aligned


class HungarianMatcher:
    """Args: the four cost weights (config ``LossConfig``: class 1, bbox 5, giou 2, point 2).

    ``cost_point = 0`` or ``points=None`` drops the point term (plain DETR matching).
    """

    def __init__(self, cost_class: float = 1.0, cost_bbox: float = 5.0, cost_giou: float = 2.0,
                 cost_point: float = 2.0):
        if not any((cost_class, cost_bbox, cost_giou, cost_point)):
            raise ValueError("HungarianMatcher: at least one cost weight must be non-zero")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.cost_point = cost_point

    @torch.no_grad()
    def cost_matrices(self, class_logits: torch.Tensor, boxes: torch.Tensor, points: Optional[torch.Tensor],
                      gt_boxes: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per-image cost matrices.

        Args:
            class_logits: [B, N, 2] ([target, no-object]); boxes: [B, N, 4] cxcywh in [0, 1];
            points: [B, N, 2] AQSM points (x, y) in [0, 1], or None; gt_boxes: B tensors [K_b, 4] cxcywh.
        Returns: B float32 CPU tensors [N, K_b].
        """
        if len(gt_boxes) != class_logits.shape[0]:
            raise ValueError(f"matcher: {len(gt_boxes)} target sets for a batch of {class_logits.shape[0]}")
        costs = []
        for b, gt in enumerate(gt_boxes):
            out_box = boxes[b].float()
            gt = gt.to(out_box)
            if gt.shape[0] == 0:
                costs.append(torch.zeros(out_box.shape[0], 0))
                continue
            # every GT has class 0 ("target"); the cost is minus its probability (a constant 1 dropped)
            cost_class = -class_logits[b].float().softmax(-1)[:, :1].expand(-1, gt.shape[0])
            cost_bbox = torch.cdist(out_box, gt, p=1)
            cost_giou = -generalized_box_iou(box_cxcywh_to_xyxy(out_box), box_cxcywh_to_xyxy(gt))
            cost = self.cost_bbox * cost_bbox + self.cost_class * cost_class + self.cost_giou * cost_giou
            if points is not None and self.cost_point:
                cost = cost + self.cost_point * torch.cdist(points[b].float(), gt[:, :2], p=1)
            costs.append(cost.cpu())
        return costs

    @torch.no_grad()
    def __call__(self, class_logits: torch.Tensor, boxes: torch.Tensor, points: Optional[torch.Tensor],
                 gt_boxes: Sequence[torch.Tensor]) -> list[Match]:
        """B pairs (query indices [M_b], GT indices [M_b]) with M_b = min(N, K_b), in scipy's row order."""
        matches = []
        for cost in self.cost_matrices(class_logits, boxes, points, gt_boxes):
            if not torch.isfinite(cost).all():
                raise FloatingPointError("matcher: the cost matrix holds NaN or infinite values (did the "
                                         "predicted boxes diverge?)")
            rows, cols = linear_sum_assignment(cost.numpy())
            matches.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return matches
