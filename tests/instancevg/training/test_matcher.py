"""Point-guided Hungarian matcher on hand-made cases: the assignment follows the cost, and the point term
changes the assignment when it should."""
import math

import pytest
import torch

from instancevg.postprocess import box_cxcywh_to_xyxy
from instancevg.boxes import generalized_box_iou
from instancevg.training.matcher import HungarianMatcher

BIG = 10.0  # logit gap making a query's class probability ~1 or ~0


def logits(*target_logit):
    """[1, N, 2] class logits with the given target logits (no-object logit 0)."""
    return torch.tensor([[[t, 0.0] for t in target_logit]])


def boxes(*rows):
    return torch.tensor([list(r) for r in rows], dtype=torch.float32)[None]


def test_assignment_follows_the_boxes():
    matcher = HungarianMatcher()
    gt = [torch.tensor([[0.25, 0.25, 0.2, 0.2], [0.75, 0.75, 0.2, 0.2]])]
    # query 0 sits on GT 1, query 2 on GT 0, query 1 far from both
    pred = boxes((0.75, 0.75, 0.2, 0.2), (0.5, 0.1, 0.05, 0.05), (0.25, 0.25, 0.2, 0.2))
    (queries, targets), = matcher(logits(0.0, 0.0, 0.0), pred, None, gt)
    assert dict(zip(queries.tolist(), targets.tolist())) == {0: 1, 2: 0}


def test_assignment_follows_the_class_probability_when_boxes_tie():
    matcher = HungarianMatcher()
    gt = [torch.tensor([[0.5, 0.5, 0.3, 0.3]])]
    pred = boxes((0.5, 0.5, 0.3, 0.3), (0.5, 0.5, 0.3, 0.3))
    (queries, _), = matcher(logits(-BIG, BIG), pred, None, gt)
    assert queries.tolist() == [1]
    (queries, _), = matcher(logits(BIG, -BIG), pred, None, gt)
    assert queries.tolist() == [0]


def test_point_term_changes_the_assignment():
    """Query 0's box is slightly closer to the GT, but query 1's AQSM point sits on the GT centre: with the
    point cost (official weight 2) query 1 wins, without it query 0 does."""
    gt = [torch.tensor([[0.3, 0.3, 0.2, 0.2]])]
    pred = boxes((0.32, 0.3, 0.2, 0.2), (0.34, 0.3, 0.2, 0.2))
    points = torch.tensor([[[0.9, 0.9], [0.3, 0.3]]])
    with_point = HungarianMatcher(cost_point=2.0)(logits(0.0, 0.0), pred, points, gt)
    without_point = HungarianMatcher(cost_point=0.0)(logits(0.0, 0.0), pred, points, gt)
    no_points_given = HungarianMatcher(cost_point=2.0)(logits(0.0, 0.0), pred, None, gt)
    assert with_point[0][0].tolist() == [1]
    assert without_point[0][0].tolist() == [0] and no_points_given[0][0].tolist() == [0]


def test_two_targets_swap_with_the_points():
    """Two queries with identical boxes and class between two GTs: the points decide who takes which."""
    gt = [torch.tensor([[0.2, 0.5, 0.1, 0.1], [0.8, 0.5, 0.1, 0.1]])]
    pred = boxes((0.5, 0.5, 0.1, 0.1), (0.5, 0.5, 0.1, 0.1))
    matcher = HungarianMatcher()
    (q, t), = matcher(logits(0.0, 0.0), pred, torch.tensor([[[0.8, 0.5], [0.2, 0.5]]]), gt)
    assert dict(zip(q.tolist(), t.tolist())) == {0: 1, 1: 0}
    (q, t), = matcher(logits(0.0, 0.0), pred, torch.tensor([[[0.2, 0.5], [0.8, 0.5]]]), gt)
    assert dict(zip(q.tolist(), t.tolist())) == {0: 0, 1: 1}


def test_cost_matrix_is_the_official_formula():
    torch.manual_seed(0)
    cls, pred = torch.randn(2, 4, 2), torch.rand(2, 4, 4) * 0.5 + 0.1
    points = torch.rand(2, 4, 2)
    gt = [torch.rand(3, 4) * 0.5 + 0.1, torch.rand(1, 4) * 0.5 + 0.1]
    matcher = HungarianMatcher(cost_class=1, cost_bbox=5, cost_giou=2, cost_point=2)
    costs = matcher.cost_matrices(cls, pred, points, gt)
    for b in range(2):
        prob = cls[b].softmax(-1)[:, 0]
        for i in range(4):
            for j in range(gt[b].shape[0]):
                l1 = (pred[b, i] - gt[b][j]).abs().sum()
                giou = generalized_box_iou(box_cxcywh_to_xyxy(pred[b, i:i + 1]), box_cxcywh_to_xyxy(gt[b][j:j + 1]))[0, 0]
                point = (points[b, i] - gt[b][j, :2]).abs().sum()
                expected = 5 * l1 - prob[i] - 2 * giou + 2 * point
                assert math.isclose(costs[b][i, j].item(), expected.item(), rel_tol=1e-5, abs_tol=1e-6)


def test_empty_targets_and_more_targets_than_queries():
    matcher = HungarianMatcher()
    pred = boxes((0.5, 0.5, 0.2, 0.2), (0.2, 0.2, 0.2, 0.2))
    (q, t), = matcher(logits(0.0, 0.0), pred, None, [torch.zeros(0, 4)])
    assert q.numel() == 0 and t.numel() == 0
    gt = [torch.tensor([[0.2, 0.2, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2], [0.8, 0.8, 0.2, 0.2]])]
    (q, t), = matcher(logits(0.0, 0.0), pred, None, gt)
    assert dict(zip(q.tolist(), t.tolist())) == {0: 1, 1: 0}


def test_non_finite_costs_are_reported():
    pred = boxes((float("nan"), 0.5, 0.2, 0.2))
    with pytest.raises(FloatingPointError, match="NaN"):
        HungarianMatcher()(logits(0.0), pred, None, [torch.tensor([[0.5, 0.5, 0.2, 0.2]])])
