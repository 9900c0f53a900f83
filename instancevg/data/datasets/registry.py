"""The benchmark registry: every benchmark of the paper by name, its files, splits and metric suite.

Data root layout (both formats may live under one root; ``format="auto"`` prefers the unified one):

Unified (official InstanceVG JSONs, ``InstanceVG_Data``), annotations under ``<root>/annotations/`` (the
official ``data/seqtr_type/annotations``) or directly under ``<root>/``::

    annotations/mixed-seg/instances_nogoogle.json   RefCOCO, RefCOCO+, RefCOCOg (one file, split keys
                                                    val_refcoco_unc, ..., test_refcocog_umd, train = the
                                                    official mixed training set of the three)
    annotations/grefs/instances.json                gRefCOCO (train/val/testA/testB)
    annotations/ref-zom/instance.json               Ref-ZOM (train/test)
    annotations/rrefcoco/instance.json              R-RefCOCO/+/g (train, val_rrefcoco, val_rrefcoco+,
    annotations/rrefcoco/instance_index.json        val_rrefcocog) + their [start, end) groups
    images/mscoco/train2014/COCO_train2014_%012d.jpg
    images/mscoco/trainval2014/<file_name>          Ref-ZOM (COCO train2014 + val2014 merged)

Original releases (refer-API folders, as lichengunc/refer, ReLA, RIS-DMMI and robust-ref-seg ship them)::

    refcoco/   refs(unc).p  instances.json          refcoco+/ refs(unc).p  instances.json
    refcocog/  refs(umd).p  instances.json          grefcoco/ grefs(unc).json (or .p) instances.json
    ref-zom/   refs(final).p instances.json         (RIS-DMMI renames Ref-ZOM(final).p to refs(final).p)
    rrefcoco/  refs(unc).p  instances.json          rrefcoco+/ refs(unc).p  instances.json
    rrefcocog/ refs(umd).p  instances.json          (splitBy unverified: refs(unc).p is accepted too)
    images: the same folders as above, the file named by instances.json ``images[].file_name``; refer's own
    ``images/mscoco/images/train2014`` is accepted as a fallback.

Split names are the benchmark's own (``val``, ``testA``, ``testB``, ``test``, ``train``); the unified JSON
key (``val_refcoco_unc``, ...) is accepted as an alias.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from instancevg.data.datasets.base import DatasetError, SampleDataset, first_existing

UNIFIED = "unified"
ORIGINAL = "original"
FORMATS = (UNIFIED, ORIGINAL)
ANNOTATION_DIRS = ("annotations", "")  # unified JSONs: <root>/annotations/<file>, else <root>/<file>
TRAIN2014 = ("images/mscoco/train2014", "images/mscoco/images/train2014", "images/train2014")
TRAINVAL2014 = ("images/mscoco/trainval2014", "trainval2014")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of the paper.

    family: reader family ("refcoco", "grefcoco", "refzom", "rrefcoco").
    splits: evaluation splits; train_split: the training split.
    unified_files: candidate paths of the unified JSON relative to an annotation dir (first found wins);
    unified_split_keys: split -> key of the unified JSON; unified_index_files: R-RefCOCO group ranges.
    original_dir: folder of the original release; original_refs: candidate refs files in it.
    image_dirs: candidate image folders relative to the data root (first existing wins).
    max_tokens: text length of the official config; paper_tables: where the paper reports it;
    metrics: evaluator names of its metric suite.
    """

    name: str
    title: str
    family: str
    splits: tuple[str, ...]
    max_tokens: int
    paper_tables: tuple[str, ...]
    metrics: tuple[str, ...]
    unified_files: tuple[str, ...]
    unified_split_keys: dict = field(default_factory=dict)
    unified_index_files: tuple[str, ...] = ()
    original_dir: str = ""
    original_refs: tuple[str, ...] = ()
    image_dirs: tuple[str, ...] = TRAIN2014
    train_split: str = "train"

    @property
    def all_splits(self) -> tuple[str, ...]:
        return (self.train_split,) + self.splits

    def unified_key(self, split: str) -> str:
        return self.unified_split_keys.get(split, split)

    def resolve_split(self, split: str) -> str:
        """Benchmark split name for ``split`` (or its unified-JSON alias); error lists the valid ones."""
        if split in self.all_splits:
            return split
        for name in self.all_splits:
            if self.unified_key(name) == split:
                return name
        raise DatasetError(f"unknown split {split!r} for benchmark {self.name!r}; expected one of "
                           f"{', '.join(self.all_splits)}")


