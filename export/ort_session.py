"""ONNX Runtime sessions for graphs of both targets: the exact graph TensorRT receives runs here too.

A tensorrt-target graph's plugin nodes (``instancevg::MSDeformAttn``, ``instancevg::PointSelect``) run the
plugins' own kernels (the host build, through their C ABI: ``instancevg.ops.kernels``) as ONNX Runtime
custom operators, registered with onnxruntime-extensions. Its Python custom operators live in the domain
``ai.onnx.contrib`` and take no float16 tensors, so the session gets an in-memory copy of the graph whose
plugin nodes are renamed into that domain, and whose float16 MSDeformAttn nodes run the float32 kernel
between Casts: exactly the float16 kernel's result, since the kernels compute in float32 whatever the
storage type and round once at the end. The file on disk is never changed. Everything else runs in ONNX
Runtime as usual. The custom operators compute on the CPU whatever the execution provider (ONNX Runtime
copies their inputs and outputs).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import onnx

from instancevg.ops import kernels
from instancevg.ops.export_target import PLUGIN_DOMAIN

CUSTOM_DOMAIN = "ai.onnx.contrib"
CUSTOM_OPS = {"MSDeformAttn": "InstanceVGMSDeformAttn", "PointSelect": "InstanceVGPointSelect"}
FLOAT_INPUTS = {"MSDeformAttn": (0, 3, 4)}  # value, sampling_locations, attention_weights


def plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.domain == PLUGIN_DOMAIN]


@functools.lru_cache(maxsize=None)
def register_custom_ops() -> str:
    """Register the plugin kernels as onnxruntime-extensions operators (once per process); returns the
    extensions library to load into a session."""
    from onnxruntime_extensions import PyCustomOpDef, get_library_path, onnx_op

    strings = {"plugin_namespace": PyCustomOpDef.dt_string, "plugin_version": PyCustomOpDef.dt_string}
    f32, i32 = PyCustomOpDef.dt_float, PyCustomOpDef.dt_int32
    onnx_op(op_type=CUSTOM_OPS["MSDeformAttn"], inputs=[f32, i32, i32, f32, f32], outputs=[f32],
            attrs=strings)(_ms_deform_attn)
    onnx_op(op_type=CUSTOM_OPS["PointSelect"], inputs=[PyCustomOpDef.dt_float],
            outputs=[PyCustomOpDef.dt_int32, PyCustomOpDef.dt_float],
            attrs={**strings, "num_points": PyCustomOpDef.dt_int64, "w_dist": PyCustomOpDef.dt_float})(_point_select)
    return get_library_path()


def _ms_deform_attn(value, spatial_shapes, level_start_index, sampling_locations, attention_weights, **_attrs):
    return kernels.host_ms_deform_attn(value, spatial_shapes, level_start_index, sampling_locations,
                                       attention_weights)


def _point_select(scores, **attrs):
    return kernels.host_point_select(scores, int(attrs["num_points"]), float(attrs["w_dist"]))


def _value_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every value the graph declares or shape inference finds."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {}
    for info in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        types[info.name] = info.type.tensor_type.elem_type
    types.update({t.name: t.data_type for t in model.graph.initializer})
    return types


def with_custom_ops(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose plugin nodes are the custom operators of :func:`register_custom_ops`
    (float16 MSDeformAttn nodes between Casts to and from float32)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    types = _value_types(copy)
    nodes = []
    for node in copy.graph.node:
        if node.domain != PLUGIN_DOMAIN:
            nodes.append(node)
            continue
        if node.op_type not in CUSTOM_OPS:
            raise ValueError(f"plugin node {node.name or node.op_type} ({node.op_type}) has no ONNX Runtime "
                             "custom operator")
        half = types.get(node.input[0]) == onnx.TensorProto.FLOAT16 and node.op_type in FLOAT_INPUTS
        if half:
            for i in FLOAT_INPUTS[node.op_type]:
                widened = f"{node.input[i]}__{node.name}_f32"
                nodes.append(onnx.helper.make_node("Cast", [node.input[i]], [widened], to=onnx.TensorProto.FLOAT,
                                                   name=f"{node.name}_in{i}_to_f32"))
                node.input[i] = widened
            output = node.output[0]
            node.output[0] = f"{output}__f32"
        node.op_type, node.domain = CUSTOM_OPS[node.op_type], CUSTOM_DOMAIN
        nodes.append(node)
        if half:
            nodes.append(onnx.helper.make_node("Cast", [node.output[0]], [output], to=onnx.TensorProto.FLOAT16,
                                               name=f"{node.name}_out_to_f16"))
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    if CUSTOM_DOMAIN not in {o.domain for o in copy.opset_import}:
        copy.opset_import.add(domain=CUSTOM_DOMAIN, version=1)
    return copy


def custom_ops_unavailable(model: onnx.ModelProto) -> str | None:
    """None when ``model`` can run in ONNX Runtime here, else why not (the kernels' host library or
    onnxruntime-extensions missing, for a graph with plugin nodes)."""
    if not plugin_nodes(model):
        return None
    try:
        import onnxruntime_extensions  # noqa: F401
    except ImportError:
        return "onnxruntime-extensions is not installed (pip install onnxruntime-extensions)"
    return kernels.available("cpu")


def onnxruntime_session(model: onnx.ModelProto | str | Path, providers: list | None = None, options=None,
                        settings: dict | None = None):
    """An ``onnxruntime.InferenceSession`` for a graph of either target (a ModelProto or a path); plugin
    nodes run the plugins' kernels (see the module docstring). ``settings``: the session settings a graph's
    sidecar records (INT8 graphs: ``graph_optimization_level``, ``disabled_optimizers``; export/quantize.py).
    Raises RuntimeError naming what is missing when a tensorrt-target graph cannot run here."""
    import onnxruntime as ort

    options = options or ort.SessionOptions()
    providers = providers or ["CPUExecutionProvider"]
    settings = settings or {}
    if "graph_optimization_level" in settings:
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, settings["graph_optimization_level"])
    extra = {"disabled_optimizers": list(settings["disabled_optimizers"])} if settings.get("disabled_optimizers") \
        else {}
    if isinstance(model, (str, Path)):
        if not plugin_nodes(onnx.load(str(model), load_external_data=False)):
            return ort.InferenceSession(str(model), options, providers=providers, **extra)
        model = onnx.load(str(model))
    if not plugin_nodes(model):
        return ort.InferenceSession(model.SerializeToString(), options, providers=providers, **extra)
    why = custom_ops_unavailable(model)
    if why:
        raise RuntimeError(f"this tensorrt-target graph runs in ONNX Runtime with the plugin kernels as custom "
                           f"operators, which are unavailable: {why}")
    options.register_custom_ops_library(register_custom_ops())
    return ort.InferenceSession(with_custom_ops(model).SerializeToString(), options, providers=providers, **extra)


def run_session(session, inputs: dict[str, np.ndarray], names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run ``session`` and return its outputs by name."""
    names = names or [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))
