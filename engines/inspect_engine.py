"""Describe a built engine: I/O tensors, layers, plugin use (TensorRT's engine inspector)."""
from __future__ import annotations

import json
from pathlib import Path

from .plugin_library import check_plugin_library, engine_plugin_library
from .sidecar import read_sidecar
from .tensorrt_import import check_same_major, import_tensorrt


def inspect_engine(engine_path: str, plugin_library: str | None = None) -> dict:
    if not Path(engine_path).is_file():  # files first, then the TensorRT hint
        raise FileNotFoundError(f"engine {engine_path}: file not found")
    sidecar = read_sidecar(engine_path)
    trt = import_tensorrt()
    check_same_major(f"engine {engine_path}", sidecar["tensorrt"], trt.__version__)
    library = str(engine_plugin_library(sidecar, plugin_library))
    check_plugin_library(library, trt.__version__)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    runtime.get_plugin_registry().load_library(library)
    engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
    if engine is None:
        raise RuntimeError(f"TensorRT could not deserialize {engine_path}")
    io = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        io.append({"name": name, "mode": str(engine.get_tensor_mode(name)).split(".")[-1],
                   "dtype": str(engine.get_tensor_dtype(name)).split(".")[-1],
                   "shape": list(engine.get_tensor_shape(name))})
    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    layers = info.get("Layers", [])
    plugin_layers = [layer for layer in layers if isinstance(layer, dict) and "Plugin" in str(layer.get("LayerType", ""))]
    return {"engine": engine_path, "tensorrt": trt.__version__, "io": io, "num_layers": len(layers),
            "plugin_layers": [layer.get("Name") for layer in plugin_layers], "layers": layers}
