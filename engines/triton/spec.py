"""The contract of the generated repository: model names, the ensemble's request and response tensors,
the tensors between its steps, and sidecar dtypes as Triton data types. ``evaluation.serving`` (run by
the Python-backend models) and the bench client read the same names from here."""
from __future__ import annotations

CORE_KINDS = ("tensorrt_plan", "onnxruntime", "python")

# sidecar dtype -> Triton data type (and the numpy dtype name the clients use)
TRITON_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64", "int32": "TYPE_INT32",
                 "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8"}

# (name, Triton data type, dims without the batch dimension)
REQUEST_INPUTS = (("image_bytes", "TYPE_STRING", [1]),   # the encoded image file (JPEG, PNG, ...)
                  ("expression", "TYPE_STRING", [1]))    # UTF-8 referring expression
RESPONSE_OUTPUTS = (("boxes", "TYPE_FP32", [-1, 4]),      # xyxy, original-image pixels, sorted by score
                    ("scores", "TYPE_FP32", [-1]),
                    ("selected", "TYPE_BOOL", [-1]),      # score > thr_q
                    ("points", "TYPE_FP32", [-1, 2]),     # (x, y) original-image pixels
                    ("query_index", "TYPE_INT64", [-1]),  # network query of each row; -1 marks padding
                    ("mask_rle", "TYPE_STRING", [1]),     # JSON {"size": [H, W], "counts": "..."} (COCO RLE)
                    ("exist_prob", "TYPE_FP32", [1]))
# produced by preprocessing, consumed by post-processing: (height, width) of the decoded image
ORIGINAL_SIZE = ("original_size", "TYPE_INT32", [2])

# config.pbtxt parameter holding the sidecar settings the Python models and clients read (JSON)
SETTINGS_PARAMETER = "instancevg_settings"
SETTINGS_KEYS = ("format", "model", "target", "precision", "io_precision", "batch", "inputs", "outputs",
                 "preprocessing", "tokenizer", "postprocessing", "config_name", "config", "checkpoint")
# config.pbtxt parameter of the preprocessing model: the tokenizer file inside its version folder
TOKENIZER_PARAMETER = "tokenizer_file"
# config.pbtxt parameter of the Python-backend models: folders put in front of sys.path (':'-separated),
# read by model_templates/environment.py (Triton's Python stub ignores PYTHONPATH)
PYTHON_PATH_PARAMETER = "instancevg_python_path"
ENVIRONMENT_MODULE = "instancevg_environment.py"  # model_templates/environment.py, next to each model.py
MANIFEST = "deployment.json"  # in the ensemble's folder: sources, digests, settings, commands


def model_names(name: str) -> dict[str, str]:
    """The four models of one deployment called ``name``."""
    return {"ensemble": name, "preprocess": f"{name}_preprocess", "core": f"{name}_core",
            "postprocess": f"{name}_postprocess"}


def triton_dtype(dtype: str, source: str = "sidecar") -> str:
    try:
        return TRITON_DTYPES[dtype]
    except KeyError:
        raise ValueError(f"{source}: dtype {dtype!r} has no Triton data type here; expected one of "
                         f"{sorted(TRITON_DTYPES)}") from None


def numpy_dtype_name(triton_type: str) -> str:
    """'TYPE_FP32' -> 'float32' (inverse of TRITON_DTYPES)."""
    for name, value in TRITON_DTYPES.items():
        if value == triton_type:
            return name
    raise ValueError(f"no numpy dtype for Triton data type {triton_type!r}")
