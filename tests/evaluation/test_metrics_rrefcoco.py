"""R-RefCOCO: per-group mIoU, oIoU, mRR, rIoU; false-positive areas; empty groups; U = 0."""
import numpy as np
import pytest

from evaluation.metrics import RRefCOCOEvaluator
from .metric_factories import empty_mask, mask_target, no_target, pred, random_mask, rect_mask

BOX = [[0, 0, 1, 1]]
GT = rect_mask(0, 0, 4, 4)  # 16 px


def run(samples, **options):
    evaluator = RRefCOCOEvaluator(**options)
    for i, (p, t) in enumerate(samples):
        evaluator.process(i, p, t)
    return evaluator.evaluate()


def test_group_with_false_positive_negative():
    samples = [
        (pred(BOX, [0.9], GT.copy()), mask_target(GT, group=0)),  # I 16 U 16
        (pred(BOX, [0.9], rect_mask(0, 0, 4, 2)), mask_target(GT, group=0)),  # I 8 U 16
        (pred(BOX, [0.8], rect_mask(10, 10, 14, 12)), no_target(group=0)),  # FP, area 8
        (pred(BOX, [0.7], rect_mask(10, 10, 14, 14)), no_target(group=0)),  # 0.7 not > 0.7: TN
    ]
    result = run(samples)
    assert result["mIoU"] == pytest.approx(75.0)
    assert result["oIoU"] == pytest.approx(100 * 24 / 32)  # without the FP area
    assert result["rIoU"] == pytest.approx(100 * 24 / 40)  # with the FP area
    assert result["mRR"] == 50.0
    assert (result["samples"], result["groups"], result["positive_samples"], result["negative_samples"]) == (
        4, 1, 2, 2)


def test_means_are_over_groups_and_group_without_negatives():
    samples = [
        (pred(BOX, [0.9], GT.copy()), mask_target(GT, group=7)),  # group 7: IoU 1, one TN
        (pred(BOX, [0.1]), no_target(group=7)),
        (pred(BOX, [0.9], rect_mask(0, 0, 4, 2)), mask_target(GT, group=3)),  # group 3: IoU 0.5, no negatives
    ]
    result = run(samples)
    assert result["mIoU"] == 75.0 and result["rIoU"] == 75.0
    assert result["oIoU"] == pytest.approx(100 * 24 / 32)
    assert result["mRR"] == 100.0 and result["groups_without_negatives"] == 1  # group 3 left out
    assert run(samples, groups_without_negatives="count_as_one")["mRR"] == 100.0
    samples[1] = (pred(BOX, [0.9]), no_target(group=7))  # now an FP with an empty mask
    assert run(samples)["mRR"] == 0.0
    assert run(samples, groups_without_negatives="count_as_one")["mRR"] == 50.0
    # no group with negatives: mRR over no group is undefined under "exclude", 100 under "count_as_one"
    assert run(samples[2:])["mRR"] is None and run(samples[2:])["groups_without_negatives"] == 1
    assert run(samples[2:], groups_without_negatives="count_as_one")["mRR"] == 100.0


def test_group_without_positives_and_zero_unions():
    samples = [
        (pred(BOX, [0.9], rect_mask(0, 0, 2, 2)), no_target(group=1)),  # only negatives: FP
        (pred(BOX, [0.1]), mask_target(empty_mask(), group=2)),  # positive with U = 0
    ]
    result = run(samples)
    assert result["groups_without_positives"] == 1
    assert result["mRR"] == 0.0  # group 1 counts for mRR, group 2 has no negatives
    # group 2's IoU_g and rIoU_g are 0 (U = 0 guards): defined; oIoU divides by sum U_g = 0: undefined
    assert result["mIoU"] == 0.0 and result["rIoU"] == 0.0 and result["oIoU"] is None
    assert run([(pred(), no_target(group=0))]) == {
        "mIoU": None, "oIoU": None, "mRR": 100.0, "rIoU": None, "samples": 1, "groups": 1,
        "positive_samples": 0, "negative_samples": 1, "groups_without_negatives": 0,
        "groups_without_positives": 1}


def test_mask_empty_rule_and_group_required():
    samples = [(pred(BOX, [0.9], GT.copy()), mask_target(GT, group=0)), (pred(BOX, [0.9]), no_target(group=0))]
    assert run(samples)["mRR"] == 0.0
    assert run(samples, no_target_rule="mask_empty")["mRR"] == 100.0
    with pytest.raises(ValueError, match="sample 0: R-RefCOCO needs an integer Target.group"):
        run([(pred(), no_target())])


def reference_rrefcoco(samples, ranges, threshold=0.7):
    """The official index-range algorithm, with the documented guards, written as plain loops."""
    mious, rates, rious, sum_i, sum_u = [], [], [], 0, 0
    for start, end in ranges:
        inter = union = iou_sum = positives = tn = fp = 0
        for p, t in samples[start:end]:
            pred_nt = not any(np.float32(s) > np.float32(threshold) for s in p.scores)
            if t.empty:
                if pred_nt:
                    tn += 1
                else:
                    fp += 1
            else:
                i, u = int((p.mask & t.mask).sum()), int((p.mask | t.mask).sum())
                inter, union, positives = inter + i, union + u, positives + 1
                iou_sum += i / u if u else 0.0
        fp_area = sum(int(p.mask.sum()) for p, t in samples[start:end] if t.empty and
                      any(np.float32(s) > np.float32(threshold) for s in p.scores))
        sum_i, sum_u = sum_i + inter, sum_u + union
        if tn + fp:
            rates.append(tn / (tn + fp))
        if positives:
            mious.append(iou_sum / positives)
            rious.append(inter / (union + fp_area) if union + fp_area else 0.0)
    return {"mIoU": 100 * np.mean(mious), "oIoU": 100 * sum_i / sum_u, "mRR": 100 * np.mean(rates),
            "rIoU": 100 * np.mean(rious)}


def test_against_reference_loop_and_group_order():
    rng = np.random.default_rng(7)
    samples, ranges, start = [], [], 0
    for group in range(15):
        size = int(rng.integers(1, 6))
        for k in range(size):
            scores = [rng.uniform(0.5, 0.9)]
            if k == 0 or rng.random() < 0.5:
                g = random_mask(rng, p=0.3)
                p = g if rng.random() < 0.2 else random_mask(rng, p=0.3)
                samples.append((pred(BOX, scores, p), mask_target(g, group=group)))
            else:
                samples.append((pred(BOX, scores, random_mask(rng, p=0.1)), no_target(group=group)))
        ranges.append((start, start + size))
        start += size
    result = run(samples)
    for key, value in reference_rrefcoco(samples, ranges).items():
        assert result[key] == pytest.approx(value, rel=1e-12), key
    # groups need not be contiguous: interleaving samples changes nothing but float rounding
    order = rng.permutation(len(samples))
    shuffled = run([samples[i] for i in order])
    for key in ("mIoU", "oIoU", "mRR", "rIoU"):
        assert shuffled[key] == pytest.approx(result[key], rel=1e-12)