_REFCOCO_UNIFIED = ("mixed-seg/instances_nogoogle.json", "mixed-seg/instances_nogoogle_withid.json")
_GREF_UNIFIED = ("grefs/instances.json", "grefs/instance.json")
_RREF_UNIFIED = ("rrefcoco/instance.json",)  # never ".../instances.json": the original folder has that name
_RREF_INDEX = ("rrefcoco/instance_index.json",)


def _refcoco(name: str, title: str, key: str, split_by: str, splits: tuple[str, ...]) -> Benchmark:
    return Benchmark(name=name, title=title, family="refcoco", splits=splits, max_tokens=20,
                     paper_tables=("Table 1 (REC)", "Table 2 (RES)"), metrics=("rec", "res"),
                     unified_files=_REFCOCO_UNIFIED,
                     unified_split_keys={s: f"{s}_{key}_{split_by}" for s in splits},
                     original_dir=name, original_refs=(f"refs({split_by}).p",))


def _rrefcoco(name: str, title: str, refs: tuple[str, ...]) -> Benchmark:
    return Benchmark(name=name, title=title, family="rrefcoco", splits=("val",), max_tokens=50,
                     paper_tables=("Table 5",), metrics=("rrefcoco",), unified_files=_RREF_UNIFIED,
                     unified_split_keys={"val": f"val_{name}"}, unified_index_files=_RREF_INDEX,
                     original_dir=name, original_refs=refs)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    _refcoco("refcoco", "RefCOCO (unc)", "refcoco", "unc", ("val", "testA", "testB")),
    _refcoco("refcoco+", "RefCOCO+ (unc)", "refcocoplus", "unc", ("val", "testA", "testB")),
    _refcoco("refcocog", "RefCOCOg (umd)", "refcocog", "umd", ("val", "test")),
    Benchmark(name="grefcoco", title="gRefCOCO (GREC, GRES)", family="grefcoco", splits=("val", "testA", "testB"),
              max_tokens=50, paper_tables=("Table 3 (GRES)", "Table 6 (GREC)"), metrics=("grec", "gres"),
              unified_files=_GREF_UNIFIED, original_dir="grefcoco",
              original_refs=("grefs(unc).json", "grefs(unc).p")),
    Benchmark(name="refzom", title="Ref-ZOM", family="refzom", splits=("test",), max_tokens=50,
              paper_tables=("Table 4",), metrics=("refzom",), unified_files=("ref-zom/instance.json",),
              original_dir="ref-zom", original_refs=("refs(final).p",), image_dirs=TRAINVAL2014),
    _rrefcoco("rrefcoco", "R-RefCOCO", ("refs(unc).p",)),
    _rrefcoco("rrefcoco+", "R-RefCOCO+", ("refs(unc).p",)),
    _rrefcoco("rrefcocog", "R-RefCOCOg", ("refs(umd).p", "refs(unc).p")),
)}


