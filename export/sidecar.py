"""The sidecar ``model.json`` next to ``model.onnx``: everything a consumer (engines, evaluation) needs to
feed the graph and read its outputs without guessing."""
from __future__ import annotations

import datetime
from pathlib import Path

import onnx

from instancevg.config import IMAGE_MEAN, IMAGE_STD, ModelConfig
from instancevg.ops.export_target import PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_VERSION
from instancevg.versions import tool_versions as _tool_versions

from .contract import MS_DEFORM_ATTN, POINT_SELECT, value_types
from .options import ExportOptions
from .precision import describe_policy

SIDECAR_FORMAT = "instancevg-onnx"
SIDECAR_VERSION = 1
PLUGIN_LIBRARY = "libinstancevg_plugins.so"
PLUGIN_LIBRARY_STATIC = "libinstancevg_plugins_static.so"


def io_spec(model: onnx.ModelProto) -> tuple[list[dict], list[dict]]:
    """[{name, shape, dtype}] of the graph inputs and outputs; a dynamic batch appears as "batch"."""
    types = value_types(model)

    def entry(name):
        vt = types[name]
        return {"name": name, "shape": list(vt.shape), "dtype": vt.dtype}

    return [entry(i.name) for i in model.graph.input], [entry(o.name) for o in model.graph.output]


def preprocessing(cfg: ModelConfig) -> dict:
    """instancevg.data.transforms.preprocess_image as data."""
    return {"decode": "BGR (OpenCV) then converted to RGB", "resize": {
        "size": [cfg.image_size, cfg.image_size], "interpolation": "bilinear (cv2.INTER_LINEAR)",
        "keep_aspect_ratio": False, "padding": False},
        "value_range": "0-255", "mean": list(IMAGE_MEAN), "std": list(IMAGE_STD),
        "formula": "(rgb - mean) / std", "layout": "NCHW", "dtype": "float32"}


def tokenizer_settings(cfg: ModelConfig, tokenizer_file: Path | None, tokenizer_digest: str | None) -> dict:
    """instancevg.data.tokenizer.Tokenizer as data."""
    return {"type": "SentencePiece model, official XLM-R ids (instancevg.data.tokenizer.Tokenizer)",
            "file": tokenizer_file.name if tokenizer_file else "beit3.spm (user-supplied)",
            "sha256": tokenizer_digest, "max_tokens": cfg.max_tokens,
            "ids": {"bos": 0, "pad": 1, "eos": 2, "unk": 3, "piece": "SentencePiece id + 1"},
            "clean": {"lowercase": True, "delete": ".,'!?\"()*#:;", "to_space": "-/"},
            "sequence": "<s> pieces[:max_tokens-2] </s> then <pad> to max_tokens",
            "text_ids_dtype": "int64", "text_pad_mask": "bool, True on padding (BOS/EOS are real tokens)"}


def postprocessing(cfg: ModelConfig) -> dict:
    post = cfg.postprocess
    return {"thr_q": post.thr_q, "thr_m": post.thr_m, "score_weighted": post.score_weighted,
            "nms": post.nms, "nms_iou": post.nms_iou, "out_mask": post.out_mask,
            "score": "softmax(class_logits)[..., 0] * sigmoid(exist_logits[..., 0])",
            "boxes": "cxcywh in [0,1] -> xyxy pixels, clipped",
            "masks": f"logits at stride 4 upsampled bilinear (align_corners=True) to {cfg.image_size}, "
                     "sigmoid >= thr_m",
            "implementation": "instancevg.postprocess.postprocess"}


def plugins(cfg: ModelConfig, target: str) -> dict | None:
    if target != "tensorrt":
        return None
    return {"domain": PLUGIN_DOMAIN, "namespace": PLUGIN_NAMESPACE, "library": PLUGIN_LIBRARY,
            "static_library": PLUGIN_LIBRARY_STATIC,
            "nodes": [{"name": MS_DEFORM_ATTN, "version": PLUGIN_VERSION, "count": cfg.decoder_layers,
                       "fields": {}},
                      {"name": POINT_SELECT, "version": PLUGIN_VERSION, "count": 1,
                       "fields": {"num_points": cfg.num_queries, "w_dist": cfg.w_dist}}]}


def tool_versions() -> dict:
    return _tool_versions(("instancevg", "torch", "onnx", "onnxscript", "onnxruntime", "numpy"))


def build_sidecar(model: onnx.ModelProto, onnx_name: str, cfg: ModelConfig, options: ExportOptions,
                  checkpoint: dict, tokenizer: dict, verification: dict | None, int8: dict | None = None) -> dict:
    """The sidecar dict. ``checkpoint``: {file, sha256, random_weights, seed};
    ``tokenizer``: {file: Path|None, sha256}; ``verification``: VerificationReport.as_dict() + tolerances
    (None with --no-verify); ``int8``: the calibration and quantization record of --int8 graphs (policy,
    calibration dataset/split/samples/method, quantized nodes, ONNX Runtime session settings)."""
    inputs, outputs = io_spec(model)
    batch = options.batch
    return {
        "format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "model": onnx_name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "target": options.target, "precision": options.precision,
        "float_precision": options.float_precision,
        "io_precision": "fp16" if options.fp16_io else "fp32",
        "fp16_policy": describe_policy() if options.fp16 else None,
        "opset": options.opset, "ir_version": model.ir_version,
        "batch": {"dynamic": batch.dynamic, "min": batch.min, "opt": batch.opt, "max": batch.max},
        "inputs": inputs, "outputs": outputs,
        "preprocessing": preprocessing(cfg),
        "tokenizer": tokenizer_settings(cfg, tokenizer.get("file"), tokenizer.get("sha256")),
        "postprocessing": postprocessing(cfg),
        "plugins": plugins(cfg, options.target),
        "config_name": cfg.name, "config": cfg.to_dict(),
        "checkpoint": checkpoint,
        "verification": verification,
        "int8": int8,
        "tools": tool_versions(),
    }
