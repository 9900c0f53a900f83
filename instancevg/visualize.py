"""Overlay of a prediction on its image: merged mask, selected instance masks in distinct colours,
their boxes with scores, and the selected points."""
from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw

from .structures import Prediction


def palette(n: int) -> list[tuple[int, int, int]]:
    """n well-separated saturated colours (golden-ratio hue steps)."""
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb((0.61803 * i) % 1.0, 0.85, 1.0)) for i in range(n)]


def draw_overlay(rgb: np.ndarray, pred: Prediction, expression: str | None = None) -> Image.Image:
    """rgb [H, W, 3] uint8 and a Prediction in the same pixel frame -> PIL image."""
    canvas = rgb.astype(np.float32)
    merged = pred.mask.astype(bool)
    canvas[merged] = 0.55 * canvas[merged] + 0.45 * np.array([255, 255, 255], np.float32)
    selected = np.flatnonzero(pred.selected) if pred.selected is not None else np.array([], int)
    colours = palette(max(len(selected), 1))
    if pred.instance_masks is not None:
        for colour, k in zip(colours, selected):
            m = pred.instance_masks[k]
            canvas[m] = 0.5 * canvas[m] + 0.5 * np.array(colour, np.float32)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for colour, k in zip(colours, selected):
        x1, y1, x2, y2 = (float(v) for v in pred.boxes[k])
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        draw.text((x1 + 3, y1 + 2), f"{pred.scores[k]:.2f}", fill=colour)
        if pred.points is not None:
            px, py = (float(v) for v in pred.points[k])
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour, outline=(0, 0, 0))
    header = expression or ""
    if not len(selected):
        header = (header + "  " if header else "") + "[no target]"
    if header:
        draw.rectangle([0, 0, image.width, 14], fill=(0, 0, 0))
        draw.text((3, 1), header, fill=(255, 255, 255))
    return image
