"""Readers of both formats, the registry and their errors, on synthetic data."""
import json
import os
import re
import shutil

import numpy as np
import pytest

from instancevg.data.datasets import (BENCHMARKS, DatasetError, available_benchmarks, get_benchmark,
                                      open_dataset)
from instancevg.data.masks import decode_segmentation, resize_masks_nearest

EVAL_SPLITS = [(name, split) for name, b in BENCHMARKS.items() for split in b.splits]


def test_registry_suites():
    suites = {name: (b.metrics, b.max_tokens, b.splits) for name, b in BENCHMARKS.items()}
    assert suites == {
        "refcoco": (("rec", "res"), 20, ("val", "testA", "testB")),
        "refcoco+": (("rec", "res"), 20, ("val", "testA", "testB")),
        "refcocog": (("rec", "res"), 20, ("val", "test")),
        "grefcoco": (("grec", "gres"), 50, ("val", "testA", "testB")),
        "refzom": (("refzom",), 50, ("test",)),
        "rrefcoco": (("rrefcoco",), 50, ("val",)),
        "rrefcoco+": (("rrefcoco",), 50, ("val",)),
        "rrefcocog": (("rrefcoco",), 50, ("val",)),
    }
    assert all(b.paper_tables for b in BENCHMARKS.values())
    assert get_benchmark("refcoco+").resolve_split("testA_refcocoplus_unc") == "testA"


@pytest.mark.parametrize("name,split", EVAL_SPLITS)
def test_both_formats_give_the_same_samples(synthetic_root, name, split):
    uni = open_dataset(name, split, synthetic_root, format="unified")
    orig = open_dataset(name, split, synthetic_root, format="original")
    assert len(uni) == len(orig) > 0
    assert [s.sample_id for s in uni] == list(range(len(uni)))  # unified: position in the split's list
    for u, o in zip(uni, orig):
        assert o.sample_id == f"{o.extras['ref_id']}:{o.extras['sent_id']}"
        assert u.same_ground_truth(o), (u.summary(), o.summary())
        assert (u.dataset, u.split, u.expression) == (o.dataset, o.split, o.expression) == (name, split, u.expression)
    assert uni.groups() == orig.groups()


def test_family_specific_ground_truth(synthetic_root):
    gref = [s for split in ("val", "testA", "testB") for s in open_dataset("grefcoco", split, synthetic_root)]
    assert any(s.empty for s in gref) and any(s.num_instances >= 2 for s in gref)
    zom = open_dataset("refzom", "test", synthetic_root, format="original")
    assert {s.extras["source"] for s in zom} == {"one", "many", "zero"}
    assert all(s.empty == (s.extras["source"] == "zero") for s in zom)
    for name in ("rrefcoco", "rrefcoco+", "rrefcocog"):
        ds = open_dataset(name, "val", synthetic_root)
        groups = ds.groups()
        assert groups[0][0] == 0 and groups[-1][1] == len(ds)
        for g, (start, end) in enumerate(groups):
            members = ds[start:end]
            assert {s.group for s in members} == {g}
            assert any(s.empty for s in members) and any(not s.empty for s in members)
    for name in ("refcoco", "refcoco+", "refcocog"):
        assert all(s.num_instances == 1 for s in open_dataset(name, "val", synthetic_root))


def test_train_splits(synthetic_root):
    # unified RefCOCO train = the official mixed set: one item per ref with all its sentences
    uni = open_dataset("refcoco", "train", synthetic_root, format="unified")
    per_ref = [open_dataset(n, "train", synthetic_root, format="original") for n in ("refcoco", "refcoco+", "refcocog")]
    assert [e for s in uni for e in s.expressions] == [s.expression for ds in per_ref for s in ds]
    assert any(len(s.expressions) > 1 for s in uni) and all(s.expression == s.expressions[0] for s in uni)
    # unified R-RefCOCO train items hold one dict per sentence: sample ids "<position>:<k>"
    rtrain = open_dataset("rrefcoco", "train", synthetic_root, format="unified")
    assert any(isinstance(s.sample_id, str) and re.fullmatch(r"\d+:\d+", s.sample_id) for s in rtrain)
    assert any(s.empty for s in rtrain) and all(s.group is None for s in rtrain)
    for name in ("grefcoco", "refzom"):
        assert len(open_dataset(name, "train", synthetic_root)) > 0


