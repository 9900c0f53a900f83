"""The evaluator interface shared by every protocol, its per-sample records, and input checks.

Interface (like detectron2's DatasetEvaluator):

- ``reset()`` forgets every sample;
- ``process(sample_id, prediction, target)`` checks one sample, measures it and keeps a small record
  (plain ints, floats and bools: no masks, no arrays);
- ``evaluate() -> dict[str, float | int | None]`` aggregates the records in the order they were added.
  Metrics are percentages as in the official code, None where undefined on the records (an empty
  denominator: N-acc without no-target samples...); counts (``samples`` and friends) are ints.

Distributed evaluation: records are the state. Each rank processes its shard, then the runner gathers
``evaluator.records()`` from every rank (``torch.distributed.all_gather_object``: a record list is
picklable and JSON-serialisable), puts them in dataset order on rank 0 with ``merge_records`` and calls
``evaluator.load_records(merged)`` on a fresh evaluator before ``evaluate()``. Aggregating in dataset
order makes the floating-point sums, hence every metric, identical to a single-process run. A sample id
seen twice (in ``process``, ``load_records`` or ``merge_records``) is an error naming it.
"""
from __future__ import annotations

from typing import Any, ClassVar, Iterable, Optional, Sequence, Union

import numpy as np

from instancevg.structures import Prediction, Target

SampleId = Union[int, str]
Record = dict
NO_TARGET_RULES = ("score", "mask_empty")


def check_sample_id(sample_id: Any) -> SampleId:
    """Return ``sample_id`` as an int or str; anything else (bool, float, None) is an error."""
    if isinstance(sample_id, (bool, np.bool_)):
        raise TypeError(f"sample id {sample_id!r}: expected an int or a str, got a bool")
    if isinstance(sample_id, (int, np.integer)):
        return int(sample_id)
    if isinstance(sample_id, str):
        return sample_id
    raise TypeError(f"sample id {sample_id!r}: expected an int or a str, got {type(sample_id).__name__}")


def _boxes(sample_id: SampleId, boxes: Any, what: str) -> np.ndarray:
    array = np.asarray(boxes)
    if array.size == 0:
        return np.zeros((0, 4), np.float32)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"sample {sample_id!r}: {what} must have shape [N,4] (xyxy), got {array.shape}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"sample {sample_id!r}: {what} contain NaN or infinite values")
    if (array[:, 2] < array[:, 0]).any() or (array[:, 3] < array[:, 1]).any():
        raise ValueError(f"sample {sample_id!r}: {what} must satisfy x2 >= x1 and y2 >= y1 (xyxy)")
    return array


def _mask(sample_id: SampleId, mask: Any, what: str) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"sample {sample_id!r}: {what} must have shape [H,W], got {array.shape}")
    if array.dtype == bool:
        return array
    if np.issubdtype(array.dtype, np.integer) and (array.size == 0 or (array.min() >= 0 and array.max() <= 1)):
        return array.astype(bool)
    raise ValueError(f"sample {sample_id!r}: {what} must be a bool (or 0/1 integer) mask, got dtype "
                     f"{array.dtype}")


