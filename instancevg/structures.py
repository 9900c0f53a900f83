"""The records that flow between stages (one flow for every backend).

``RawOutputs`` is what every backend computes (names = ONNX output names); ``Prediction`` is what the
shared post-processing makes of it for one sample; ``Target`` is the ground truth of one sample at the
evaluation resolution, as the metrics consume it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

RAW_OUTPUT_NAMES = ("class_logits", "boxes", "points", "instance_mask_logits", "global_mask_logits",
                    "exist_logits")
INPUT_NAMES = ("image", "text_ids", "text_pad_mask")


@dataclass
class RawOutputs:
    """Network outputs of a batch (torch tensors or numpy arrays).

    class_logits [B,N,2] ([target, no-object]); boxes [B,N,4] cxcywh in [0,1]; points [B,N,2] (x, y) in
    [0,1]; instance_mask_logits [B,N,H/4,W/4]; global_mask_logits [B,1,H/4,W/4]; exist_logits [B,2]
    ([exists, empty]).
    """

    class_logits: Any
    boxes: Any
    points: Any
    instance_mask_logits: Any
    global_mask_logits: Any
    exist_logits: Any

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in RAW_OUTPUT_NAMES}

    @classmethod
    def from_dict(cls, outputs: dict) -> "RawOutputs":
        missing = [n for n in RAW_OUTPUT_NAMES if n not in outputs]
        if missing:
            raise KeyError(f"raw outputs lack {missing}; expected {list(RAW_OUTPUT_NAMES)}")
        return cls(**{n: outputs[n] for n in RAW_OUTPUT_NAMES})

    def numpy(self) -> "RawOutputs":
        def conv(x):
            return x.detach().cpu().float().numpy() if hasattr(x, "detach") else np.asarray(x)
        return RawOutputs(**{n: conv(v) for n, v in self.as_dict().items()})


@dataclass
class Prediction:
    """Post-processed output of one sample at the evaluation resolution (H, W).

    boxes [N,4] float32 xyxy pixels and scores [N] float32, every query sorted by score descending;
    mask [H,W] bool, the final output mask; selected [N] bool, queries with score > thr_q;
    instance_masks [N,H,W] bool (thr_m applied), in the same order; points [N,2] (x, y) pixels;
    exist_prob: sigmoid(exist_logits[0]); query_index [N]: the query each row came from.
    ``instance_masks`` and ``points`` may be None when read back from a predictions file.
    """

    boxes: np.ndarray
    scores: np.ndarray
    mask: np.ndarray
    selected: Optional[np.ndarray] = None
    instance_masks: Optional[np.ndarray] = None
    points: Optional[np.ndarray] = None
    exist_prob: Optional[float] = None
    query_index: Optional[np.ndarray] = None  # [N] the network's query order of each row


@dataclass
class Target:
    """Ground truth of one sample at the evaluation resolution (H, W).

    boxes [K,4] float32 xyxy pixels (K = 0 for no-target samples); mask [H,W] bool, union of the
    instances; instance_masks [K,H,W] bool; empty: no target; group: R-RefCOCO group index or None.
    """

    boxes: np.ndarray
    mask: np.ndarray
    instance_masks: Optional[np.ndarray] = None
    empty: bool = False
    group: Optional[int] = None
    extras: dict = field(default_factory=dict)
