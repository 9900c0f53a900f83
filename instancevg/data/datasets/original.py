"""Reader of the original releases: refer-API refs (pickle, or gRefCOCO's JSON) + COCO ``instances.json``.

One Sample per (ref, sentence), in file order (refs, then their sentences); sample_id ``"<ref_id>:<sent_id>"``;
the expression is the sentence's ``raw`` text (``sent`` when ``raw`` is absent), as LAVT/ReLA/DMMI feed it.
Split selection follows refer's ``getRefIds``: ``train``/``val`` exact, ``test`` = every split containing
"test", ``testA``/``testB`` = splits containing "test" and that letter.

Per family:
- RefCOCO/+/g: ``ann_id`` is one COCO annotation.
- gRefCOCO: ``ann_id`` is a list (a bare int is wrapped); ``[-1]`` = no target (authoritative; the
  redundant ``no_target`` flag is not read). Crowd annotations keep their box (GREC) but leave the union
  mask (GRES).
- Ref-ZOM: ``ann_id`` int or list; ``source == "zero"`` = no target whatever ``ann_id`` holds.
- R-RefCOCO/+/g: a sentence with ``exist`` False/0 is a negative (empty GT although the ref names an
  annotation); a missing key means positive. Evaluation splits give each ref a group: its position among
  the split's refs.
"""
from __future__ import annotations

import os
from typing import Any

from instancevg.data.datasets.base import (DatasetError, SampleDataset, boxes_array, load_json, load_pickle,
                                          require, xywh_to_xyxy)
from instancevg.data.sample import Sample


class CocoIndex:
    """images and annotations of a COCO ``instances.json`` by id."""

    def __init__(self, path: str):
        data = load_json(path)
        self.path = path
        self.images = {int(require(im, "id", f"{path} images[{i}]")): im
                       for i, im in enumerate(require(data, "images", path))}
        self.anns = {int(require(a, "id", f"{path} annotations[{i}]")): a
                     for i, a in enumerate(require(data, "annotations", path))}
        self.categories = data.get("categories", [])

    def image(self, image_id: int, where: str) -> dict:
        try:
            return self.images[int(image_id)]
        except KeyError:
            raise DatasetError(f"{where}: image_id {image_id} is not in {self.path}") from None

    def ann(self, ann_id: int, where: str) -> dict:
        try:
            return self.anns[int(ann_id)]
        except KeyError:
            raise DatasetError(f"{where}: ann_id {ann_id} is not in {self.path}") from None


def load_refs(path: str) -> list[dict]:
    """The list of refs of a refer pickle or of gRefCOCO's ``grefs(unc).json``."""
    refs = load_json(path) if path.endswith(".json") else load_pickle(path)
    if not isinstance(refs, list):
        raise DatasetError(f"{path}: expected a list of refs, got {type(refs).__name__}")
    return refs


def split_matches(wanted: str, ref_split: str) -> bool:
    """refer's ``getRefIds`` split rule."""
    if wanted in ("testA", "testB", "testC"):
        return "test" in ref_split and wanted[-1] in ref_split
    if wanted == "test":
        return "test" in ref_split
    return ref_split == wanted


def read_split(benchmark, split: str, refs_file: str, instances_file: str, image_dir: str) -> SampleDataset:
    """All (ref, sentence) samples of ``split`` of ``benchmark`` from an original release."""
    refs = load_refs(refs_file)
    coco = CocoIndex(instances_file)
    evaluation = split != benchmark.train_split
    samples: list[Sample] = []
    group = 0
    for r, ref in enumerate(refs):
        where = f"{refs_file} ref #{r}"
        if not split_matches(split, str(require(ref, "split", where))):
            continue
        ref_id = require(ref, "ref_id", where)
        where = f"{refs_file} ref_id {ref_id}"
        image = coco.image(require(ref, "image_id", where), where)
        width, height = int(require(image, "width", instances_file)), int(require(image, "height", instances_file))
        image_path = os.path.join(image_dir, require(image, "file_name", f"{instances_file} image {image['id']}"))
        ann_ids = _target_ann_ids(benchmark.family, ref, where)
        anns = [coco.ann(a, where) for a in ann_ids]
        sentences = require(ref, "sentences", where)
        if not sentences:
            raise DatasetError(f"{where}: a ref needs at least one sentence")
        for sent in sentences:
            sent_id = require(sent, "sent_id", where)
            swhere = f"{where} sent_id {sent_id}"
            expression = sent.get("raw", sent.get("sent"))
            if not isinstance(expression, str):
                raise DatasetError(f"{swhere}: expected a 'raw' (or 'sent') string")
            positive = sent.get("exist", True) not in (False, 0)
            used = anns if positive else []
            samples.append(Sample(
                sample_id=f"{ref_id}:{sent_id}", image_path=image_path, expression=expression,
                width=width, height=height,
                boxes=boxes_array([xywh_to_xyxy(require(a, "bbox", swhere), f"{swhere} ann {a.get('id')}")
                                   for a in used]),
                segmentations=tuple(require(a, "segmentation", f"{swhere} ann {a.get('id')}") for a in used),
                crowd=tuple(bool(a.get("iscrowd", 0)) and benchmark.family == "grefcoco" for a in used),
                empty=not used, dataset=benchmark.name, split=split,
                group=group if (benchmark.family == "rrefcoco" and evaluation) else None,
                extras={"image_id": int(image["id"]), "file_name": image["file_name"], "ref_id": ref_id,
                        "sent_id": sent_id, "ann_ids": [int(a["id"]) for a in used],
                        "bboxes_xywh": [list(a["bbox"]) for a in used],
                        **({"source": ref["source"]} if "source" in ref else {}),
                        **({"exist": positive} if benchmark.family == "rrefcoco" else {})}))
        group += 1
    return SampleDataset(samples, benchmark.name, split, "original", (refs_file, instances_file))


def _target_ann_ids(family: str, ref: dict, where: str) -> list[int]:
    """COCO annotation ids of a ref's target(s); [] for a no-target ref."""
    if family == "refzom" and ref.get("source") == "zero":
        return []  # one-to-zero: the GT is empty whatever ann_id holds (DMMI's getMask)
    raw: Any = require(ref, "ann_id", where)
    ids = [int(a) for a in raw] if isinstance(raw, (list, tuple)) else [int(raw)]
    if family == "grefcoco" and ids == [-1]:
        return []
    if not ids or any(a < 0 for a in ids):
        raise DatasetError(f"{where}: ann_id {raw!r} names no annotation; expected COCO annotation id(s)"
                           + (" or [-1] for no target" if family == "grefcoco" else "")
                           + (" or source 'zero'" if family == "refzom" else ""))
    if family in ("refcoco", "rrefcoco") and len(ids) != 1:
        raise DatasetError(f"{where}: ann_id {raw!r}; expected exactly one annotation id")
    return ids
