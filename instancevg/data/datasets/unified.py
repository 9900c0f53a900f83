"""Reader of the official InstanceVG unified JSONs (``{split_key: [items]}``).

Item schemas (as the official InstanceVG loaders read them):
- RefCOCO family: ``{image_id, expressions: [str], bbox: [x,y,w,h], mask: polygons | RLE, width, height}``;
  one instance; image ``COCO_train2014_%012d.jpg``.
- gRefCOCO: ``{image_id, expressions: {raw: str | [str]}, annotations: [{bbox, segmentation}], width,
  height}``; instances = annotations with a non-empty segmentation, no-target when there is none (an
  annotation without segmentation is a no-target placeholder and is ignored); image from image_id.
  An optional ``iscrowd`` per annotation marks crowd instances (left out of the GRES union).
- Ref-ZOM: gRefCOCO's schema plus ``file_name`` (under ``trainval2014``); ``source == "zero"`` (written by
  our converter), when present, also marks a no-target item.
- R-RefCOCO/+/g: an item is a LIST of gRefCOCO-schema dicts with ``file_name`` (the official loader draws one
  at random, even at evaluation: never done here). Each dict becomes one Sample: sample_id = the item
  position when the item holds one dict (evaluation items do), else ``"<position>:<k>"`` (training).
  ``exist: false`` in a dict, when present, marks a negative. Groups come from ``instance_index.json``
  ``{split_key: [[start, end), ...]}`` over item positions; they must tile the split exactly.

sample_id is the item's integer position in its split's list. Items holding several expressions (train)
give one Sample with ``expressions`` = all of them and ``expression`` = the first.
"""
from __future__ import annotations

import os
from typing import Any, Optional

from instancevg.data.datasets.base import (DatasetError, SampleDataset, boxes_array, load_json, require,
                                          xywh_to_xyxy)
from instancevg.data.masks import is_empty_segmentation
from instancevg.data.sample import Sample

COCO_TRAIN_NAME = "COCO_train2014_%012d.jpg"


def read_split(benchmark, split: str, ann_file: str, index_file: Optional[str], image_dir: str) -> SampleDataset:
    """All samples of ``split`` of ``benchmark`` from the unified JSON ``ann_file``."""
    data = load_json(ann_file)
    key = benchmark.unified_key(split)
    if not isinstance(data, dict):
        raise DatasetError(f"{ann_file}: expected a JSON object {{split: [items]}}, got {type(data).__name__}")
    if key not in data:
        raise DatasetError(f"{ann_file} has no split {key!r} (benchmark {benchmark.name}, split {split}); "
                           f"it has {', '.join(sorted(data)) or 'no splits'}")
    items = data[key]
    if not isinstance(items, list):
        raise DatasetError(f"{ann_file} [{key!r}]: expected a list of items, got {type(items).__name__}")
    files = (ann_file,)
    if benchmark.family == "refcoco":
        samples = [_refcoco_sample(item, i, benchmark, split, image_dir, f"{ann_file} [{key!r}][{i}]")
                   for i, item in enumerate(items)]
    elif benchmark.family in ("grefcoco", "refzom"):
        samples = [_gres_sample(item, i, benchmark, split, image_dir, f"{ann_file} [{key!r}][{i}]")
                   for i, item in enumerate(items)]
    elif benchmark.family == "rrefcoco":
        groups = _read_groups(benchmark, split, key, index_file, len(items), ann_file)
        samples = []
        for i, item in enumerate(items):
            where = f"{ann_file} [{key!r}][{i}]"
            if not isinstance(item, list) or not item:
                raise DatasetError(f"{where}: an R-RefCOCO item must be a non-empty list of annotation dicts")
            for k, record in enumerate(item):
                sample_id = i if len(item) == 1 else f"{i}:{k}"
                samples.append(_gres_sample(record, sample_id, benchmark, split, image_dir, f"{where}[{k}]",
                                            group=groups[i] if groups else None))
        if index_file:
            files = (ann_file, index_file)
    else:  # a registry entry with an unknown family is a programming error
        raise AssertionError(f"unknown family {benchmark.family!r}")
    return SampleDataset(samples, benchmark.name, split, "unified", files)


def _expressions(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, dict):
        raw = require(raw, "raw", where + " expressions")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) for e in raw):
        raise DatasetError(f"{where}: expressions must be a non-empty list of strings (or {{raw: ...}}), "
                           f"got {raw!r}")
    return tuple(raw)


