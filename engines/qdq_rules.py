"""TensorRT's explicit-quantization rules, checked on an ONNX graph's QuantizeLinear/DequantizeLinear nodes.

TensorRT builds INT8 kernels from Q/DQ pairs (explicit quantization; TensorRT 11 knows no other way, 10
with ``--stronglyTyped``). What it accepts and fuses, as far as the graph shows it:

1. Q/DQ are standard-domain ops with signed INT8 data (TensorRT's INT8 is signed; UINT8 is refused).
2. Scales are build-time constants, positive and finite, a scalar (per tensor) or 1-D (per channel).
3. Zero points are constant INT8 zeros of the scale's shape (symmetric quantization only).
4. Per-channel scales only on weights (a DQ of a constant), along the consumer's output-channel axis:
   Conv 0 (K of KCRS), ConvTranspose 1 (K of CKRS), MatMul the last axis of B ([K, N] -> N), Gemm 0 with
   transB=1 else 1; one scale per channel. Activations are per tensor.
5. Activation Q/DQ come in pairs: a DQ reads a Q of the same scale and zero point, a Q feeds only DQs.
6. Every pair is fusible: its DQs feed INT8-capable weighted ops (Conv, ConvTranspose, MatMul, Gemm) whose
   other quantizable input is INT8 too, or its Q reads the output of such an op (output quantization,
   fused into that op). Anything else runs as a standalone float rounding TensorRT cannot fuse.
7. Plugin nodes (non-standard domains) run in float: none of their inputs comes from a Q or DQ.

:func:`check_qdq_placement` returns one message per problem, naming the node; an empty list means the
graph fits. It imports onnx and numpy only (engines imports neither torch nor tensorrt at module level).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import numpy_helper

WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
STANDARD_DOMAINS = ("", "ai.onnx")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def has_qdq(model: onnx.ModelProto) -> bool:
    """Whether the graph is explicitly quantized (holds Q/DQ nodes)."""
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS:
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = attr.t
    return values


def _array(values: dict, name: str) -> np.ndarray | None:
    tensor = values.get(name)
    return None if tensor is None else numpy_helper.to_array(tensor)


def _elem_type(values: dict, name: str) -> int | None:
    tensor = values.get(name)
    return None if tensor is None else tensor.data_type


def _axis(node: onnx.NodeProto) -> int:
    for attr in node.attribute:
        if attr.name == "axis":
            return attr.i
    return 1  # the ONNX default


def output_channel_axis(consumer: onnx.NodeProto, weight_rank: int) -> int | None:
    """The axis TensorRT quantizes a weight per channel along, for the weighted op consuming it."""
    if consumer.op_type == "Conv":
        return 0
    if consumer.op_type == "ConvTranspose":
        return 1
    if consumer.op_type == "MatMul":
        return weight_rank - 1
    if consumer.op_type == "Gemm":
        trans_b = next((a.i for a in consumer.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return None


def _check_params(node, values, where) -> tuple[list[str], np.ndarray | None]:
    """Rules 1-3 on one Q/DQ node; returns (problems, scale)."""
    problems = []
    if node.domain not in STANDARD_DOMAINS:
        problems.append(f"{where}: domain {node.domain!r}; TensorRT parses only the standard-domain op")
    if len(node.input) < 3 or not node.input[2]:
        problems.append(f"{where}: no zero point; without an INT8 zero point the data type is UINT8, which "
                        "TensorRT does not support")
    scale = _array(values, node.input[1])
    if scale is None:
        problems.append(f"{where}: scale {node.input[1]!r} is not a constant (TensorRT needs build-time scales)")
    else:
        if scale.ndim > 1:
            problems.append(f"{where}: scale of rank {scale.ndim}; expected a scalar or a 1-D per-channel scale")
        if not (np.isfinite(scale.astype(np.float64)).all() and (scale > 0).all()):
            problems.append(f"{where}: scale {node.input[1]!r} has non-positive or non-finite values")
    if len(node.input) >= 3 and node.input[2]:
        zp = _array(values, node.input[2])
        if zp is None:
            problems.append(f"{where}: zero point {node.input[2]!r} is not a constant")
        else:
            if _elem_type(values, node.input[2]) != onnx.TensorProto.INT8:
                problems.append(f"{where}: zero point of type {zp.dtype}; TensorRT takes signed INT8 only")
            if np.any(zp != 0):
                problems.append(f"{where}: non-zero zero point; TensorRT quantizes symmetrically (zero point 0)")
            if scale is not None and zp.shape != scale.shape:
                problems.append(f"{where}: zero point shape {list(zp.shape)} != scale shape {list(scale.shape)}")
    return problems, scale


def check_qdq_placement(model: onnx.ModelProto) -> list[str]:
    """Problems of the graph's Q/DQ nodes under TensorRT's explicit-quantization rules (module docstring);
    empty when the graph fits (or holds no Q/DQ)."""
    graph = model.graph
    values = _constants(model)
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    graph_outputs = {o.name for o in graph.output}
    problems: list[str] = []

    def is_int8_input(node: onnx.NodeProto, index: int) -> bool:
        source = producer.get(node.input[index]) if index < len(node.input) else None
        return source is not None and source.op_type == "DequantizeLinear"

    for node in graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        where = f"{node.op_type} {node.name!r}"
        found, scale = _check_params(node, values, where)
        problems += found
        if node.op_type == "QuantizeLinear":
            bad = [c for c in consumers[node.output[0]] if c.op_type != "DequantizeLinear"]
            if bad or node.output[0] in graph_outputs:
                problems.append(f"{where}: its INT8 output feeds {', '.join(f'{c.op_type} {c.name!r}' for c in bad) or 'a graph output'}"
                                "; a Q must feed DequantizeLinear only")
            continue
        # DequantizeLinear
        data = node.input[0]
        readers = consumers[node.output[0]]
        if data in values:  # a weight
            if _elem_type(values, data) != onnx.TensorProto.INT8:
                problems.append(f"{where}: weight {data!r} is not INT8")
            weight = _array(values, data)
            for reader in readers:
                if reader.op_type not in WEIGHTED_OPS or list(reader.input[1:2]) != [node.output[0]]:
                    problems.append(f"{where}: dequantized weight feeds {reader.op_type} {reader.name!r} "
                                    "(expected the weight input of Conv, ConvTranspose, MatMul or Gemm)")
                    continue
                if scale is not None and scale.ndim == 1 and scale.size > 1:
                    axis = _axis(node) % max(weight.ndim, 1)
                    want = output_channel_axis(reader, weight.ndim)
                    if axis != want:
                        problems.append(f"{where}: per-channel axis {axis} for the weight of {reader.op_type} "
                                        f"{reader.name!r}; TensorRT quantizes its output channels, axis {want}")
                    elif weight.shape[axis] != scale.size:
                        problems.append(f"{where}: {scale.size} scales for {weight.shape[axis]} channels")
                if not is_int8_input(reader, 0):
                    problems.append(f"{reader.op_type} {reader.name!r}: INT8 weight but float input; TensorRT "
                                    "runs it in float (quantize its input too)")
            continue
        # an activation
        q = producer.get(data)
        if q is None or q.op_type != "QuantizeLinear":
            problems.append(f"{where}: reads {data!r}, not the output of a QuantizeLinear (Q/DQ must come in pairs)")
        else:
            q_scale = _array(values, q.input[1])
            if scale is not None and q_scale is not None and not np.array_equal(scale, q_scale):
                problems.append(f"{where}: scale differs from its QuantizeLinear {q.name!r}")
        if scale is not None and scale.ndim == 1 and scale.size > 1:
            problems.append(f"{where}: per-channel scale on an activation; TensorRT quantizes activations per tensor")
        source = producer.get(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None
        output_quantized = source is not None and source.op_type in WEIGHTED_OPS
        for reader in readers:
            if reader.domain not in STANDARD_DOMAINS:
                problems.append(f"plugin node {reader.domain}::{reader.op_type} {reader.name!r}: input "
                                f"{node.output[0]!r} comes from {where}; plugin nodes run in float")
                continue
            if reader.op_type in WEIGHTED_OPS:
                quantizable = [0, 1] if reader.op_type in ("MatMul", "Gemm") else [0]
                if reader.op_type in ("Conv", "ConvTranspose") and len(reader.input) > 1:
                    quantizable.append(1)
                float_inputs = [i for i in quantizable if not is_int8_input(reader, i)]
                if float_inputs:
                    problems.append(f"{reader.op_type} {reader.name!r}: input {float_inputs[0]} is float while another "
                                    "is INT8; TensorRT needs every input quantized to run it in INT8")
            elif not output_quantized:
                problems.append(f"{where}: feeds {reader.op_type} {reader.name!r} and its Q reads "
                                f"{(source.op_type + ' ' + repr(source.name)) if source else 'a graph input'}: TensorRT "
                                "can fuse this Q/DQ into neither (not the input of a weighted op, not the output of one)")
    for node in graph.node:
        if node.domain not in STANDARD_DOMAINS:
            for name in node.input:
                source = producer.get(name)
                if source is not None and source.op_type == "QuantizeLinear":
                    problems.append(f"plugin node {node.domain}::{node.op_type} {node.name!r}: input {name!r} is "
                                    "INT8 from QuantizeLinear; plugin nodes run in float")
    return sorted(set(problems), key=problems.index)