def get_benchmark(name: str) -> Benchmark:
    """The registry entry called ``name``; the error lists the known names."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise DatasetError(f"unknown benchmark {name!r}; expected one of {', '.join(BENCHMARKS)}") from None


# ------------------------------------------------------------------------------------------ files
def _annotation_candidates(data_root: str, rel_paths: tuple[str, ...]) -> list[str]:
    return [os.path.join(data_root, d, rel) for d in ANNOTATION_DIRS for rel in rel_paths]


def unified_files(benchmark: Benchmark, data_root: str) -> Optional[tuple[str, Optional[str]]]:
    """(annotation JSON, index JSON or None) found under data_root, or None when the JSON is absent."""
    ann = first_existing(_annotation_candidates(data_root, benchmark.unified_files))
    if ann is None:
        return None
    index = None
    if benchmark.unified_index_files:
        index = first_existing([os.path.join(os.path.dirname(ann), os.path.basename(p))
                                for p in benchmark.unified_index_files])
        index = index or first_existing(_annotation_candidates(data_root, benchmark.unified_index_files))
    return ann, index


def original_files(benchmark: Benchmark, data_root: str) -> Optional[tuple[str, str]]:
    """(refs file, instances.json) of the original release under data_root, or None when incomplete."""
    folder = os.path.join(data_root, benchmark.original_dir)
    refs = first_existing([os.path.join(folder, r) for r in benchmark.original_refs])
    instances = os.path.join(folder, "instances.json")
    if refs is None or not os.path.isfile(instances):
        return None
    return refs, instances


def expected_files(benchmark: Benchmark, data_root: str) -> str:
    """Human-readable list of what a format would need (for 'not found' errors)."""
    uni = " or ".join(_annotation_candidates(data_root, benchmark.unified_files[:1]))
    if benchmark.unified_index_files:
        uni += " (+ " + os.path.basename(benchmark.unified_index_files[0]) + " next to it)"
    folder = os.path.join(data_root, benchmark.original_dir)
    orig = " or ".join(os.path.join(folder, r) for r in benchmark.original_refs)
    return f"unified: {uni}; original: {orig} + {os.path.join(folder, 'instances.json')}"


def image_dir(benchmark: Benchmark, data_root: str, image_root: Optional[str] = None) -> str:
    """Image folder: ``image_root`` when given, else the first existing candidate (else the first one)."""
    if image_root is not None:
        return image_root
    candidates = [os.path.join(data_root, d) for d in benchmark.image_dirs]
    return first_existing(candidates) or candidates[0]


def detect_format(benchmark: Benchmark, data_root: str) -> Optional[str]:
    """"unified" when its JSON is present, else "original" when its files are, else None."""
    if unified_files(benchmark, data_root) is not None:
        return UNIFIED
    if original_files(benchmark, data_root) is not None:
        return ORIGINAL
    return None


# ------------------------------------------------------------------------------------------ API
def open_dataset(name: str, split: str, data_root: str, format: str = "auto",
                 image_root: Optional[str] = None) -> SampleDataset:
    """Read one split of a benchmark into a ``SampleDataset`` (len, getitem -> Sample).

    format: "unified", "original" or "auto" (unified when present, else original). image_root
    overrides the image folder. Raises DatasetError naming the expected files when none are found, and
    the valid splits for an unknown split. Nothing random: evaluation items holding several expressions
    use the first one (the whole list stays in ``Sample.expressions``).
    """
    # Imported here: the readers import the registry's helpers.
    from instancevg.data.datasets import original, unified

    benchmark = get_benchmark(name)
    split = benchmark.resolve_split(split)
    if format not in FORMATS + ("auto",):
        raise DatasetError(f"unknown format {format!r}; expected 'auto', {', '.join(map(repr, FORMATS))}")
    if not os.path.isdir(data_root):
        raise DatasetError(f"data root {data_root} is not a directory; expected {expected_files(benchmark, data_root)}")
    chosen = detect_format(benchmark, data_root) if format == "auto" else format
    if chosen == UNIFIED:
        files = unified_files(benchmark, data_root)
        if files is None:
            raise DatasetError(f"{name}: no unified annotation found under {data_root}; expected "
                               f"{expected_files(benchmark, data_root).split('; ')[0]}")
        return unified.read_split(benchmark, split, files[0], files[1], image_dir(benchmark, data_root, image_root))
    if chosen == ORIGINAL:
        files = original_files(benchmark, data_root)
        if files is None:
            raise DatasetError(f"{name}: no original release found under {data_root}; expected "
                               f"{expected_files(benchmark, data_root).split('; ')[1]}")
        return original.read_split(benchmark, split, files[0], files[1], image_dir(benchmark, data_root, image_root))
    raise DatasetError(f"{name}: no annotation files found under {data_root}; expected "
                       f"{expected_files(benchmark, data_root)}")


def available_benchmarks(data_root: str) -> dict[str, str]:
    """{benchmark name: format found} for every benchmark whose files exist under data_root, in
    registry (paper) order. Only files are checked; a unified JSON lacking a split fails at open time."""
    found = {}
    for name, benchmark in BENCHMARKS.items():
        fmt = detect_format(benchmark, data_root) if os.path.isdir(data_root) else None
        if fmt is not None:
            found[name] = fmt
    return found
