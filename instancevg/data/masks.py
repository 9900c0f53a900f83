"""COCO segmentations (polygons, RLE) to binary masks, and the nearest-neighbour mask resize.

The one place that turns a dataset's segmentation into pixels; readers, the converter, the synthetic
generator and the tests all go through it.

A COCO segmentation is either
- polygons: ``[[x1, y1, x2, y2, ...], ...]`` in pixel coordinates (parts of one object), or
- RLE: ``{"size": [h, w], "counts": str | bytes}`` (compressed) or ``{"size": [h, w], "counts": [int]}``
  (uncompressed, COCO's ``iscrowd`` style), column-major runs starting with background.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any

import cv2
import numpy as np


@functools.cache
def coco_mask():
    """pycocotools.mask, imported on first use: the model, its ops and the GPU checks run without it."""
    import pycocotools.mask

    return pycocotools.mask


class SegmentationError(ValueError):
    """A segmentation that is neither polygons nor RLE, or whose RLE size disagrees with the image."""


def is_empty_segmentation(segmentation: Any) -> bool:
    """True for ``None``, ``[]`` or polygons without any usable part (gRefCOCO's no-target placeholder)."""
    if segmentation is None:
        return True
    if isinstance(segmentation, list):
        return not any(len(part) >= 6 for part in segmentation)
    return False


def segmentation_to_rle(segmentation: Any, height: int, width: int) -> dict:
    """One compressed RLE (``counts`` bytes) for one object.

    Polygon parts are merged (union) as the official loaders do (``frPyObjects`` + ``merge``). Parts with
    fewer than 3 points are dropped: pycocotools would read a 4-number part as a box, and ReLA drops
    them too. An empty segmentation gives an all-zero RLE.
    """
    if isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            raise SegmentationError(f"RLE needs 'size' and 'counts', got keys {sorted(segmentation)}")
        size = [int(v) for v in segmentation["size"]]
        if size != [height, width]:
            raise SegmentationError(f"RLE size {size} differs from the image size [{height}, {width}]")
        counts = segmentation["counts"]
        if isinstance(counts, list):  # uncompressed: pycocotools compresses it
            return coco_mask().frPyObjects(segmentation, height, width)
        if isinstance(counts, str):
            counts = counts.encode("ascii")
        if not isinstance(counts, bytes):
            raise SegmentationError(f"RLE counts must be a string or a list, got {type(counts).__name__}")
        return {"size": size, "counts": counts}
    if isinstance(segmentation, list) or segmentation is None:
        parts = [[float(v) for v in part] for part in (segmentation or []) if len(part) >= 6]
        if not parts:
            return coco_mask().encode(np.zeros((height, width), dtype=np.uint8, order="F"))
        return coco_mask().merge(coco_mask().frPyObjects(parts, height, width))
    raise SegmentationError(f"a segmentation must be a polygon list or an RLE dict, got "
                            f"{type(segmentation).__name__}")


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Binary mask [height, width] bool of one object's segmentation."""
    rle = segmentation_to_rle(segmentation, height, width)
    with warnings.catch_warnings():  # pycocotools 2.0.x's decode warns under numpy 2 (copy keyword)
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask().decode(rle).astype(bool)


def encode_mask(mask: np.ndarray) -> dict:
    """Compressed RLE of a [H, W] binary mask with a JSON-friendly string ``counts``."""
    rle = coco_mask().encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (``counts`` a list of run lengths, column-major, background first)."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs  # counts always start with a (possibly empty) background run
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(r) for r in runs]}


def resize_masks_nearest(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of masks [..., h, w] bool -> [..., height, width] bool.

    ``cv2.INTER_NEAREST``, as mmcv's ``BitmapMasks.resize`` (``mmcv.imresize(..., 'nearest')``) which the
    official pipeline uses for GT masks. Resizing commutes with union under nearest sampling, so the
    union of resized instances equals the resized union.
    """
    masks = np.asarray(masks, dtype=bool)
    lead = masks.shape[:-2]
    flat = masks.reshape((-1,) + masks.shape[-2:])
    out = np.zeros((flat.shape[0], height, width), dtype=bool)
    for i, m in enumerate(flat):
        out[i] = cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
    return out.reshape(lead + (height, width))

