"""REC (top-1 box Pr@K) and RES (mIoU, oIoU, mask Pr@K) on hand-made cases and direct loops."""
import numpy as np
import pytest

from evaluation.metrics import RECEvaluator, RESEvaluator
from .metric_factories import empty_mask, mask_target, pred, random_mask, rect_mask, target

GT = [[0, 0, 10, 10]]


def rec_result(samples):
    evaluator = RECEvaluator()
    for i, (p, t) in enumerate(samples):
        evaluator.process(i, p, t)
    return evaluator.evaluate()


def test_rec_hand_cases():
    samples = [
        (pred([[0, 0, 10, 10]], [0.2]), target(GT)),  # IoU 1
        (pred([[0, 0, 10, 5]], [0.9]), target(GT)),  # IoU exactly 0.5 -> counted at 0.5 (>=)
        (pred([[1.8, 1.8, 11.8, 11.8]], [0.9]), target(GT)),  # IoU 0.5065
        (pred([[20, 20, 30, 30]], [0.99]), target(GT)),  # IoU 0
    ]
    result = rec_result(samples)
    assert result == {"Pr@0.5": 75.0, "Pr@0.6": 25.0, "Pr@0.7": 25.0, "Pr@0.8": 25.0, "Pr@0.9": 25.0,
                      "samples": 4}


def test_rec_takes_top_scoring_box_without_threshold():
    # unsorted input: the official code re-sorts; a low top score still counts (no threshold)
    p = pred([[20, 20, 30, 30], [0, 0, 10, 10]], [0.05, 0.06])
    assert rec_result([(p, target(GT))])["Pr@0.9"] == 100.0
    # equal scores: the official sort puts the lexicographically larger box first
    p = pred([[0, 0, 10, 10], [20, 20, 30, 30]], [0.5, 0.5])
    assert rec_result([(p, target(GT))])["Pr@0.5"] == 0.0


def test_rec_guards_and_errors():
    assert rec_result([(pred(), target(GT))])["Pr@0.5"] == 0.0  # no boxes: IoU 0
    assert RECEvaluator().evaluate() == {"Pr@0.5": None, "Pr@0.6": None, "Pr@0.7": None, "Pr@0.8": None,
                                         "Pr@0.9": None, "samples": 0}
    with pytest.raises(ValueError, match="sample 'a'.*exactly one GT box"):
        RECEvaluator().process("a", pred(GT, [1.0]), target([[0, 0, 1, 1], [2, 2, 3, 3]]))
    with pytest.raises(ValueError, match="sample 7.*2 boxes but 1 scores"):
        RECEvaluator().process(7, _bad_pred(), target(GT))


def _bad_pred():
    p = pred([[0, 0, 1, 1], [0, 0, 2, 2]], [1.0, 0.5])
    p.scores = np.array([1.0], np.float32)
    return p


def test_rec_against_loop():
    rng = np.random.default_rng(3)
    evaluator, ious = RECEvaluator(iou_thresholds=(0.3, 0.5, 0.75)), []
    for i in range(60):
        gt = np.sort(rng.uniform(0, 40, (2, 2)), 0).T.reshape(-1)[[0, 2, 1, 3]]
        boxes = np.sort(rng.uniform(0, 40, (3, 2, 2)), 1).transpose(0, 2, 1).reshape(3, 4)[:, [0, 2, 1, 3]]
        boxes[0] = gt + rng.normal(0, 2, 4)
        boxes[0, 2:] = np.maximum(boxes[0, 2:], boxes[0, :2])
        scores = np.sort(rng.random(3))[::-1]
        evaluator.process(i, pred(boxes, scores), target([gt]))
        a, b = gt.astype(np.float32).astype(float), boxes[0].astype(np.float32).astype(float)
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
        ious.append(iw * ih / union)
    result = evaluator.evaluate()
    for t in (0.3, 0.5, 0.75):
        assert result[f"Pr@{t:g}"] == pytest.approx(
            100 * np.mean(np.array(ious) >= t))


def test_res_hand_cases():
    gt = rect_mask(0, 0, 4, 4)  # 16 px
    evaluator = RESEvaluator()
    evaluator.process(0, pred(mask=gt.copy()), mask_target(gt))  # I 16 U 16
    evaluator.process(1, pred(mask=rect_mask(0, 0, 4, 2)), mask_target(gt))  # I 8 U 16 -> 0.5
    evaluator.process(2, pred(mask=rect_mask(8, 8, 12, 12)), mask_target(gt))  # I 0 U 32
    evaluator.process(3, pred(mask=empty_mask()), mask_target(empty_mask()))  # U 0 -> IoU 0
    result = evaluator.evaluate()
    assert result["mIoU"] == pytest.approx(100 * 1.5 / 4)
    assert result["oIoU"] == pytest.approx(100 * 24 / 64)
    assert result["Pr@0.5"] == 50.0 and result["Pr@0.6"] == 25.0 and result["Pr@0.9"] == 25.0
    assert result["samples"] == 4


def test_res_guards_and_shape_errors():
    evaluator = RESEvaluator()
    evaluator.process(0, pred(mask=empty_mask()), mask_target(empty_mask()))
    # the sample's IoU is 0 (U = 0 guard), so mIoU is 0; oIoU divides by sum U = 0: undefined
    assert evaluator.evaluate()["oIoU"] is None and evaluator.evaluate()["mIoU"] == 0.0
    with pytest.raises(ValueError, match="sample 5: prediction mask has shape \\(8, 8\\) but target mask has"):
        evaluator.process(5, pred(mask=np.zeros((8, 8), bool)), mask_target(rect_mask(0, 0, 2, 2)))
    with pytest.raises(ValueError, match="sample 6: prediction mask must be a bool"):
        evaluator.process(6, pred(mask=np.zeros((16, 16), np.float32)), mask_target(rect_mask(0, 0, 2, 2)))


def test_res_against_loop():
    rng = np.random.default_rng(4)
    evaluator, inters, unions = RESEvaluator(), [], []
    for i in range(40):
        p, g = random_mask(rng), random_mask(rng, p=rng.uniform(0, 0.5))
        evaluator.process(i, pred(mask=p), mask_target(g))
        inter = unn = 0
        for y in range(p.shape[0]):
            for x in range(p.shape[1]):
                inter += p[y, x] and g[y, x]
                unn += p[y, x] or g[y, x]
        inters.append(inter)
        unions.append(unn)
    ious = [i / u if u else 0.0 for i, u in zip(inters, unions)]
    result = evaluator.evaluate()
    assert result["mIoU"] == pytest.approx(100 * np.mean(ious), rel=1e-12)
    assert result["oIoU"] == pytest.approx(100 * sum(inters) / sum(unions), rel=1e-12)
    for t in (0.5, 0.6, 0.7, 0.8, 0.9):
        assert result[f"Pr@{t}"] == pytest.approx(100 * np.mean([iou >= t for iou in ious]))
