"""Synthetic generation (determinism, contents) and the converter round trip."""
import filecmp
import json
import os

import pytest

from instancevg.cli import convert, make_synthetic
from instancevg.data.datasets import BENCHMARKS, open_dataset
from instancevg.data.synthetic import VOCABULARY, generate
from instancevg.data.tokenizer import clean_expression


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_generation_is_deterministic(tmp_path):
    a, b, c = (str(tmp_path / n) for n in "abc")
    assert make_synthetic.main(["--output", a, "--num-images", "6", "--seed", "3", "--image-size", "64",
                                "--no-progress"]) == 0
    generate(b, num_images=6, seed=3, image_size=64)
    generate(c, num_images=6, seed=4, image_size=64)
    assert _files(a) == _files(b)
    match, mismatch, errors = filecmp.cmpfiles(a, b, _files(a), shallow=False)
    assert not mismatch and not errors
    assert not filecmp.cmp(os.path.join(a, "refcoco", "refs(unc).p"), os.path.join(c, "refcoco", "refs(unc).p"),
                           shallow=False)


def test_formats_option(tmp_path):
    generate(str(tmp_path), num_images=5, seed=0, image_size=64, formats=("unified",))
    assert not os.path.exists(tmp_path / "refcoco") and os.path.isfile(tmp_path / "annotations/grefs/instances.json")
    with pytest.raises(ValueError, match="at least 4"):
        generate(str(tmp_path), num_images=3)
    assert make_synthetic.main(["--output", str(tmp_path), "--formats", "coco"]) == 2


def test_vocabulary_and_annotation_kinds(synthetic_root):
    words = set()
    for name, b in BENCHMARKS.items():
        for split in b.all_splits:
            for s in open_dataset(name, split, synthetic_root, format="original"):
                words.update(clean_expression(s.expression).split())
    assert words <= set(VOCABULARY)
    instances = json.load(open(os.path.join(synthetic_root, "grefcoco", "instances.json")))
    segs = [a["segmentation"] for a in instances["annotations"]]
    assert any(isinstance(s, list) for s in segs)  # polygons
    assert any(isinstance(s, dict) and isinstance(s["counts"], str) for s in segs)  # compressed RLE
    assert any(isinstance(s, dict) and isinstance(s["counts"], list) for s in segs)  # uncompressed RLE
    grefs = json.load(open(os.path.join(synthetic_root, "grefcoco", "grefs(unc).json")))
    assert any(r["ann_id"] == [-1] and r["no_target"] for r in grefs)
    assert os.path.isfile(os.path.join(synthetic_root, "images/mscoco/trainval2014/COCO_train2014_000000001000.jpg"))


def test_converter_round_trip(synthetic_root, tmp_path):
    out = str(tmp_path)
    assert convert.main(["--dataset", "all", "--source", synthetic_root, "--output", out, "--no-progress"]) == 0
    assert not [f for f in _files(out) if ".tmp-" in f]
    for name, b in BENCHMARKS.items():
        for split in b.splits:
            orig = open_dataset(name, split, synthetic_root, format="original")
            uni = open_dataset(name, split, out, format="unified",
                               image_root=os.path.join(synthetic_root, b.image_dirs[0]))
            assert len(orig) == len(uni)
            assert all(u.same_ground_truth(o) for u, o in zip(uni, orig)), (name, split)
            assert uni.groups() == orig.groups()


def test_converter_split_selection_and_merge(synthetic_root, tmp_path):
    out = str(tmp_path)
    convert.convert_release(["grefcoco"], synthetic_root, out, splits=["val"], progress=False)
    path = os.path.join(out, "annotations", "grefs", "instances.json")
    assert list(json.load(open(path))) == ["val"]
    convert.convert_release(["grefcoco"], synthetic_root, out, splits=["testA"], progress=False)
    assert sorted(json.load(open(path))) == ["testA", "val"]  # merged, not replaced
    assert convert.main(["--dataset", "grefcoco", "--source", synthetic_root, "--output", out,
                         "--splits", "test", "--no-progress"]) == 2
    assert convert.main(["--dataset", "refcoco", "--source", out, "--output", out, "--no-progress"]) == 2
