"""instancevg-predict's overlay: readable at any size (labels scaled to the image, on filled contrasting
boxes), a visible "no target" label, the expression in a caption band under the image."""
import numpy as np
import pytest

from instancevg.structures import Prediction
from instancevg.visualize import (CAPTION_FILL, MAX_CAPTION_LINES, NO_TARGET_FILL, draw_overlay, label_size,
                                  palette, text_colour)

SIZES = [(48, 64), (320, 320), (1500, 2000)]


def background(h, w):
    """A smooth blue-grey gradient: no pixel equals a label or caption colour."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([60 + 40 * x / w, 110 + 40 * y / h, np.full((h, w), 170.0)], -1).astype(np.uint8)


def prediction(h, w, selected: bool) -> Prediction:
    boxes = np.array([[0.1 * w, 0.4 * h, 0.45 * w, 0.9 * h], [0.55 * w, 0.45 * h, 0.95 * w, 0.95 * h],
                      [0, 0, w, h]], np.float32)
    masks = np.zeros((3, h, w), bool)
    for k, (x1, y1, x2, y2) in enumerate(boxes[:2].astype(int)):
        masks[k, y1:y2, x1:x2] = True
    flags = np.array([selected, selected, False])
    return Prediction(boxes=boxes, scores=np.array([0.93, 0.81, 0.2], np.float32),
                      mask=masks[flags].any(0) if selected else np.zeros((h, w), bool), selected=flags,
                      instance_masks=masks, points=(boxes[:, :2] + boxes[:, 2:]) / 2, exist_prob=0.9)


def ink(pixels: np.ndarray, fill) -> np.ndarray:
    """Pixels of (anti-aliased) text on ``fill``: nearer to the contrasting text colour than to the fill."""
    pixels = pixels.astype(float)
    return (np.abs(pixels - text_colour(fill)).sum(-1) < np.abs(pixels - fill).sum(-1))


def extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the True pixels."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.parametrize("h, w", SIZES)
def test_caption_band_holds_the_expression_under_the_untouched_image(h, w):
    rgb = background(h, w)
    out = np.asarray(draw_overlay(rgb, prediction(h, w, False), "the red circle"))
    assert out.shape[1] == w and out.shape[0] > h
    band = out[h:]
    assert (band == CAPTION_FILL).all(-1).mean() > 0.5  # a dark band ...
    assert (band.min(-1) > 200).sum() > 20  # ... with light text on it
    other = np.asarray(draw_overlay(rgb, prediction(h, w, False), "a blue square"))
    assert other.shape == out.shape and (other[h:] != band).any()  # the caption is the expression
    # nothing but the "no target" label is drawn on the picture: the image itself is not covered
    label = (out[:h] == NO_TARGET_FILL).all(-1)
    top, left, lh, lw = extent(label)
    untouched = np.ones((h, w), bool)
    untouched[top:top + lh, left:left + lw] = False
    assert (out[:h][untouched] == rgb[untouched]).all()


@pytest.mark.parametrize("h, w", SIZES)
def test_no_target_label_is_visible_and_scaled(h, w):
    out = np.asarray(draw_overlay(background(h, w), prediction(h, w, False), "the red circle"))
    label = (out[:h] == NO_TARGET_FILL).all(-1)
    top, left, lh, lw = extent(label)
    size = label_size(h, w)
    assert lh >= size and lw >= 3 * size  # a block of text, not a speck
    assert label.sum() > 0.5 * lh * lw  # filled
    inside = out[top:top + lh, left:left + lw]
    assert ink(inside, NO_TARGET_FILL).sum() > 2 * size  # with its text in a contrasting colour
    selected = np.asarray(draw_overlay(background(h, w), prediction(h, w, True), "the red circle"))
    assert not (selected[:h] == NO_TARGET_FILL).all(-1).any()  # only drawn when nothing is selected


@pytest.mark.parametrize("h, w", SIZES)
def test_score_labels_are_filled_boxes_with_contrasting_text(h, w):
    pred = prediction(h, w, True)
    out = np.asarray(draw_overlay(background(h, w), pred, "the two shapes"))
    size = label_size(h, w)
    for colour, box in zip(palette(2), pred.boxes[:2]):
        x1, y1 = int(box[0]), int(box[1])
        # the label sits above the box (there is room at these sizes) in the instance colour
        region = out[max(0, y1 - 2 * size - 4):y1, x1:min(w, x1 + 4 * size)]
        fill = (region == colour).all(-1)
        assert fill.sum() > 0.5 * size * size, colour
        top, left, lh, lw = extent(fill)
        assert ink(region[top:top + lh, left:left + lw], colour).sum() > 2 * size, "score text missing"
    assert size == {48: 12, 320: 12, 1500: 71}[h]


def test_long_expressions_wrap_and_stay_bounded():
    h, w = 48, 64
    short = np.asarray(draw_overlay(background(h, w), prediction(h, w, True), "red"))
    long = np.asarray(draw_overlay(background(h, w), prediction(h, w, True), "the shape " * 40))
    line = round(label_size(h, w) * 1.25)
    assert short.shape[0] < long.shape[0] <= h + MAX_CAPTION_LINES * line + 2 * 12
    assert draw_overlay(background(h, w), prediction(h, w, False)).size[1] > h  # no expression: outcome only
