"""Training data: samples of a benchmark split -> network inputs + ground truth at the input size.

The official loader draws one of an item's expressions at random every time the item is read. Here the
draw is a function of (seed, epoch, index) only, so the data of an epoch does not depend on the worker
count, on the process that reads it, or on whether training was resumed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.sample import Sample
from ..data.tokenizer import Tokenizer
from ..data.transforms import preprocess_image
from .targets import TrainTargets, make_targets


class GroundingTrainSet(Dataset):
    """Map-style dataset over ``samples`` (e.g. ``open_dataset(name, "train", root)``).

    Item: dict with image [3,S,S] float32 (normalised), text_ids [L] int64, text_pad_mask [L] bool,
    boxes [K,4] float32 xyxy pixels at S, instance_masks [K,S,S] uint8, union_mask [S,S] uint8,
    empty bool, index int, expression str.
    Call ``set_epoch(epoch)`` before each epoch (the expression draw depends on it).
    """

    def __init__(self, samples: Sequence[Sample], tokenizer: Tokenizer, image_size: int, seed: int = 6666):
        if len(samples) == 0:
            raise ValueError("the training split holds no sample")
        self.samples = samples
        self.tokenizer = tokenizer
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def expression_index(self, index: int, count: int) -> int:
        """Which of an item's ``count`` expressions epoch ``self.epoch`` uses (seeded, reproducible)."""
        if count == 1:
            return 0
        return int(np.random.default_rng([self.seed, self.epoch, index]).integers(count))

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        expressions = sample.expressions
        expression = expressions[self.expression_index(index, len(expressions))]
        try:
            ids, pad_mask = self.tokenizer.encode(expression)
        except ValueError as err:
            raise ValueError(f"sample {sample.describe()}: {err}") from None
        image = preprocess_image(sample.load_image(), self.image_size)
        target = sample.to_target(self.image_size)
        return {"image": torch.from_numpy(image), "text_ids": torch.from_numpy(ids),
                "text_pad_mask": torch.from_numpy(pad_mask),
                "boxes": target.boxes, "instance_masks": target.instance_masks.astype(np.uint8),
                "union_mask": target.mask.astype(np.uint8), "empty": bool(target.empty), "index": int(index),
                "expression": expression}


class Batch(dict):
    """A collated batch: image [B,3,S,S], text_ids [B,L], text_pad_mask [B,L], targets (TrainTargets),
    index [B], expressions (list)."""


def collate(items: list[dict]) -> Batch:
    size = items[0]["image"].shape[-1]
    targets: TrainTargets = make_targets([it["boxes"] for it in items], [it["instance_masks"] for it in items],
                                         [it["union_mask"] for it in items], [it["empty"] for it in items], size)
    return Batch(image=torch.stack([it["image"] for it in items]),
                 text_ids=torch.stack([it["text_ids"] for it in items]),
                 text_pad_mask=torch.stack([it["text_pad_mask"] for it in items]),
                 targets=targets, index=torch.tensor([it["index"] for it in items]),
                 expressions=[it["expression"] for it in items])