def prediction_scores(sample_id: SampleId, prediction: Prediction) -> np.ndarray:
    """Scores [N] as float32 (the dtype of the model's scores), checked."""
    scores = np.asarray(prediction.scores, dtype=np.float32)
    if scores.ndim != 1:
        raise ValueError(f"sample {sample_id!r}: prediction scores must have shape [N], got {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"sample {sample_id!r}: prediction scores contain NaN or infinite values")
    return scores


def prediction_boxes(sample_id: SampleId, prediction: Prediction) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [N,4] float32, scores [N] float32) of a prediction, checked for shape and agreement."""
    scores = prediction_scores(sample_id, prediction)
    boxes = _boxes(sample_id, prediction.boxes, "prediction boxes")
    if len(boxes) != len(scores):
        raise ValueError(f"sample {sample_id!r}: prediction has {len(boxes)} boxes but {len(scores)} scores")
    return boxes, scores


def target_boxes(sample_id: SampleId, target: Target, require_nonempty: bool = True) -> np.ndarray:
    """GT boxes [K,4] float32; K = 0 exactly when ``target.empty`` (checked when ``require_nonempty``)."""
    boxes = _boxes(sample_id, target.boxes, "target boxes")
    if target.empty and len(boxes):
        raise ValueError(f"sample {sample_id!r}: target is marked empty but has {len(boxes)} boxes")
    if require_nonempty and not target.empty and not len(boxes):
        raise ValueError(f"sample {sample_id!r}: target is not marked empty but has no boxes; a no-target "
                         "sample must have empty=True")
    return boxes


def masks_pair(sample_id: SampleId, prediction: Prediction, target: Target) -> tuple[np.ndarray, np.ndarray]:
    """(predicted mask, GT mask), both bool [H,W] of the same shape; an empty target has an empty mask."""
    pred = _mask(sample_id, prediction.mask, "prediction mask")
    gt = _mask(sample_id, target.mask, "target mask")
    if pred.shape != gt.shape:
        raise ValueError(f"sample {sample_id!r}: prediction mask has shape {pred.shape} but target mask has "
                         f"{gt.shape}; both must be at the evaluation resolution")
    if target.empty and gt.any():
        raise ValueError(f"sample {sample_id!r}: target is marked empty but its mask has "
                         f"{int(np.count_nonzero(gt))} pixels; a no-target sample must have an empty mask")
    return pred, gt


def above(values: np.ndarray, threshold: float, inclusive: bool) -> np.ndarray:
    """values >= threshold (inclusive) or values > threshold, compared in float32.

    Why float32: scores and box overlaps are float32 tensors in the official code and torch compares a
    float32 tensor with a Python float in float32. So a float32 score equal to float32(0.7) is "exactly
    0.7": kept by ``>= 0.7``, rejected by ``> 0.7``.
    """
    values = np.asarray(values, dtype=np.float32)
    threshold = np.float32(threshold)
    return values >= threshold if inclusive else values > threshold


def official_order(scores: np.ndarray, boxes: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices sorting queries like the official ``sorted(zip(scores, boxes), reverse=True)``.

    Descending by score; equal scores by descending box (x1, then y1, x2, y2). Returns int64 [N].
    """
    scores = np.asarray(scores)
    if boxes is None or len(boxes) == 0:
        keys = (scores,)
    else:
        keys = (boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0], scores)
    return np.lexsort(keys)[::-1].copy()


def predicts_no_target(sample_id: SampleId, prediction: Prediction, rule: str, thr_q: float,
                       pred_mask: Optional[np.ndarray] = None) -> bool:
    """The prediction's no-target decision.

    rule "score" (official InstanceVG, default): no score > thr_q (strict, float32 comparison).
    rule "mask_empty" (RIS-DMMI for Ref-ZOM, robust-ref-seg for R-RefCOCO): the predicted mask is empty.
    ReLA's rule (argmax of the no-target head's two logits) is not offered: a Prediction does not carry
    those logits.
    """
    if rule == "score":
        return not bool(above(prediction_scores(sample_id, prediction), thr_q, inclusive=False).any())
    if rule == "mask_empty":
        mask = pred_mask if pred_mask is not None else _mask(sample_id, prediction.mask, "prediction mask")
        return not bool(mask.any())
    raise ValueError(f"unknown no-target rule {rule!r}; expected one of {NO_TARGET_RULES}")


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {tuple(choices)}")
    return value


def check_thresholds(name: str, values: Iterable[float]) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"{name}={values!r}: expected one or more thresholds in [0, 1]")
    return values


def pr_key(threshold: float) -> str:
    """Result key of a precision threshold: 0.5 -> 'Pr@0.5' (official '{:1.1f}' naming when it fits)."""
    text = f"{threshold:1.1f}"
    return f"Pr@{text}" if float(text) == threshold else f"Pr@{threshold:g}"


