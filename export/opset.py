"""Opset 18 -> 17 for the exported graph.

torch 2.13's dynamo exporter translates at opset >= 18 and, asked for 17, silently keeps 18; neither
onnx's version converter ("No Adapter From Version 18 for Split") nor onnxscript's (18..25 only) goes
down. Opset 18 changed only a few operators' signatures, and our graphs use these: Split (``num_outputs``
attribute), ReduceMax / ReduceMean and the other reductions (``axes`` as an input instead of an
attribute) and Resize (new attributes, which we accept at their opset-13 defaults). Each is rewritten to
its opset-13 form; any other operator whose signature changed at 18 is refused with its name.
The result is checked by onnx.checker and strict shape inference and then verified like every graph.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

# reductions whose axes moved from attribute (13) to input (18); ReduceSum moved already at 13
_AXES_INPUT_REDUCTIONS = {"ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                          "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}
_RESIZE_18_DEFAULTS = {"antialias": 0, "keep_aspect_ratio_policy": b"stretch"}


def downgrade_to_opset17(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite an opset-18 ``model`` in place to opset 17 and return it; raises ValueError naming the
    node when a construct has no opset-17 equivalent."""
    opsets = {o.domain: o for o in model.opset_import}
    default = opsets.get("") or opsets.get("ai.onnx")
    if default is None or default.version != 18:
        raise ValueError(f"downgrade_to_opset17 expects an opset-18 graph, got {default and default.version}")
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    shapes = _static_shapes(model)
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        where = f"node {node.name!r} ({node.op_type})"
        if node.op_type == "Split":
            _split_to_13(node, graph, shapes, where)
        elif node.op_type in _AXES_INPUT_REDUCTIONS:
            _reduction_to_13(node, constants, where)
        elif node.op_type == "Resize":
            _resize_to_13(node, where)
        elif onnx.defs.get_schema(node.op_type, 18).since_version == 18:
            raise ValueError(f"{where}: {node.op_type} changed at opset 18 and has no opset-17 rewrite here; "
                             "export with --opset 18")
    default.version = 17
    return model


def _static_shapes(model: onnx.ModelProto) -> dict[str, list]:
    shapes = {}
    for info in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _split_to_13(node, graph, shapes, where):
    attrs = {a.name: a for a in node.attribute}
    if "num_outputs" not in attrs:
        return  # split sizes already given as an input: valid at 13
    parts = attrs["num_outputs"].i
    axis = attrs["axis"].i if "axis" in attrs else 0
    shape = shapes.get(node.input[0])
    if not shape or shape[axis] is None:
        raise ValueError(f"{where}: num_outputs={parts} on a dimension of unknown size; export with --opset 18")
    size = shape[axis]
    chunk = -(-size // parts)  # opset 18: equal chunks, the last one smaller
    sizes = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else [])
    name = f"{node.name or node.output[0]}_split_sizes"
    graph.initializer.append(numpy_helper.from_array(np.array(sizes, np.int64), name))
    node.input.append(name)
    keep = [a for a in node.attribute if a.name != "num_outputs"]
    del node.attribute[:]
    node.attribute.extend(keep)


def _reduction_to_13(node, constants, where):
    attrs = {a.name: a for a in node.attribute}
    noop = attrs["noop_with_empty_axes"].i if "noop_with_empty_axes" in attrs else 0
    if len(node.input) > 1 and node.input[1]:
        if node.input[1] not in constants:
            raise ValueError(f"{where}: axes are computed at run time; export with --opset 18")
        axes = [int(a) for a in constants[node.input[1]].reshape(-1)]
        del node.input[1:]
        keep = [a for a in node.attribute if a.name != "noop_with_empty_axes"]
        del node.attribute[:]
        node.attribute.extend(keep + [helper.make_attribute("axes", axes)])
    elif noop:
        raise ValueError(f"{where}: noop_with_empty_axes=1 has no opset-13 form; export with --opset 18")
    else:
        keep = [a for a in node.attribute if a.name != "noop_with_empty_axes"]
        del node.attribute[:]
        node.attribute.extend(keep)


def _resize_to_13(node, where):
    keep = []
    for attr in node.attribute:
        if attr.name in _RESIZE_18_DEFAULTS:
            value = helper.get_attribute_value(attr)
            if value != _RESIZE_18_DEFAULTS[attr.name]:
                raise ValueError(f"{where}: {attr.name}={value!r} needs opset 18")
            continue
        keep.append(attr)
    del node.attribute[:]
    node.attribute.extend(keep)
