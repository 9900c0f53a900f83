"""instancevg-convert: an original release -> the official InstanceVG unified JSONs.

    instancevg-convert --dataset refcoco refcoco+ refcocog --source DATA -o DATA
    instancevg-convert --dataset grefcoco --source DATA -o OUT --splits val testA

--source is a data root holding the original releases (layout: instancevg/data/datasets/registry.py);
-o is a data root that receives annotations/<unified file> (it may be the source itself;
images are not copied: they stay under images/ of whichever root open_dataset is given).

What is written (one JSON per family, merged into an existing file: keys not being written are kept):
- evaluation splits: one item per (ref, sentence), in the original order, so the unified sample_id i is the
  i-th sample of the original release; R-RefCOCO items are one-element lists and instance_index.json
  gets the [start, end) range of every ref (group).
- train: one item per ref holding all its sentences (expressions list / expressions.raw list;
  R-RefCOCO: a list of one dict per sentence, negatives included), as the official training loaders
  expect. RefCOCO/+/g and R-RefCOCO/+/g share one train key: it is the concatenation of the trains of
  the family members given in this call (pass all three for the official mixed training set).
Extra keys (ref_id, sent_ids, iscrowd, source, exist) are written for provenance; the official loaders
ignore them. Files are written atomically (temporary file + os.replace).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Iterable, Optional, Sequence

from tqdm import tqdm

from instancevg.cli.arguments import (CommandError, add_output_argument, add_progress_argument, check_writable,
                                     make_parser, run_command)
from instancevg.data.datasets import original
from instancevg.data.datasets.base import DatasetError, load_json
from instancevg.data.datasets.registry import (ANNOTATION_DIRS, BENCHMARKS, Benchmark, expected_files,
                                               get_benchmark, image_dir, original_files)
from instancevg.data.sample import Sample
from instancevg.io import write_json_atomic


# ------------------------------------------------------------------------------------------ items
def _runs_by_ref(samples: Sequence[Sample]) -> list[list[Sample]]:
    """Consecutive samples of the same ref (the original reader yields a ref's sentences together)."""
    runs: list[list[Sample]] = []
    for s in samples:
        if runs and runs[-1][0].extras["ref_id"] == s.extras["ref_id"]:
            runs[-1].append(s)
        else:
            runs.append([s])
    return runs


def _annotations(sample: Sample) -> list[dict]:
    return [{"id": ann_id, "bbox": bbox, "segmentation": seg, "iscrowd": int(crowd)}
            for ann_id, bbox, seg, crowd in zip(sample.extras["ann_ids"], sample.extras["bboxes_xywh"],
                                                sample.segmentations, sample.crowd)]


def _refcoco_item(run: list[Sample]) -> dict:
    first = run[0]
    return {"image_id": first.extras["image_id"], "ref_id": first.extras["ref_id"],
            "sent_ids": [s.extras["sent_id"] for s in run], "expressions": [s.expression for s in run],
            "bbox": first.extras["bboxes_xywh"][0], "mask": first.segmentations[0],
            "width": first.width, "height": first.height}


def _gres_item(run: list[Sample], family: str, train: bool) -> dict:
    first = run[0]
    item = {"image_id": first.extras["image_id"], "ref_id": first.extras["ref_id"],
            "sent_ids": [s.extras["sent_id"] for s in run],
            "expressions": {"raw": [s.expression for s in run] if train else first.expression},
            "annotations": _annotations(first), "width": first.width, "height": first.height}
    if family == "refzom":
        item["file_name"] = first.extras["file_name"]
        item["source"] = first.extras.get("source", "one")
    return item


def _rrefcoco_record(sample: Sample) -> dict:
    return {"image_id": sample.extras["image_id"], "file_name": sample.extras["file_name"],
            "ref_id": sample.extras["ref_id"], "sent_id": sample.extras["sent_id"],
            "expressions": {"raw": sample.expression}, "annotations": _annotations(sample),
            "width": sample.width, "height": sample.height, "exist": not sample.empty}


def unified_items(benchmark: Benchmark, samples: Sequence[Sample], train: bool) -> tuple[list, list]:
    """(items, groups) of one split; groups are R-RefCOCO [start, end) ranges (evaluation splits)."""
    family = benchmark.family
    runs = _runs_by_ref(samples) if train else [[s] for s in samples]
    if family == "refcoco":
        return [_refcoco_item(run) for run in runs], []
    if family in ("grefcoco", "refzom"):
        return [_gres_item(run, family, train) for run in runs], []
    items = [[_rrefcoco_record(s) for s in run] for run in runs]
    groups: list = []
    if not train:
        for i, s in enumerate(samples):
            if groups and samples[groups[-1][0]].group == s.group:
                groups[-1][1] = i + 1
            else:
                groups.append([i, i + 1])
    return items, groups


# ------------------------------------------------------------------------------------------ release
def convert_release(datasets: Iterable[str], source: str, output: str, splits: Optional[Iterable[str]] = None,
                    progress: bool = True) -> list[str]:
    """Convert the original releases of ``datasets`` under ``source`` into unified JSONs under
    ``output/annotations``; returns the files written. ``splits``: benchmark split names (default: all,
    train included); a split a benchmark lacks is skipped, a split no benchmark has is an error."""
    benchmarks = [get_benchmark(name) for name in dict.fromkeys(datasets)]
    if not benchmarks:
        raise DatasetError("no dataset to convert; expected one or more of " + ", ".join(BENCHMARKS))
    wanted = None if splits is None else list(dict.fromkeys(splits))
    if wanted is not None:
        unknown = [s for s in wanted if not any(s in b.all_splits for b in benchmarks)]
        if unknown:
            raise DatasetError(f"unknown split(s) {unknown} for {', '.join(b.name for b in benchmarks)}; "
                               f"expected some of {sorted({s for b in benchmarks for s in b.all_splits})}")
    by_file: dict[str, list[Benchmark]] = {}
    for b in benchmarks:
        by_file.setdefault(b.unified_files[0], []).append(b)

    written = []
    for rel_path, members in by_file.items():
        out_path = os.path.join(output, ANNOTATION_DIRS[0], rel_path)
        data = load_json(out_path) if os.path.isfile(out_path) else {}
        index_path = (os.path.join(os.path.dirname(out_path), os.path.basename(members[0].unified_index_files[0]))
                      if members[0].unified_index_files else None)
        index = load_json(index_path) if index_path and os.path.isfile(index_path) else {}
        shared_train: dict[str, list] = {}
        for b in members:
            files = original_files(b, source)
            if files is None:
                raise DatasetError(f"{b.name}: no original release under {source}; expected "
                                   f"{expected_files(b, source).split('; ')[1]}")
            for split in (s for s in b.all_splits if wanted is None or s in wanted):
                dataset = original.read_split(b, split, files[0], files[1], image_dir(b, source))
                train = split == b.train_split
                samples = list(tqdm(dataset, desc=f"convert {b.name}/{split}", unit="sample", leave=False,
                                    disable=not progress))
                items, groups = unified_items(b, samples, train)
                key = b.unified_key(split)
                if train:
                    shared_train.setdefault(key, []).extend(items)
                else:
                    data[key] = items
                    if index_path is not None:
                        index[key] = groups
        data.update(shared_train)
        if index_path is not None:
            write_json_atomic(index_path, index, indent=None)
            written.append(index_path)
        write_json_atomic(out_path, data, indent=None)
        written.append(out_path)
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("instancevg-convert", __doc__)
    parser.add_argument("--dataset", nargs="+", required=True, metavar="NAME",
                        help=f"benchmark(s): {', '.join(BENCHMARKS)}, or 'all' (every release found)")
    parser.add_argument("--source", required=True, help="data root holding the original releases")
    add_output_argument(parser, "data root receiving annotations/<unified files> (it may be --source itself)",
                        required=True)
    parser.add_argument("--splits", nargs="+", default=None, help="split names (default: every split)")
    add_progress_argument(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    check_writable(args.output, "-o", "folder")
    names = args.dataset
    if names == ["all"]:
        names = [n for n, b in BENCHMARKS.items() if original_files(b, args.source) is not None]
        if not names:
            raise CommandError(f"no original release found under {args.source}")
    for path in convert_release(names, args.source, args.output, args.splits, progress=not args.no_progress):
        print(f"wrote {path}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    return run_command("instancevg-convert", run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
