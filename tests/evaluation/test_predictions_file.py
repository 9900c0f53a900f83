"""Predictions file: exact round trip, RLE checks, errors naming file / line / field, atomic writing."""
import json
import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from evaluation.predictions import (PredictionsFileError, PredictionsHeader, PredictionsWriter, decode_mask,
                                    encode_mask, load_predictions, read_header, read_predictions, rle_counts,
                                    write_predictions)
from instancevg.structures import Prediction

H, W = 12, 20
HEADER = PredictionsHeader("grefcoco", "val", "pytorch", (H, W), 0.7, 0.5, extra={"config": "gres-base"})


def sample(rng, n=4):
    scores = np.sort(rng.random(n).astype(np.float32))[::-1]
    xy = rng.uniform(0, 300, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(0, 20, (n, 2)).astype(np.float32)], 1)
    return Prediction(boxes=boxes, scores=scores, mask=rng.random((H, W)) < 0.4)


def write(path, items, header=HEADER):
    return write_predictions(path, header, items)


def test_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(9)
    items = [(0, sample(rng)), ("123:456", sample(rng, 1)), (2, sample(rng, 0))]
    awkward = items[0][1]
    awkward.scores[:] = np.array([0.7, 0.1, 1e-8, np.nextafter(np.float32(0), np.float32(1))], np.float32)
    awkward.boxes[0] = [np.float32(0.1), np.float32(319.99998), np.float32(320), np.float32(1e30)]
    awkward.mask[:] = True
    items[1][1].mask[:] = False
    items.append((3, Prediction(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.eye(H, W, dtype=bool))))
    path = tmp_path / "preds.jsonl"
    assert write(path, items) == 4
    header, samples = read_predictions(path)
    assert header == HEADER
    read = list(samples)
    assert [s for s, _ in read] == [s for s, _ in items]
    for (_, original), (_, back) in zip(items, read):
        assert back.boxes.dtype == np.float32 and back.scores.dtype == np.float32 and back.mask.dtype == bool
        assert back.boxes.shape == (len(original.scores), 4)
        assert np.array_equal(back.boxes.view(np.uint32), original.boxes.astype(np.float32).view(np.uint32))
        assert np.array_equal(back.scores.view(np.uint32), original.scores.view(np.uint32))
        assert np.array_equal(back.mask, original.mask)
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {"format": "instancevg-predictions", "version": 1, "dataset": "grefcoco", "split": "val",
                     "backend": "pytorch", "resolution": [H, W], "thr_q": 0.7, "thr_m": 0.5,
                     "config": "gres-base"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools 2.0.11 decode under numpy 2
def test_rle_counts_parser_agrees_with_pycocotools():
    rng = np.random.default_rng(10)
    masks = [np.zeros((7, 9), bool), np.ones((7, 9), bool), rng.random((31, 17)) < 0.5,
             rng.random((64, 64)) < 0.02]
    masks[0][0, 0] = True
    for mask in masks:
        rle = encode_mask(mask)
        runs = rle_counts(rle["counts"])
        assert sum(runs) == mask.size
        flat = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
        assert np.array_equal(flat.reshape(mask.shape[1], mask.shape[0]).T, mask)
        assert np.array_equal(mask_utils.decode({"size": rle["size"], "counts": rle["counts"]}), mask)
        assert np.array_equal(decode_mask(rle, mask.shape), mask)


def lines_of(tmp_path):
    path = tmp_path / "good.jsonl"
    rng = np.random.default_rng(11)
    write(path, [(0, sample(rng)), (1, sample(rng))])
    return path.read_text().splitlines()


def corrupt(tmp_path, lines, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def expect_error(path, pattern):
    with pytest.raises(PredictionsFileError) as info:
        _, samples = read_predictions(path)
        list(samples)
    message = str(info.value)
    assert str(path) in message, message
    assert pattern in message, message
    return info.value


def edit(line, **changes):
    obj = json.loads(line)
    for key, value in changes.items():
        if value is KeyError:
            del obj[key]
        else:
            obj[key] = value
    return json.dumps(obj)


def test_header_errors(tmp_path):
    lines = lines_of(tmp_path)
    expect_error(corrupt(tmp_path, [""]), "line 1: empty file")
    expect_error(corrupt(tmp_path, ["{not json"] + lines[1:]), "line 1: invalid JSON")
    expect_error(corrupt(tmp_path, [edit(lines[0], format="coco")] + lines[1:]), "line 1, field 'format'")
    expect_error(corrupt(tmp_path, [edit(lines[0], version=2)] + lines[1:]), "unsupported version 2")
    expect_error(corrupt(tmp_path, [edit(lines[0], resolution=[12])] + lines[1:]), "field 'resolution'")
    expect_error(corrupt(tmp_path, [edit(lines[0], split=KeyError)] + lines[1:]), "field 'split'")
    expect_error(corrupt(tmp_path, [edit(lines[0], thr_q="0.7")] + lines[1:]), "field 'thr_q'")
    expect_error(tmp_path / "absent.jsonl", "cannot read the file")


def test_sample_errors_name_line_sample_and_field(tmp_path):
    header, first, second = lines_of(tmp_path)
    mask = json.loads(first)["mask"]
    cases = [
        (second[: len(second) // 2], "line 3: invalid JSON"),  # truncated line
        (edit(second, boxes=[[1, 2, 3]]), "line 3 (sample 1), field 'boxes'"),
        (edit(second, boxes=[[5, 0, 1, 9]] * 4), "line 3 (sample 1), field 'boxes': boxes must satisfy"),
        (second.replace(json.dumps(json.loads(second)["scores"][0]), "NaN", 1), "line 3: invalid JSON"),
        (edit(second, scores=[0.1, 0.2, 0.3, 0.4]), "field 'scores': scores must be sorted"),
        (edit(second, scores=[0.5]), "field 'scores': 1 scores for 4 boxes"),
        (edit(second, scores=[True, 0, 0, 0]), "field 'scores'"),
        (edit(second, sample_id=None), "line 3, field 'sample_id'"),
        (edit(second, mask=KeyError), "line 3 (sample 1), field 'mask': missing"),
        (edit(second, points=[]), "field 'points': unknown fields"),
        (edit(second, mask={"size": [W, H], "counts": mask["counts"]}), "field 'mask': size [20, 12] differs"),
        (edit(second, mask={"size": [H, W], "counts": mask["counts"] + "1"}), "field 'mask': the runs"),
        (edit(second, mask={"size": [H, W], "counts": "~~"}), "field 'mask': invalid character"),
        (edit(second, mask={"size": [H, W], "counts": "P"}), "field 'mask': the counts string ends inside"),
        (edit(second, mask={"size": [H, W], "counts": b"X".decode()}), "field 'mask'"),
        (edit(second, sample_id=0), "line 3 (sample 0), field 'sample_id': duplicate sample, first on line 2"),
        ("", "line 3: blank line"),
        ("[1, 2]", "line 3: a sample must be a JSON object"),
    ]
    for k, (bad, pattern) in enumerate(cases):
        expect_error(corrupt(tmp_path, [header, first, bad], f"bad{k}.jsonl"), pattern)


def test_load_predictions_checks_the_sample_set(tmp_path):
    path = tmp_path / "p.jsonl"
    rng = np.random.default_rng(12)
    write(path, [(0, sample(rng)), (1, sample(rng))])
    header, predictions = load_predictions(path, expected_ids=[0, 1])
    assert list(predictions) == [0, 1] and read_header(path) == header
    error = expect_error_load(path, [0, 1, 2], "1 samples of the dataset are missing, first [2]")
    assert error.sample_id == 2
    expect_error_load(path, [1], "1 samples are not in the dataset, first [0]")


def expect_error_load(path, expected, pattern):
    with pytest.raises(PredictionsFileError) as info:
        load_predictions(path, expected_ids=expected)
    assert str(path) in str(info.value) and pattern in str(info.value), str(info.value)
    return info.value


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_atomic_writing(tmp_path):
    rng = np.random.default_rng(13)
    path = tmp_path / "p.jsonl"

    def failing():
        yield 0, sample(rng)
        raise RuntimeError("backend crashed")

    with pytest.raises(RuntimeError, match="backend crashed"):
        write(path, failing())
    assert not path.exists() and leftovers(tmp_path) == []

    write(path, [(0, sample(rng))])
    before = path.read_bytes()
    bad = sample(rng)
    bad.mask = np.zeros((H + 1, W), bool)
    with pytest.raises(ValueError, match="sample 5: mask has shape \\(13, 20\\), expected the header resolution"):
        write(path, [(4, sample(rng)), (5, bad)])
    assert path.read_bytes() == before and leftovers(tmp_path) == []

    with pytest.raises(ValueError, match="sample 4: written twice"):
        with PredictionsWriter(path, HEADER) as writer:
            writer.write(4, sample(rng))
            writer.write(4, sample(rng))
    assert path.read_bytes() == before and leftovers(tmp_path) == []

    unsorted = sample(rng)
    unsorted.scores = unsorted.scores[::-1].copy()
    with pytest.raises(ValueError, match="sample 'u': scores must be sorted descending"):
        write(path, [("u", unsorted)])
    nan = sample(rng)
    nan.scores[0] = np.nan
    with pytest.raises(ValueError, match="sample 1: boxes and scores must be finite"):
        write(path, [(1, nan)])
    assert path.read_bytes() == before and leftovers(tmp_path) == []

    with pytest.raises(PredictionsFileError, match="cannot create the file"):
        write(tmp_path / "missing-dir" / "p.jsonl", [])