def test_to_target_matches_direct_computation(synthetic_root):
    ds = open_dataset("grefcoco", "val", synthetic_root, format="original")
    sample = next(s for s in ds if s.num_instances >= 2)
    t = sample.to_target(64)
    inst = np.stack([decode_segmentation(seg, sample.height, sample.width) for seg in sample.segmentations])
    np.testing.assert_array_equal(t.instance_masks, resize_masks_nearest(inst, 64, 64))
    np.testing.assert_array_equal(t.mask, resize_masks_nearest(inst.any(0), 64, 64))
    assert sample.load_image().shape == (sample.height, sample.width, 3)


def test_auto_format_and_available(synthetic_root, tmp_path):
    assert set(available_benchmarks(synthetic_root).values()) == {"unified"}
    assert open_dataset("refzom", "test", synthetic_root).format == "unified"
    root = tmp_path / "orig"
    for b in BENCHMARKS.values():
        shutil.copytree(os.path.join(synthetic_root, b.original_dir), root / b.original_dir)
    assert available_benchmarks(str(root)) == {name: "original" for name in BENCHMARKS}
    assert open_dataset("refzom", "test", str(root)).format == "original"
    assert available_benchmarks(str(tmp_path / "nothing")) == {}


def test_errors_name_file_split_and_expectation(synthetic_root, tmp_path):
    with pytest.raises(DatasetError, match=r"unknown benchmark 'refclef'; expected one of refcoco"):
        open_dataset("refclef", "val", synthetic_root)
    with pytest.raises(DatasetError, match=r"unknown split 'testC' for benchmark 'refcoco'; expected one of "
                                           r"train, val, testA, testB"):
        open_dataset("refcoco", "testC", synthetic_root)
    with pytest.raises(DatasetError, match=r"no annotation files found under .*instances_nogoogle.json.*"
                                           r"refs\(unc\).p"):
        open_dataset("refcoco", "val", str(tmp_path))
    with pytest.raises(DatasetError, match=r"no original release found .*rrefcocog.*refs\(umd\).p"):
        open_dataset("rrefcocog", "val", str(tmp_path), format="original")
    # a unified JSON that lacks the split, a malformed JSON, a missing group index
    ann = tmp_path / "annotations" / "ref-zom" / "instance.json"
    ann.parent.mkdir(parents=True)
    ann.write_text(json.dumps({"train": []}))
    with pytest.raises(DatasetError, match=r"instance.json has no split 'test' .*it has train"):
        open_dataset("refzom", "test", str(tmp_path))
    ann.write_text("{not json")
    with pytest.raises(DatasetError, match=r"ref-zom/instance.json is not valid JSON"):
        open_dataset("refzom", "test", str(tmp_path))
    rref = tmp_path / "annotations" / "rrefcoco"
    shutil.copytree(os.path.join(synthetic_root, "annotations", "rrefcoco"), rref)
    os.remove(rref / "instance_index.json")
    with pytest.raises(DatasetError, match=r"instance_index.json does not exist; expected the \[start, end\) "
                                           r"groups of 'val_rrefcoco\+'"):
        open_dataset("rrefcoco+", "val", str(tmp_path))
    # an original release naming an annotation that instances.json lacks
    bad = tmp_path / "refcoco"
    shutil.copytree(os.path.join(synthetic_root, "refcoco"), bad)
    inst = json.loads((bad / "instances.json").read_text())
    inst["annotations"] = inst["annotations"][1:]
    (bad / "instances.json").write_text(json.dumps(inst))
    with pytest.raises(DatasetError, match=r"refs\(unc\).p ref_id \d+: ann_id \d+ is not in .*instances.json"):
        for split in ("train", "val", "testA", "testB"):
            open_dataset("refcoco", split, str(tmp_path), format="original")


def test_missing_image_error_names_file(synthetic_root, tmp_path):
    sample = open_dataset("refcoco", "val", synthetic_root, image_root=str(tmp_path))[0]
    with pytest.raises(OSError, match=re.escape(os.path.join(str(tmp_path), "COCO_train2014_"))):
        sample.load_image()
