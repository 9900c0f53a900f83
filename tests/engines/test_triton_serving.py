"""The serving steps the Triton Python-backend models run (evaluation.serving), without Triton: exactly
our preprocessing, our post-processing at the original size, the response tensors and their records."""
import json

import numpy as np
import pytest

from engines.sidecar import read_sidecar
from engines.triton.spec import ORIGINAL_SIZE, RESPONSE_OUTPUTS
from evaluation.serving import Postprocessor, Preprocessor, response_record, response_tensors
from instancevg import bundled
from instancevg.config import get_config
from instancevg.data.masks import decode_segmentation
from instancevg.data.tokenizer import Tokenizer
from instancevg.data.transforms import decode_image, read_image
from instancevg.inference import prepare_inputs
from instancevg.postprocess import postprocess, rescale_prediction
from instancevg.structures import RawOutputs


@pytest.fixture(scope="module")
def sidecar(tiny_portable):
    return read_sidecar(tiny_portable)


def test_preprocessor_is_our_preprocessing(sidecar, grounding_requests):
    pre = Preprocessor(sidecar, bundled.default_tokenizer("tiny"))
    image, expression = bundled.sample()
    requests = [(image.read_bytes(), expression)] + [(r.image_bytes, r.expression) for r in grounding_requests[:3]]
    got = pre([r[0] for r in requests], [r[1].encode() for r in requests])
    want = prepare_inputs([decode_image(r[0]) for r in requests], [r[1] for r in requests],
                          Tokenizer(bundled.default_tokenizer("tiny"), 16), 128)
    for name in ("image", "text_ids", "text_pad_mask"):
        assert got[name].dtype == want[name].dtype and np.array_equal(got[name], want[name]), name
    from_file = prepare_inputs([read_image(image)], [expression], pre.tokenizer, 128)
    assert np.array_equal(got["image"][0], from_file["image"][0])
    assert got[ORIGINAL_SIZE[0]].dtype == np.int32
    assert got[ORIGINAL_SIZE[0]].tolist() == [list(read_image(image).shape[:2])] + [list(r.size) for r in
                                                                                   grounding_requests[:3]]


def test_preprocessor_errors_name_the_item(sidecar):
    pre = Preprocessor(sidecar, bundled.default_tokenizer("tiny"))
    image = bundled.sample()[0].read_bytes()
    with pytest.raises(ValueError, match="cannot read image bytes of request item 1"):
        pre([image, b"\x89PNG broken"], [b"a red circle", b"a red circle"])
    with pytest.raises(ValueError, match="expression of request item 0 is empty"):
        pre([image], [b"  "])
    with pytest.raises(ValueError, match="request item 0 is not UTF-8"):
        pre([image], [b"\xff\xfe"])
    with pytest.raises(ValueError, match="no tokens after cleaning"):
        pre([image], [b"?!"])


def test_fp16_io_graph_gets_fp16_images(sidecar):
    half = json.loads(json.dumps(sidecar))
    half["inputs"][0]["dtype"] = "float16"
    got = Preprocessor(half, bundled.default_tokenizer("tiny"))([bundled.sample()[0].read_bytes()], ["all shapes"])
    assert got["image"].dtype == np.float16


def _raw(batch: int, seed: int = 0) -> RawOutputs:
    rng = np.random.default_rng(seed)
    return RawOutputs(class_logits=rng.normal(0, 2, (batch, 5, 2)).astype(np.float32),
                      boxes=rng.uniform(0.1, 0.9, (batch, 5, 4)).astype(np.float32),
                      points=rng.uniform(0, 1, (batch, 5, 2)).astype(np.float32),
                      instance_mask_logits=rng.normal(0, 3, (batch, 5, 32, 32)).astype(np.float32),
                      global_mask_logits=rng.normal(0, 3, (batch, 1, 32, 32)).astype(np.float32),
                      exist_logits=rng.normal(1, 1, (batch, 2)).astype(np.float32))


def test_postprocessor_and_response_tensors_match_predict(sidecar):
    raw, sizes = _raw(3), np.array([[100, 150], [128, 128], [211, 97]], np.int32)
    post = Postprocessor(sidecar)
    predictions = post(raw, sizes)
    tensors = response_tensors(predictions)
    assert list(tensors) == [name for name, _, _ in RESPONSE_OUTPUTS]
    reference = postprocess(raw, get_config("tiny").postprocess, 128)
    for i, (h, w) in enumerate(sizes):
        want = rescale_prediction(reference[i], int(h), int(w))
        np.testing.assert_array_equal(tensors["boxes"][i], want.boxes)
        np.testing.assert_array_equal(tensors["scores"][i], want.scores)
        np.testing.assert_array_equal(tensors["selected"][i], want.selected)
        np.testing.assert_array_equal(tensors["points"][i], want.points)
        np.testing.assert_array_equal(tensors["query_index"][i], want.query_index)
        assert tensors["exist_prob"][i, 0] == np.float32(want.exist_prob)
        record = response_record(tensors, i)
        assert record["mask"]["size"] == [int(h), int(w)]
        assert np.array_equal(decode_segmentation(record["mask"], int(h), int(w)), want.mask)
        assert [q["query"] for q in record["queries"]] == want.query_index.tolist()
        assert record["no_target"] == (not want.selected.any())


def test_response_pads_variable_query_counts_with_nms(sidecar):
    settings = json.loads(json.dumps(sidecar))
    settings["postprocessing"].update(nms=True, nms_iou=0.1)
    raw = _raw(2, seed=3)
    raw.boxes[0] = np.array([0.5, 0.5, 0.4, 0.4], np.float32)  # five identical boxes: NMS keeps one
    predictions = Postprocessor(settings)(raw, np.array([[64, 64], [64, 64]], np.int32))
    kept = [len(p.scores) for p in predictions]
    assert kept[0] == 1 and kept[1] > 1
    tensors = response_tensors(predictions)
    assert tensors["query_index"].shape == (2, kept[1])
    assert (tensors["query_index"][0, 1:] == -1).all() and not tensors["selected"][0, 1:].any()
    assert len(response_record(tensors, 0)["queries"]) == 1