def _size(item: dict, where: str) -> tuple[int, int]:
    return int(require(item, "width", where)), int(require(item, "height", where))


def _refcoco_sample(item: Any, index: int, benchmark, split: str, image_dir: str, where: str) -> Sample:
    width, height = _size(item, where)
    image_id = int(require(item, "image_id", where))
    expressions = _expressions(require(item, "expressions", where), where)
    bbox = require(item, "bbox", where)
    mask = require(item, "mask", where)
    return Sample(sample_id=index, image_path=os.path.join(image_dir, COCO_TRAIN_NAME % image_id),
                  expression=expressions[0], expressions=expressions, width=width, height=height,
                  boxes=boxes_array([xywh_to_xyxy(bbox, where)]), segmentations=(mask,), empty=False,
                  dataset=benchmark.name, split=split,
                  extras={"image_id": image_id, "bboxes_xywh": [list(bbox)],
                          **{k: item[k] for k in ("ref_id", "sent_id", "category_id") if k in item}})


def _gres_sample(item: Any, sample_id, benchmark, split: str, image_dir: str, where: str,
                 group: Optional[int] = None) -> Sample:
    width, height = _size(item, where)
    expressions = _expressions(require(item, "expressions", where), where)
    annotations = require(item, "annotations", where)
    if not isinstance(annotations, list):
        raise DatasetError(f"{where}: annotations must be a list, got {type(annotations).__name__}")
    negative = item.get("exist", True) is False or item.get("source") == "zero"
    boxes, segs, crowd, bboxes = [], [], [], []
    for j, ann in enumerate(annotations):
        seg = ann.get("segmentation") if isinstance(ann, dict) else None
        if negative or is_empty_segmentation(seg):
            continue  # no-target placeholder (or a negative sentence inheriting its ref's annotation)
        bbox = require(ann, "bbox", f"{where} annotations[{j}]")
        boxes.append(xywh_to_xyxy(bbox, f"{where} annotations[{j}]"))
        bboxes.append(list(bbox))
        segs.append(seg)
        crowd.append(bool(ann.get("iscrowd", 0)) and benchmark.family == "grefcoco")
    if "file_name" in item:
        image_path = os.path.join(image_dir, item["file_name"])
    else:
        image_path = os.path.join(image_dir, COCO_TRAIN_NAME % int(require(item, "image_id", where)))
    extras = {"bboxes_xywh": bboxes}
    extras.update({k: item[k] for k in ("image_id", "file_name", "ref_id", "sent_id", "source", "exist")
                   if k in item})
    return Sample(sample_id=sample_id, image_path=image_path, expression=expressions[0],
                  expressions=expressions, width=width, height=height, boxes=boxes_array(boxes),
                  segmentations=tuple(segs), crowd=tuple(crowd), empty=not segs, dataset=benchmark.name,
                  split=split, group=group, extras=extras)


def _read_groups(benchmark, split: str, key: str, index_file: Optional[str], num_items: int,
                 ann_file: str) -> Optional[list[int]]:
    """Group index of every item from instance_index.json, or None (train has no groups)."""
    if split == benchmark.train_split:
        return None
    if index_file is None:
        raise DatasetError(f"{benchmark.name}/{split}: {os.path.join(os.path.dirname(ann_file), 'instance_index.json')} "
                           f"does not exist; expected the [start, end) groups of {key!r} there")
    index = load_json(index_file)
    if not isinstance(index, dict) or key not in index:
        raise DatasetError(f"{index_file} has no groups for split {key!r}; expected {{{key!r}: [[start, end], ...]}}")
    groups = [None] * num_items
    expected_start = 0
    for g, pair in enumerate(index[key]):
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or int(pair[0]) != expected_start
                or int(pair[1]) <= int(pair[0])):
            raise DatasetError(f"{index_file} [{key!r}][{g}] = {pair!r}: expected [start, end) ranges that "
                               f"tile the split in order, starting at {expected_start}")
        for i in range(int(pair[0]), min(int(pair[1]), num_items)):
            groups[i] = g
        expected_start = int(pair[1])
    if expected_start != num_items:
        raise DatasetError(f"{index_file} [{key!r}]: the groups end at {expected_start}, but {ann_file} "
                           f"[{key!r}] holds {num_items} items; expected them to cover every item")
    return groups