class Evaluator:
    """Base class: keeps one record per sample; subclasses define ``measure`` and ``summarize``.

    Subclasses set ``name`` (registry name) and ``record_fields`` (the keys of one record) and implement
    ``measure(sample_id, prediction, target) -> dict`` and ``summarize(records) -> dict``.
    """

    name: ClassVar[str] = ""
    record_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._records: list[tuple[SampleId, Record]] = []
        self._seen: set[SampleId] = set()

    # -- interface ------------------------------------------------------------------------------------
    def reset(self) -> None:
        self._records = []
        self._seen = set()

    def process(self, sample_id: SampleId, prediction: Prediction, target: Target) -> None:
        sample_id = check_sample_id(sample_id)
        if sample_id in self._seen:
            raise ValueError(f"{self.name}: sample {sample_id!r} was already processed")
        record = self.measure(sample_id, prediction, target)
        self._records.append((sample_id, record))
        self._seen.add(sample_id)

    def evaluate(self) -> dict:
        return self.summarize([record for _, record in self._records])

    def options(self) -> dict:
        """The evaluator's settings (thresholds, rules) for reports."""
        return {}

    def __len__(self) -> int:
        return len(self._records)

    # -- distributed state ----------------------------------------------------------------------------
    def records(self) -> list[tuple[SampleId, Record]]:
        """[(sample_id, record)] in processing order; picklable and JSON-serialisable."""
        return [(sample_id, dict(record)) for sample_id, record in self._records]

    def load_records(self, records: Iterable[Sequence]) -> None:
        """Append records (from ``records()`` of this evaluator type, possibly of other processes)."""
        for item in records:
            if len(item) != 2:
                raise ValueError(f"{self.name}: a record must be (sample_id, dict), got {item!r}")
            sample_id, record = check_sample_id(item[0]), item[1]
            if not isinstance(record, dict) or set(record) != set(self.record_fields):
                got = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise ValueError(f"{self.name}: record of sample {sample_id!r} has fields {got}; expected "
                                 f"{sorted(self.record_fields)}")
            if sample_id in self._seen:
                raise ValueError(f"{self.name}: sample {sample_id!r} is already loaded")
            self._records.append((sample_id, dict(record)))
            self._seen.add(sample_id)

    # -- to implement ---------------------------------------------------------------------------------
    def measure(self, sample_id: SampleId, prediction: Prediction, target: Target) -> Record:
        raise NotImplementedError

    def summarize(self, records: list[Record]) -> dict:
        raise NotImplementedError


def merge_records(parts: Iterable[Iterable[Sequence]], order: Optional[Sequence[SampleId]] = None
                  ) -> list[tuple[SampleId, Record]]:
    """Merge per-process record lists into one list, in ``order`` (dataset order) when given.

    parts: one ``records()`` list per process. order: every sample id exactly once, in dataset order.
    Raises naming the sample on a duplicate, on a record for a sample not in ``order`` and on a sample of
    ``order`` with no record.
    """
    merged: dict[SampleId, Record] = {}
    for part in parts:
        for sample_id, record in part:
            sample_id = check_sample_id(sample_id)
            if sample_id in merged:
                raise ValueError(f"sample {sample_id!r} has records from more than one process")
            merged[sample_id] = record
    if order is None:
        return list(merged.items())
    order = [check_sample_id(s) for s in order]
    if len(set(order)) != len(order):
        raise ValueError("the sample order lists a sample more than once")
    extra = set(merged) - set(order)
    if extra:
        raise ValueError(f"records for samples not in the dataset: {sorted(map(repr, extra))[:5]}")
    missing = [s for s in order if s not in merged]
    if missing:
        raise ValueError(f"{len(missing)} samples have no record, first {missing[:5]!r}")
    return [(sample_id, merged[sample_id]) for sample_id in order]
