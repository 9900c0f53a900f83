"""Small builders of Prediction / Target for the metric tests."""
from __future__ import annotations

import numpy as np

from instancevg.structures import Prediction, Target

SHAPE = (16, 16)


def rect_mask(y0: int, x0: int, y1: int, x1: int, shape=SHAPE) -> np.ndarray:
    """Bool mask with rows y0:y1 and columns x0:x1 set (area (y1-y0)*(x1-x0))."""
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def empty_mask(shape=SHAPE) -> np.ndarray:
    return np.zeros(shape, bool)


def pred(boxes=(), scores=(), mask=None, shape=SHAPE) -> Prediction:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    return Prediction(boxes=boxes, scores=scores, mask=empty_mask(shape) if mask is None else mask)


def target(boxes=(), mask=None, empty=None, group=None, shape=SHAPE) -> Target:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    empty = len(boxes) == 0 if empty is None else empty
    return Target(boxes=boxes, mask=empty_mask(shape) if mask is None else mask, empty=empty, group=group)


def no_target(group=None, shape=SHAPE) -> Target:
    return target(shape=shape, group=group, empty=True)


def mask_target(mask, group=None) -> Target:
    """A targeted sample for mask metrics (one dummy box covering the mask's extent)."""
    return target(boxes=[[0, 0, 1, 1]], mask=mask, empty=False, group=group, shape=mask.shape)


def random_mask(rng, shape=SHAPE, p=0.3) -> np.ndarray:
    return rng.random(shape) < p
