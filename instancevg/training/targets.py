"""Training targets of a batch, in the form the matcher and the losses consume (official
``prepare_targets``): boxes normalised cxcywh, instance masks and the union mask at the input size.

Built from per-sample ground truth at the network input size S (``Sample.to_target(S)``: boxes clipped
at the original size then scaled, masks resized nearest, as the official preprocessing does).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..boxes import box_xyxy_to_cxcywh


@dataclass
class TrainTargets:
    """Ground truth of a batch of B samples at input size S.

    boxes: B tensors [K_b, 4] float32, cxcywh normalised by S (K_b = 0 for a no-target sample);
    instance_masks: B tensors [K_b, S, S] float32 (0/1), aligned with ``boxes``;
    union_masks: [B, S, S] float32 (0/1), the union mask (all zero for a no-target sample);
    is_empty: [B] int64, 1 for a no-target sample (the existence class; 1 = "empty").
    """

    boxes: list[torch.Tensor]
    instance_masks: list[torch.Tensor]
    union_masks: torch.Tensor
    is_empty: torch.Tensor

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def num_boxes(self) -> int:
        """GT boxes in this (local) batch."""
        return sum(int(b.shape[0]) for b in self.boxes)

    def to(self, device) -> "TrainTargets":
        return TrainTargets([b.to(device) for b in self.boxes], [m.to(device) for m in self.instance_masks],
                            self.union_masks.to(device), self.is_empty.to(device))


def normalise_boxes(boxes_xyxy: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """[K, 4] xyxy pixels at the input size -> [K, 4] float32 cxcywh divided by the size."""
    boxes = torch.as_tensor(np.asarray(boxes_xyxy, dtype=np.float32)).reshape(-1, 4)
    return box_xyxy_to_cxcywh(boxes / float(size))


def make_targets(boxes_xyxy: Sequence, instance_masks: Sequence, union_masks: Sequence, empty: Sequence[bool],
                 size: int) -> TrainTargets:
    """Batch the per-sample ground truth (numpy or torch).

    Args: B items each of boxes_xyxy [K,4] pixels at ``size``, instance_masks [K,size,size] (bool/0-1),
    union_masks [size,size]; empty: B flags. A sample flagged empty must have no box (the reader
    guarantees it; official ``prepare_targets`` drops the boxes of an empty sample).
    """
    if not (len(boxes_xyxy) == len(instance_masks) == len(union_masks) == len(empty)):
        raise ValueError("make_targets: boxes, instance masks, union masks and empty flags differ in length")
    boxes, masks = [], []
    for b, (box, inst, flag) in enumerate(zip(boxes_xyxy, instance_masks, empty)):
        box = normalise_boxes(box, size)
        inst = torch.as_tensor(np.asarray(inst)).float().reshape(-1, size, size)
        if flag:
            box, inst = box[:0], inst[:0]
        if box.shape[0] != inst.shape[0]:
            raise ValueError(f"make_targets: sample {b} has {box.shape[0]} boxes but {inst.shape[0]} instance masks")
        boxes.append(box)
        masks.append(inst)
    union = torch.stack([torch.as_tensor(np.asarray(m)).float().reshape(size, size) for m in union_masks])
    is_empty = torch.tensor([int(bool(f)) for f in empty], dtype=torch.int64)
    return TrainTargets(boxes, masks, union, is_empty)
