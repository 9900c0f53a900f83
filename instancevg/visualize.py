"""Overlay of a prediction on its image: merged mask, selected instance masks in distinct colours, their
boxes with score labels, the selected points, and a caption band under the image (the expression and
the outcome). Every size (font, lines, points) scales with the image, so the picture reads the same at
64 x 48 and at 2000 x 1500."""
from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .structures import Prediction

NO_TARGET = "no target"
NO_TARGET_FILL = (200, 0, 0)
CAPTION_FILL = (24, 24, 24)
CAPTION_TEXT = (255, 255, 255)
MAX_CAPTION_LINES = 8


def palette(n: int) -> list[tuple[int, int, int]]:
    """n well-separated saturated colours (golden-ratio hue steps)."""
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb((0.61803 * i) % 1.0, 0.85, 1.0)) for i in range(n)]


def text_colour(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``fill`` (ITU-R BT.601 luma)."""
    luma = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def label_size(height: int, width: int) -> int:
    """Font size in pixels for an image: 1/28 of its longer side, at least 12 (legible), at most 96."""
    return int(np.clip(round(max(height, width) / 28), 12, 96))


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # scalable font (Pillow >= 10.1 with FreeType)
    except (TypeError, ImportError, OSError):  # no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _draw_label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fill: tuple[int, int, int],
                font, pad: int, bounds: tuple[int, int]) -> tuple[int, int, int, int]:
    """``text`` on a filled box whose top-left corner is ``xy``, moved inside ``bounds`` (width, height);
    returns the box."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    x = int(min(max(xy[0], 0), max(bounds[0] - w, 0)))
    y = int(min(max(xy[1], 0), max(bounds[1] - h, 0)))
    draw.rectangle([x, y, x + w - 1, y + h - 1], fill=fill)
    draw.text((x + pad - left, y + pad - top), text, fill=text_colour(fill), font=font)
    return x, y, x + w - 1, y + h - 1


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels (words wider than a line are split by characters), at most
    ``max_lines`` lines, the last one ending in "..." when text was cut."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if draw.textlength(candidate, font=font) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for ch in word:
                if line and draw.textlength(line + ch, font=font) > width:
                    lines.append(line)
                    line = ""
                line += ch
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:-3] + "..."
    return lines


def outcome_text(pred: Prediction) -> str:
    """"2 targets", "1 target" or "no target"."""
    n = int(np.count_nonzero(pred.selected)) if pred.selected is not None else 0
    return NO_TARGET if n == 0 else f"{n} target" + ("s" if n > 1 else "")


def draw_overlay(rgb: np.ndarray, pred: Prediction, expression: str | None = None) -> Image.Image:
    """rgb [H, W, 3] uint8 and a Prediction in the same pixel frame -> PIL image [H + caption, W].

    The image keeps its pixels except where masks, boxes, labels and points are drawn; the caption band
    below it holds the expression (quoted, wrapped to the width) and the outcome. Nothing selected: a "no target" label at the top-left.
    """
    height, width = rgb.shape[:2]
    canvas = rgb.astype(np.float32)
    merged = pred.mask.astype(bool)
    canvas[merged] = 0.55 * canvas[merged] + 0.45 * np.array([255, 255, 255], np.float32)
    selected = np.flatnonzero(pred.selected) if pred.selected is not None else np.array([], int)
    colours = palette(max(len(selected), 1))
    if pred.instance_masks is not None:
        for colour, k in zip(colours, selected):
            m = pred.instance_masks[k]
            canvas[m] = 0.5 * canvas[m] + 0.5 * np.array(colour, np.float32)
    picture = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))

    size = label_size(height, width)
    font = _font(size)
    pad = max(1, size // 6)
    line_width = max(2, round(max(height, width) / 250))
    radius = max(3, round(max(height, width) / 120))
    draw = ImageDraw.Draw(picture)
    for colour, k in zip(colours, selected):
        x1, y1, x2, y2 = (float(v) for v in pred.boxes[k])
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=line_width)
        if pred.points is not None:
            px, py = (float(v) for v in pred.points[k])
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=colour, outline=(0, 0, 0),
                         width=max(1, line_width // 2))
    for colour, k in zip(colours, selected):  # labels last: no box or point covers them
        x1, y1 = float(pred.boxes[k][0]), float(pred.boxes[k][1])
        label_h = size + 2 * pad
        _draw_label(draw, (x1, y1 - label_h if y1 >= label_h else y1), f"{pred.scores[k]:.2f}", colour, font,
                    pad, (width, height))
    if not len(selected):
        _draw_label(draw, (pad, pad), NO_TARGET, NO_TARGET_FILL, font, pad, (width, height))

    measure = ImageDraw.Draw(picture)
    lines = _wrap(measure, f'"{expression}"', font, width - 2 * pad, MAX_CAPTION_LINES - 1) if expression else []
    lines.append(outcome_text(pred))
    line_height = round(size * 1.25)
    band = len(lines) * line_height + 2 * pad
    image = Image.new("RGB", (width, height + band), CAPTION_FILL)
    image.paste(picture, (0, 0))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((pad, height + pad + i * line_height), line, fill=CAPTION_TEXT, font=font)
    return image
