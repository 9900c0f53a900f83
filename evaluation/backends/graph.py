"""What the ONNX and TensorRT backends share: settings from the export sidecar, fixed-batch chunking."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from instancevg import bundled
from instancevg.config import ModelConfig, PostprocessConfig
from instancevg.structures import INPUT_NAMES, RAW_OUTPUT_NAMES, RawOutputs

POST_FIELDS = ("thr_q", "thr_m", "score_weighted", "nms", "nms_iou", "out_mask")


def model_settings(sidecar: dict, source: str) -> tuple[ModelConfig, PostprocessConfig]:
    """(ModelConfig, PostprocessConfig) recorded by instancevg-export."""
    try:
        cfg = ModelConfig.from_dict(sidecar["config"])
        post = PostprocessConfig(**{k: sidecar["postprocessing"][k] for k in POST_FIELDS})
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: not an instancevg-export sidecar ({exc})") from None
    return cfg, post


def settings_from_sidecar(sidecar: dict, source: str, tokenizer: str | Path | None, required: bool = True):
    """(ModelConfig, PostprocessConfig, tokenizer path) recorded by instancevg-export; the tokenizer is the
    given one, else the bundled one of the config, else an error (None when not ``required``: a network
    that is only run, never fed expressions)."""
    cfg, post = model_settings(sidecar, source)
    if tokenizer is None:
        tokenizer = bundled.default_tokenizer(cfg.name)
        if tokenizer is None and required:
            raise ValueError(f"{source} was exported from config {cfg.name!r}: pass --tokenizer (the SentencePiece "
                             f"model it was trained with, {sidecar.get('tokenizer', {}).get('file', 'beit3.spm')})")
    return cfg, post, None if tokenizer is None else str(tokenizer)


def fixed_batch(sidecar: dict) -> int | None:
    """The graph's batch size when it is fixed, None for a dynamic batch."""
    batch = sidecar.get("batch") or {}
    return None if batch.get("dynamic") else int(batch.get("max") or sidecar["inputs"][0]["shape"][0])


def run_in_chunks(run, inputs: dict[str, np.ndarray], chunk: int | None) -> RawOutputs:
    """Call ``run(inputs) -> {name: array}`` on chunks of ``chunk`` samples (the last one padded by
    repeating its last sample; padding rows are dropped), or once when ``chunk`` is None."""
    total = len(inputs[INPUT_NAMES[0]])
    if chunk is None or chunk == total:
        out = run(inputs)
    else:
        parts = []
        for start in range(0, total, chunk):
            piece = {k: v[start:start + chunk] for k, v in inputs.items()}
            n = len(piece[INPUT_NAMES[0]])
            if n < chunk:
                piece = {k: np.concatenate([v, np.repeat(v[-1:], chunk - n, axis=0)]) for k, v in piece.items()}
            result = run(piece)
            parts.append({k: np.asarray(v)[:n] for k, v in result.items()})
        out = {k: np.concatenate([p[k] for p in parts]) for k in RAW_OUTPUT_NAMES}
    return RawOutputs(**{k: np.asarray(out[k], dtype=np.float32) for k in RAW_OUTPUT_NAMES})
