"""Serving around the network, as the Triton Python-backend models of ``instancevg-triton`` run it:
request bytes -> network inputs (our preprocessing), RawOutputs -> response tensors (our post-processing,
at the original image size like ``instancevg-predict``). Tested here without Triton; the model.py
templates in engines/triton/model_templates only move tensors in and out of Triton."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from engines.triton.spec import ORIGINAL_SIZE, RESPONSE_OUTPUTS
from instancevg.data.masks import encode_mask
from instancevg.data.tokenizer import Tokenizer
from instancevg.data.transforms import decode_image
from instancevg.inference import prepare_inputs
from instancevg.postprocess import postprocess, rescale_prediction
from instancevg.structures import Prediction, RawOutputs

from .backends.graph import model_settings, settings_from_sidecar


def _text(value, index: int) -> str:
    if isinstance(value, (bytes, bytearray, np.bytes_)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"expression of request item {index} is not UTF-8 text") from None
    return str(value)


class Preprocessor:
    """(encoded images, expressions) -> the network inputs [B, ...] in the graph's dtypes, plus
    ``original_size`` [B, 2] int32 (height, width of each decoded image).

    ``settings``: the export sidecar (or its ``engines.triton.configs.settings`` subset); ``tokenizer``:
    the SentencePiece file the model was trained with.
    """

    def __init__(self, settings: dict, tokenizer: str | Path, source: str = "settings"):
        self.config, _, tokenizer = settings_from_sidecar(settings, source, tokenizer)
        self.tokenizer = Tokenizer(tokenizer, self.config.max_tokens)
        self.dtypes = {i["name"]: np.dtype(i["dtype"]) for i in settings["inputs"]}

    def __call__(self, images: Sequence[bytes], expressions: Sequence[bytes | str]) -> dict[str, np.ndarray]:
        if len(images) != len(expressions):
            raise ValueError(f"{len(images)} images but {len(expressions)} expressions")
        rgbs = [decode_image(data, f"bytes of request item {i}") for i, data in enumerate(images)]
        texts = [_text(e, i) for i, e in enumerate(expressions)]
        for i, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"expression of request item {i} is empty")
        inputs = prepare_inputs(rgbs, texts, self.tokenizer, self.config.image_size)
        inputs = {name: inputs[name].astype(dtype, copy=False) for name, dtype in self.dtypes.items()}
        inputs[ORIGINAL_SIZE[0]] = np.array([rgb.shape[:2] for rgb in rgbs], dtype=np.int32)
        return inputs


class Postprocessor:
    """RawOutputs [B, ...] and original sizes [B, 2] -> Predictions at the original image size."""

    def __init__(self, settings: dict, source: str = "settings"):
        self.config, self.post = model_settings(settings, source)

    def __call__(self, raw: RawOutputs, sizes: np.ndarray) -> list[Prediction]:
        predictions = postprocess(raw, self.post, self.config.image_size)
        return [rescale_prediction(p, int(h), int(w)) for p, (h, w) in zip(predictions, np.asarray(sizes))]


def response_tensors(predictions: Sequence[Prediction]) -> dict[str, np.ndarray]:
    """The ensemble's response tensors [B, ...] (engines.triton.spec.RESPONSE_OUTPUTS). Rows are queries
    sorted by score; when samples keep different numbers of queries (NMS), shorter ones are padded with
    query_index -1, zero boxes/points/scores and selected False."""
    n = max((len(p.scores) for p in predictions), default=0)
    b = len(predictions)
    out = {"boxes": np.zeros((b, n, 4), np.float32), "scores": np.zeros((b, n), np.float32),
           "selected": np.zeros((b, n), bool), "points": np.zeros((b, n, 2), np.float32),
           "query_index": np.full((b, n), -1, np.int64), "mask_rle": np.empty((b, 1), dtype=object),
           "exist_prob": np.zeros((b, 1), np.float32)}
    for i, p in enumerate(predictions):
        k = len(p.scores)
        out["boxes"][i, :k], out["scores"][i, :k], out["selected"][i, :k] = p.boxes, p.scores, p.selected
        out["points"][i, :k], out["query_index"][i, :k] = p.points, p.query_index
        out["mask_rle"][i, 0] = json.dumps(encode_mask(p.mask)).encode()
        out["exist_prob"][i, 0] = p.exist_prob
    return {name: out[name] for name, _, _ in RESPONSE_OUTPUTS}


def response_record(tensors: dict[str, np.ndarray], index: int = 0) -> dict:
    """One sample of a response as instancevg-predict's JSON record (queries, mask RLE, exist_prob)."""
    keep = tensors["query_index"][index] >= 0
    rle = tensors["mask_rle"][index, 0]
    return {"exist_prob": float(tensors["exist_prob"][index, 0]),
            "no_target": not bool(tensors["selected"][index][keep].any()),
            "queries": [{"query": int(q), "score": float(s), "box_xyxy": [float(v) for v in b],
                         "point_xy": [float(v) for v in pt], "selected": bool(sel)}
                        for q, s, b, pt, sel in zip(tensors["query_index"][index][keep], tensors["scores"][index][keep],
                                                    tensors["boxes"][index][keep], tensors["points"][index][keep],
                                                    tensors["selected"][index][keep])],
            "mask": json.loads(rle.decode() if isinstance(rle, bytes) else rle)}
