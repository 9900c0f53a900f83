"""``Sample``: the one record every dataset reader yields (one referring expression on one image).

Ground truth is kept as the dataset stores it (boxes in original pixels, COCO segmentations) and decoded
lazily; ``to_target(size)`` turns it into the ``Target`` the metrics consume, following the official
InstanceVG evaluation (GT masks resized with nearest; GT boxes clipped at the original size, then scaled).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from instancevg.data.masks import decode_segmentation, resize_masks_nearest
from instancevg.data.transforms import read_image
from instancevg.structures import Target

SampleId = Union[int, str]


class ImageReadError(OSError):
    """An image file that is missing, unreadable or not of the size its annotation states."""


@dataclass
class Sample:
    """One referring expression with its ground truth.

    sample_id: unified JSON -> the item's integer position in its split's list (R-RefCOCO items holding
        several annotation dicts, train only: ``"<position>:<k>"``); original releases ->
        ``"<ref_id>:<sent_id>"`` (evaluation/predictions.py).
    image_path: absolute or data-root-relative path of the image file.
    expression: the expression to ground (raw text; the tokenizer cleans it).
    width, height: original image size in pixels.
    boxes: [K,4] float64 xyxy in original pixels (COCO ``[x, y, w, h]`` -> ``[x, y, x+w, y+h]``, unclipped);
        K = 0 for a no-target sample.
    segmentations: K COCO segmentations (polygons or RLE), same order as ``boxes``; decoded lazily.
    empty: no target (K = 0).
    group: R-RefCOCO group (one object with its positive and negative sentences), else None.
    dataset, split: benchmark name (registry) and split name.
    expressions: every expression the item holds (training: the official loader draws one at random;
        evaluation items hold one). ``expression`` is ``expressions[0]``.
    crowd: K flags, COCO ``iscrowd``; crowd instances stay in ``boxes`` (GREC keeps them) but are left out of
        ``union_mask`` (ReLA's GRES GT). Readers set them for gRefCOCO only (other official loaders use every
        listed annotation).
    extras: provenance (image_id, ref_id, sent_id, ann_ids, source, ...), never used by metrics.
    """

    sample_id: SampleId
    image_path: str
    expression: str
    width: int
    height: int
    boxes: np.ndarray
    segmentations: tuple
    empty: bool
    dataset: str
    split: str
    group: Optional[int] = None
    expressions: tuple = ()
    crowd: tuple = ()
    extras: dict = field(default_factory=dict)

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.segmentations = tuple(self.segmentations)
        if not self.expressions:
            self.expressions = (self.expression,)
        self.expressions = tuple(self.expressions)
        if not self.crowd:
            self.crowd = (False,) * len(self.segmentations)
        self.crowd = tuple(bool(c) for c in self.crowd)
        k = len(self.boxes)
        if len(self.segmentations) != k or len(self.crowd) != k:
            raise ValueError(f"sample {self.describe()}: {k} boxes, {len(self.segmentations)} segmentations "
                             f"and {len(self.crowd)} crowd flags; expected one of each per instance")
        if self.empty != (k == 0):
            raise ValueError(f"sample {self.describe()}: empty={self.empty} but {k} instances; expected "
                             f"empty exactly when there is no instance")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"sample {self.describe()}: image size {self.width}x{self.height} must be positive")

    @property
    def num_instances(self) -> int:
        return len(self.boxes)

    def describe(self) -> str:
        """``dataset/split#sample_id`` for error messages."""
        return f"{self.dataset}/{self.split}#{self.sample_id}"

    # ---------------------------------------------------------------- image
    def load_image(self) -> np.ndarray:
        """Image [H,W,3] uint8 RGB: decoded by OpenCV as BGR (as mmcv does), converted to RGB."""
        try:
            rgb = read_image(self.image_path)
        except (FileNotFoundError, ValueError) as err:
            raise ImageReadError(f"sample {self.describe()}: {err}") from None
        if rgb.shape[:2] != (self.height, self.width):
            raise ImageReadError(f"image {self.image_path} of sample {self.describe()} is "
                                 f"{rgb.shape[1]}x{rgb.shape[0]}; the annotation says {self.width}x{self.height}")
        return rgb

    # ---------------------------------------------------------------- masks at the original size
    def instance_masks(self) -> np.ndarray:
        """Instance masks [K,height,width] bool at the original size."""
        masks = np.zeros((self.num_instances, self.height, self.width), dtype=bool)
        for i, seg in enumerate(self.segmentations):
            try:
                masks[i] = decode_segmentation(seg, self.height, self.width)
            except ValueError as err:
                raise ValueError(f"sample {self.describe()}, instance {i}: {err}") from None
        return masks

    def union_mask(self, instance_masks: Optional[np.ndarray] = None) -> np.ndarray:
        """Union [height,width] bool of the non-crowd instances (all-False for a no-target sample)."""
        masks = self.instance_masks() if instance_masks is None else instance_masks
        keep = ~np.asarray(self.crowd, dtype=bool)
        if masks.shape[0] == 0 or not keep.any():
            return np.zeros(masks.shape[1:], dtype=bool)
        return masks[keep].any(axis=0)

    # ---------------------------------------------------------------- evaluation target
    def clipped_boxes(self) -> np.ndarray:
        """Boxes [K,4] float64 clipped to [0, w-1] x [0, h-1] at the original size (official loader)."""
        boxes = self.boxes.copy()
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, self.width - 1)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, self.height - 1)
        return boxes

    def to_target(self, size: Optional[int]) -> Target:
        """Ground truth at the evaluation resolution.

        size = S (official protocol, S = config.image_size): boxes clipped at the original size, then
        multiplied by (S/w, S/h) (the factor held in float32, as mmcv's ``imresize`` returns it); masks
        resized to S x S with nearest neighbour. size = None (documented variant "original-resolution
        masks"): boxes clipped only, masks at [height, width].
        Returns a Target with boxes [K,4] float32, mask [S,S] bool (union of non-crowd instances),
        instance_masks [K,S,S] bool, empty, group; extras hold sample_id, expression, dataset, split,
        original_size (w, h) and crowd.
        """
        boxes = self.clipped_boxes()
        instances = self.instance_masks()
        if size is not None:
            size = int(size)
            if size <= 0:
                raise ValueError(f"to_target size must be positive, got {size}")
            scale = np.array([size / self.width, size / self.height] * 2, dtype=np.float32)
            boxes = boxes * scale
            instances = resize_masks_nearest(instances, size, size)
        extras = {"sample_id": self.sample_id, "expression": self.expression, "dataset": self.dataset,
                  "split": self.split, "original_size": (self.width, self.height), "crowd": self.crowd}
        return Target(boxes=boxes.astype(np.float32), mask=self.union_mask(instances),
                      instance_masks=instances, empty=self.empty, group=self.group, extras=extras)

    def same_ground_truth(self, other: "Sample") -> bool:
        """True when both samples hold the same expression(s), image, boxes, masks, empty flag and group."""
        return (self.expressions == other.expressions and self.width == other.width
                and self.height == other.height and os.path.basename(self.image_path)
                == os.path.basename(other.image_path) and self.empty == other.empty
                and self.group == other.group and self.crowd == other.crowd
                and np.array_equal(self.boxes, other.boxes)
                and np.array_equal(self.instance_masks(), other.instance_masks()))

    def summary(self) -> dict[str, Any]:
        """A small JSON-friendly description (debugging, reports)."""
        return {"sample_id": self.sample_id, "dataset": self.dataset, "split": self.split,
                "expression": self.expression, "image": self.image_path, "size": [self.width, self.height],
                "boxes": self.boxes.tolist(), "empty": self.empty, "group": self.group}
