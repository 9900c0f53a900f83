"""Shared pieces of the readers: the dataset sequence, file loading with useful errors, box conversion."""
from __future__ import annotations

import json
import os
import pickle
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from instancevg.data.sample import Sample


class DatasetError(ValueError):
    """Bad dataset input: a missing file, an unknown benchmark or split, a malformed record.

    Messages name the file, the split or the sample and say what was expected.
    """


class SampleDataset(Sequence):
    """An ordered, read-only list of ``Sample`` (len, indexing, iteration) for one benchmark split.

    name: benchmark name; split: split name; format: "unified" or "original"; files: the annotation
    files read. Order is the file order (deterministic); evaluation shards and gathers in this order.
    """

    def __init__(self, samples: list[Sample], name: str, split: str, format: str, files: tuple[str, ...]):
        self._samples = samples
        self.name = name
        self.split = split
        self.format = format
        self.files = files
        ids = [s.sample_id for s in samples]
        if len(set(ids)) != len(ids):
            seen, dup = set(), None
            for i in ids:
                if i in seen:
                    dup = i
                    break
                seen.add(i)
            raise DatasetError(f"{name}/{split} from {', '.join(files)}: sample_id {dup!r} occurs more than "
                               f"once; expected unique ids")

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, index):
        """A Sample for an int, a list of Samples for a slice."""
        return self._samples[index]

    def __repr__(self) -> str:
        return f"SampleDataset({self.name!r}, split={self.split!r}, format={self.format!r}, {len(self)} samples)"

    def groups(self) -> list[tuple[int, int]]:
        """[start, end) index ranges of consecutive samples sharing a group (R-RefCOCO); [] otherwise."""
        ranges: list[tuple[int, int]] = []
        for i, sample in enumerate(self._samples):
            if sample.group is None:
                continue
            if ranges and self._samples[ranges[-1][0]].group == sample.group and ranges[-1][1] == i:
                ranges[-1] = (ranges[-1][0], i + 1)
            else:
                ranges.append((i, i + 1))
        return ranges


def load_json(path: str) -> Any:
    """Parse a JSON file; errors name the file."""
    if not os.path.isfile(path):
        raise DatasetError(f"annotation file {path} does not exist")
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"annotation file {path} is not valid JSON: {err}") from None


def load_pickle(path: str) -> Any:
    """Load a refer-API pickle (Python 2 pickles included: latin1 strings, as ReLA's port reads them)."""
    if not os.path.isfile(path):
        raise DatasetError(f"annotation file {path} does not exist")
    try:
        with open(path, "rb") as f:
            return pickle.load(f, fix_imports=True, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as err:
        raise DatasetError(f"annotation file {path} is not a readable pickle: {err}") from None


def xywh_to_xyxy(box: Any, where: str) -> list[float]:
    """COCO [x, y, w, h] -> [x1, y1, x2, y2] (x2 = x + w, no -1), validated."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise DatasetError(f"{where}: bbox {box!r} must be [x, y, w, h]")
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


def boxes_array(boxes: list[list[float]]) -> np.ndarray:
    """[K,4] float64 (an empty [0,4] for no-target samples)."""
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def first_existing(paths: Sequence[str]) -> Optional[str]:
    """The first path that exists, or None."""
    for path in paths:
        if os.path.exists(path):
            return path
    return None


def require(record: dict, key: str, where: str) -> Any:
    """record[key], or a DatasetError naming the record and the missing key."""
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: expected a JSON object / dict, got {type(record).__name__}")
    if key not in record:
        raise DatasetError(f"{where}: missing key {key!r} (has {sorted(record)})")
    return record[key]
