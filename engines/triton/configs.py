"""The four ``config.pbtxt`` of a deployment as dicts (written by ``pbtxt.to_pbtxt``), generated from
the export sidecar: tensor names, dtypes and shapes, the batch range, the settings of the Python models."""
from __future__ import annotations

import json

from .pbtxt import Enum
from .spec import (ORIGINAL_SIZE, PYTHON_PATH_PARAMETER, REQUEST_INPUTS, RESPONSE_OUTPUTS, SETTINGS_KEYS,
                   SETTINGS_PARAMETER, TOKENIZER_PARAMETER, model_names, triton_dtype)

PLATFORMS = {"tensorrt_plan": "tensorrt_plan", "onnxruntime": "onnxruntime_onnx"}
RAW_PREFIX = "raw_"  # post-processing inputs and ensemble tensors of the network outputs ("boxes" is taken)


def settings(sidecar: dict) -> dict:
    """What the Python models and clients need of an ONNX sidecar (its provenance stays in the manifest)."""
    return {k: sidecar[k] for k in SETTINGS_KEYS if k in sidecar}


def _tensor(name: str, dtype: str, dims) -> dict:
    return {"name": name, "data_type": Enum(dtype), "dims": [int(d) for d in dims]}


def network_tensors(entries: list[dict], source: str) -> list[dict]:
    """Sidecar I/O entries -> Triton tensors without the batch dimension (other symbolic dims: -1)."""
    tensors = []
    for entry in entries:
        try:
            name, shape, dtype = entry["name"], list(entry["shape"]), entry["dtype"]
        except (KeyError, TypeError):
            raise ValueError(f"{source}: I/O entries must have name, shape and dtype, got {entry!r}") from None
        dims = [d if isinstance(d, int) and d > 0 else -1 for d in shape[1:]]
        tensors.append(_tensor(name, triton_dtype(dtype, f"{source} ({name})"), dims))
    return tensors


def _parameters(values: dict[str, str]) -> list[dict]:
    return [{"key": k, "value": {"string_value": v}} for k, v in values.items()]


def python_parameters(python_path: str, execution_env: str | None) -> dict[str, str]:
    """Parameters of every Python-backend model: the folders its model.py imports instancevg from, and
    optionally Triton's EXECUTION_ENV_PATH (an environment folder with bin/activate, or a conda-pack
    archive, that the Python backend starts the model's stub in)."""
    return {PYTHON_PATH_PARAMETER: python_path, **({"EXECUTION_ENV_PATH": execution_env} if execution_env else {})}


def _batching(queue_delay_us: int) -> dict:
    return {"max_queue_delay_microseconds": int(queue_delay_us)}


def _map(pairs) -> list[dict]:
    return [{"key": k, "value": v} for k, v in pairs]


def preprocess_config(name: str, sidecar: dict, tokenizer_file: str, max_batch: int, instances: int,
                      queue_delay_us: int, python: dict[str, str], source: str) -> dict:
    names = model_names(name)
    return {
        "name": names["preprocess"], "backend": "python", "max_batch_size": max_batch,
        "input": [_tensor(*t) for t in REQUEST_INPUTS],
        "output": network_tensors(sidecar["inputs"], source) + [_tensor(*ORIGINAL_SIZE)],
        "dynamic_batching": _batching(queue_delay_us),
        "instance_group": [{"count": instances, "kind": Enum("KIND_CPU")}],
        "parameters": _parameters({SETTINGS_PARAMETER: json.dumps(settings(sidecar)),
                                   TOKENIZER_PARAMETER: tokenizer_file, **python}),
    }


def core_config(name: str, kind: str, sidecar: dict, max_batch: int, instances: int, queue_delay_us: int,
                python: dict[str, str], source: str) -> dict:
    """``tensorrt_plan`` (GPU instances), ``onnxruntime`` or ``python`` (ONNX Runtime inside the Python
    backend; instances where Triton finds a GPU, else on the CPU)."""
    config = {"name": model_names(name)["core"]}
    if kind == "python":
        config["backend"] = "python"
    else:
        config["platform"] = PLATFORMS[kind]
    config.update({
        "max_batch_size": max_batch,
        "input": network_tensors(sidecar["inputs"], source),
        "output": network_tensors(sidecar["outputs"], source),
        "dynamic_batching": _batching(queue_delay_us),
        "instance_group": [{"count": instances, **({"kind": Enum("KIND_GPU")} if kind == "tensorrt_plan" else {})}],
        "parameters": _parameters({SETTINGS_PARAMETER: json.dumps(settings(sidecar)),
                                   **(python if kind == "python" else {})}),
    })
    return config


def postprocess_config(name: str, sidecar: dict, max_batch: int, instances: int, queue_delay_us: int,
                       python: dict[str, str], source: str) -> dict:
    raw = network_tensors(sidecar["outputs"], source)
    for tensor in raw:
        tensor["name"] = RAW_PREFIX + tensor["name"]
    return {
        "name": model_names(name)["postprocess"], "backend": "python", "max_batch_size": max_batch,
        "input": raw + [_tensor(*ORIGINAL_SIZE)],
        "output": [_tensor(*t) for t in RESPONSE_OUTPUTS],
        "dynamic_batching": _batching(queue_delay_us),
        "instance_group": [{"count": instances, "kind": Enum("KIND_CPU")}],
        "parameters": _parameters({SETTINGS_PARAMETER: json.dumps(settings(sidecar)), **python}),
    }


def ensemble_config(name: str, sidecar: dict, max_batch: int) -> dict:
    """Request (image bytes, expression) -> preprocessing -> core -> post-processing -> response."""
    names = model_names(name)
    inputs = [i["name"] for i in sidecar["inputs"]]
    outputs = [o["name"] for o in sidecar["outputs"]]
    size = ORIGINAL_SIZE[0]
    steps = [
        {"model_name": names["preprocess"], "model_version": -1,
         "input_map": _map((t[0], t[0]) for t in REQUEST_INPUTS),
         "output_map": _map([(n, n) for n in inputs] + [(size, size)])},
        {"model_name": names["core"], "model_version": -1,
         "input_map": _map((n, n) for n in inputs),
         "output_map": _map((n, RAW_PREFIX + n) for n in outputs)},
        {"model_name": names["postprocess"], "model_version": -1,
         "input_map": _map([(RAW_PREFIX + n, RAW_PREFIX + n) for n in outputs] + [(size, size)]),
         "output_map": _map((t[0], t[0]) for t in RESPONSE_OUTPUTS)},
    ]
    return {"name": names["ensemble"], "platform": "ensemble", "max_batch_size": max_batch,
            "input": [_tensor(*t) for t in REQUEST_INPUTS], "output": [_tensor(*t) for t in RESPONSE_OUTPUTS],
            "ensemble_scheduling": {"step": steps}}
