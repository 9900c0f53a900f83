"""The INT8 policy and the explicitly quantized (Q/DQ) graph of ``instancevg-export --int8``.

One calibrated Q/DQ graph serves TensorRT (explicit quantization: engines build INT8 kernels exactly where
the graph has QuantizeLinear/DequantizeLinear pairs) and ONNX Runtime (its CPU provider fuses the same
pairs into int8 kernels). The quantizer is ``onnxruntime.quantization``'s static QDQ quantizer, set up for
TensorRT's rules: signed INT8, symmetric, zero point 0, per-channel weights on the output-channel axis,
per-tensor activations, dedicated Q/DQ pairs per consumer, no quantized biases.

The policy (one table, :data:`FLOAT_MODULES`, and two op lists) decides which nodes compute in INT8:

- only weighted ops get INT8 inputs (:data:`INT8_OPS`): Conv, ConvTranspose, MatMul, Gemm with a constant
  weight (products of two activations, the attention's q.k^T and softmax.v, stay float); everything else
  (LayerNorm, softmax, GELU, residual adds, resizes, GridSample, Einsum, the plugin nodes) computes in float
  (float32, or the FP16 policy with ``--fp16``), which is TensorRT's recommended placement;
- Conv outputs are quantized too (:data:`OUTPUT_QUANTIZED_OPS`): ONNX Runtime's CPU provider has INT8
  convolutions only as QLinearConv (INT8 in and out) and otherwise runs them in float; TensorRT fuses the
  output Q into the convolution. MatMul/Gemm outputs stay float (ONNX Runtime: MatMulIntegerToFloat);
- the weighted nodes of the modules in :data:`FLOAT_MODULES` stay float, each for the reason given there
  (the AQSM selection path, the score/box/existence heads, the query-sized decoder layers that drive the
  MSDeformAttn plugin's sampling, ...). Nodes are mapped to modules by the exporter's
  ``pkg.torch.onnx.name_scopes`` metadata; a weighted node without it stays float.

ONNX Runtime caveat (measured with onnxruntime 1.32, gres-base): at the default optimisation level two
float fusions run before the QDQ fusions and take the INT8 MatMuls away from them (MatMulAddFusion turns
DQ->MatMul->Add into a float Gemm; CommonSubexpressionElimination merges the per-consumer Q nodes of
q/k/v, and a Q feeding several DQs is not fused). The graph then runs slower than FP32. Sessions for INT8
graphs must disable both (:data:`ORT_DISABLED_OPTIMIZERS`). With ``--fp16`` the float parts are FP16 and
ONNX Runtime 1.32's CPU optimisations miscompute the graph (mask logits off by ~30 % of their range, while
the same graph run op by op, and the tensorrt-target graph in onnx.reference, are within the INT8
tolerances): such sessions run unoptimised. :func:`onnxruntime_session` gives the settings; the sidecar
records them and ``evaluation.backends.onnxruntime`` and the export verification apply them.
"""
from __future__ import annotations

import ast
import dataclasses
import fnmatch
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx

INT8_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
OUTPUT_QUANTIZED_OPS = ("Conv",)
ORT_DISABLED_OPTIMIZERS = ("MatMulAddFusion", "CommonSubexpressionElimination")

_DECODER = "head.decoder_transformer.decoder.layers.*"
_QUERY_SIZED = ("deformable decoder on the N queries (< 0.1 % of the FLOPs: INT8 saves nothing and adds "
                "error); the sampling offsets and attention weights set the MSDeformAttn plugin's sub-pixel "
                "sampling, output_proj reads the plugin's float output")
# module pattern (fnmatch on the module path, e.g. head.query_generation.mlp.layers.0) -> why it stays float
FLOAT_MODULES: dict[str, str] = {
    "vis_enc.beit3.vision_embed*": "patch embedding: the first layer, reading the normalised image; on top of "
                                   "the rest of the policy it triples the error in the per-layer comparison "
                                   "(export/README.md); 0.6 % of gres-base's FLOPs",
    "head.query_generation*": "AQSM (text filter, T2I attention -> softmax -> max -> sigmoid -> point selection, "
                              "query MLP): neighbouring attention cells differ by 1e-5..1e-4, far below INT8 "
                              "resolution; quantized, the engine would select other points (as with FP16)",
    "head.lan_embedding": "F_t, whose channel means AQSM's text filter ranks to select tokens",
    "head.img_embedding": "F_v, the memory AQSM's T2I attention selects points from (its FPN consumers read "
                          "it through their own Q/DQ)",
    "head.query_pos_embedding": "positional embedding of the selected points (sub-cell positions)",
    "head.decoder_transformer.reference_points": "reference points: sampling locations and box decoding",
    f"{_DECODER}.attentions.0*": _QUERY_SIZED,
    f"{_DECODER}.attentions.1.sampling_offsets": _QUERY_SIZED,
    f"{_DECODER}.attentions.1.attention_weights": _QUERY_SIZED,
    f"{_DECODER}.attentions.1.output_proj": _QUERY_SIZED,
    f"{_DECODER}.ffns*": _QUERY_SIZED,
    "head.class_embed*": "score head (class logits -> softmax score, thresholded at thr_q)",
    "head.bbox_embed*": "box head (inverse-sigmoid box decoding)",
    "head.nt_embed*": "existence head (no-target decision)",
    "head.seg_branch*": "global mask logits (thresholded per pixel)",
}
NO_SCOPE = "no module scope in the graph metadata: provenance unknown, kept float"
# MatMul/Gemm whose operands are both activations (no constant weight): the attention products
ACTIVATION_PRODUCT = ("product of two activations (attention q.k^T and softmax.v): per-tensor INT8 rounds every "
                      "softmax probability below 1/127 of the largest to zero and q.k^T feeds the softmax; the "
                      "most sensitive layers in the per-layer comparison (export/README.md); 9 % of "
                      "gres-base's FLOPs")


def module_path(node: onnx.NodeProto) -> str | None:
    """The innermost module that emitted ``node`` (``head.neck.fpn_convs.0.conv``), from the exporter's
    name_scopes metadata; None when the node has none (nodes added after tracing)."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = [s for s in ast.literal_eval(prop.value)[:-1] if s]  # the last entry is the op's name
            return scopes[-1].removeprefix("model.") if scopes else ""
    return None


def float_reason(path: str | None) -> str | None:
    """Why a weighted node of module ``path`` stays float (None: it is quantized)."""
    if path is None:
        return NO_SCOPE
    for pattern, reason in FLOAT_MODULES.items():
        if fnmatch.fnmatchcase(path, pattern):
            return reason
    return None


@dataclass
class QuantPlan:
    """The policy applied to one graph: weighted nodes to quantize and those kept float (with the reason)."""

    quantize: list[str] = field(default_factory=list)
    keep_float: dict[str, str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)  # node name -> module path

    def summary(self) -> dict:
        reasons = Counter(self.keep_float.values())
        return {"quantized_nodes": len(self.quantize), "float_weighted_nodes": len(self.keep_float),
                "float_by_reason": [{"reason": r, "nodes": n} for r, n in reasons.most_common()]}


def plan(model: onnx.ModelProto) -> QuantPlan:
    """Classify every weighted node of ``model`` by the policy."""
    result = QuantPlan()
    names = [n.name for n in model.graph.node]
    if len(set(names)) != len(names) or "" in names:
        raise ValueError("the graph's node names must be unique and non-empty for the INT8 policy")
    constants = {t.name for t in model.graph.initializer} | {
        n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    for node in model.graph.node:
        if node.op_type not in INT8_OPS or node.domain not in ("", "ai.onnx"):
            continue
        path = module_path(node)
        result.modules[node.name] = path or ""
        reason = float_reason(path)
        if reason is None and node.op_type in ("MatMul", "Gemm") and not any(i in constants for i in node.input[:2]):
            reason = ACTIVATION_PRODUCT
        if reason is None:
            result.quantize.append(node.name)
        else:
            result.keep_float[node.name] = reason
    return result


def describe_policy() -> dict:
    """The policy as the sidecar records it."""
    return {"scheme": "signed INT8, symmetric, zero point 0; weights per channel on the output-channel axis "
                      "(Conv 0, ConvTranspose 1, MatMul last, Gemm 0 with transB); activations per tensor",
            "int8_ops": list(INT8_OPS), "output_quantized_ops": list(OUTPUT_QUANTIZED_OPS),
            "float_ops": "every other op (normalisations, softmax, activations, residual adds, resizes, "
                         "GridSample, Einsum, plugin nodes)",
            "float_modules": dict(FLOAT_MODULES), "activation_products": ACTIVATION_PRODUCT,
            "quantizer": "onnxruntime.quantization QDQQuantizer (QuantFormat.QDQ)"}


def node_keys(model: onnx.ModelProto) -> dict[tuple, onnx.NodeProto]:
    """Weighted nodes by (module path, op type, occurrence in that module): the same key names the same
    layer in two traces of one model (tensorrt and portable targets), whatever the value names."""
    counter: Counter = Counter()
    keys = {}
    for node in model.graph.node:
        if node.op_type in INT8_OPS and node.domain in ("", "ai.onnx"):
            base = (module_path(node), node.op_type)
            keys[base + (counter[base],)] = node
            counter[base] += 1
    return keys


def needed_tensors(model: onnx.ModelProto, quant: QuantPlan) -> set[str]:
    """Activations that need a calibrated range: float inputs of the quantized nodes (not initializers)
    and the outputs of the output-quantized ones."""
    inits = {t.name for t in model.graph.initializer}
    chosen = set(quant.quantize)
    needed = set()
    for node in model.graph.node:
        if node.name in chosen:
            needed.update(n for n in node.input if n and n not in inits)
            if node.op_type in OUTPUT_QUANTIZED_OPS:
                needed.update(node.output)
    # biases and weights are initializers; MatMul/Gemm B may be an activation (attention) and is kept
    return needed - _non_float(model, needed)


def _non_float(model: onnx.ModelProto, names: set[str]) -> set[str]:
    from .contract import value_types

    types = value_types(model)
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    return {n for n in names if n in types and types[n].elem_type not in floats}


def transfer_ranges(source: onnx.ModelProto, ranges, target: onnx.ModelProto, target_plan: QuantPlan):
    """Calibrated ranges of ``source`` (the portable trace) for the tensors of ``target`` (the tensorrt
    trace of the same model): layers correspond by :func:`node_keys`, inputs/outputs by position.

    Raises ValueError when a needed tensor has no counterpart or two counterparts disagree."""
    from onnxruntime.quantization import TensorsData

    src_keys, dst_keys = node_keys(source), node_keys(target)
    by_name = {node.name: key for key, node in dst_keys.items()}
    needed = needed_tensors(target, target_plan)
    out: dict = {}
    for name in target_plan.quantize:
        key = by_name[name]
        if key not in src_keys:
            raise ValueError(f"no layer {key[0]} ({key[1]} #{key[2]}) in the calibrated portable graph for {name}")
        dst, src = dst_keys[key], src_keys[key]
        for mine, theirs in list(zip(dst.input, src.input)) + list(zip(dst.output, src.output)):
            if mine not in needed or theirs not in ranges:
                continue
            value = ranges[theirs]
            if mine in out and not all(np.array_equal(a, b) for a, b in zip(out[mine].range_value, value.range_value)):
                raise ValueError(f"tensor {mine} maps to several calibrated tensors with different ranges")
            out[mine] = value
    missing = sorted(needed - set(out))
    if missing:
        raise ValueError(f"no calibrated range for {len(missing)} tensors of the tensorrt graph "
                         f"(e.g. {', '.join(missing[:5])})")
    return TensorsData(ranges.calibration_method, out)


def quantize_graph(model: onnx.ModelProto, ranges, quant: QuantPlan) -> onnx.ModelProto:
    """The Q/DQ graph: ONNX Runtime's QDQQuantizer with TensorRT's settings on a copy of ``model``, then
    the float islands restored (:func:`restore_float_consumers`)."""
    from onnxruntime.quantization import QDQQuantizer, QuantType

    missing = sorted(n for n in needed_tensors(model, quant) if n not in ranges)
    if missing:
        raise ValueError(f"no calibrated range for {', '.join(missing[:5])}")
    quantizer = QDQQuantizer(  # works on its own copy (saved and reloaded with shape inference)
        model, True, False, QuantType.QInt8, QuantType.QInt8, ranges,
        list(quant.quantize), list(quant.keep_float), list(INT8_OPS),
        {"ActivationSymmetric": True, "WeightSymmetric": True,
         "QuantizeBias": False,  # TensorRT takes float biases (INT32 bias DQ is not an explicit-quantization form)
         "DedicatedQDQPair": True,  # one pair per consumer: TensorRT fuses each into its own layer
         "OpTypesToExcludeOutputQuantization": [t for t in INT8_OPS if t not in OUTPUT_QUANTIZED_OPS]})
    quantizer.quantize_model()
    quantizer.model.topological_sort()  # the quantizer appends its Q/DQ nodes at the end
    quantized = quantizer.model.model
    restore_float_consumers(quantized, quant)
    quantized.producer_name, quantized.producer_version = model.producer_name, model.producer_version
    return quantized


def restore_float_consumers(model: onnx.ModelProto, quant: QuantPlan) -> int:
    """Give the float consumers of an input-quantized tensor the original tensor back.

    The quantizer replaces *every* consumer of a tensor it quantizes for one INT8 node with the
    dequantized copy (e.g. the residual Add next to an FFN's MatMul, or AQSM next to the FPN): those are
    float by policy and must not see INT8 rounding. Output-quantized tensors (a Conv's INT8 result) keep
    their DQ for every consumer. Returns the number of rewired inputs; orphaned Q/DQ nodes are removed."""
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    quantized = set(quant.quantize)
    rewired = 0
    for dq in [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] not in inits]:
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        source = producer.get(q.input[0])
        if source is not None and source.name in quantized and source.op_type in OUTPUT_QUANTIZED_OPS:
            continue
        for node in graph.node:
            if node.name in quantized or node is dq:
                continue
            for i, name in enumerate(node.input):
                if name == dq.output[0]:
                    node.input[i] = q.input[0]
                    rewired += 1
    _remove_orphans(model)
    return rewired


def _remove_orphans(model: onnx.ModelProto) -> None:
    graph = model.graph
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in used for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def qdq_summary(model: onnx.ModelProto, quant: QuantPlan) -> dict:
    """Counts for the sidecar and report: Q/DQ nodes, INT8 weights, quantized nodes by op type."""
    ops = {n.name: n.op_type for n in model.graph.node}
    counts = Counter(n.op_type for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear"))
    by_op = Counter(ops.get(name, "?") for name in quant.quantize)
    inits = {t.name: t for t in model.graph.initializer}
    int8_weights = sum(1 for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
                       and inits[n.input[0]].data_type == onnx.TensorProto.INT8)
    return {"quantize_linear": counts["QuantizeLinear"], "dequantize_linear": counts["DequantizeLinear"],
            "int8_weight_tensors": int8_weights, "quantized_by_op": dict(by_op.most_common())}


def group_by_module(names: list[str], modules: dict[str, str], depth: int = 4) -> dict[str, int]:
    """Node counts per module prefix (``vis_enc.beit3.encoder.layers``) for a readable sidecar."""
    groups: dict[str, int] = defaultdict(int)
    for name in names:
        parts = (modules.get(name) or "?").split(".")
        groups[".".join(p for p in parts[:depth] if not p.isdigit()) or "?"] += 1
    return dict(sorted(groups.items()))


def onnxruntime_session(float_precision: str) -> dict:
    """ONNX Runtime session settings an INT8 graph needs (module docstring), as the sidecar records them."""
    if float_precision == "fp16":
        return {"graph_optimization_level": "ORT_DISABLE_ALL", "disabled_optimizers": [],
                "why": "onnxruntime 1.32's CPU graph optimisations miscompute FP16 Q/DQ graphs; run op by op "
                       "(the FP16+INT8 graph is meant for TensorRT)"}
    return {"graph_optimization_level": "ORT_ENABLE_ALL", "disabled_optimizers": list(ORT_DISABLED_OPTIMIZERS),
            "why": "these float fusions run before ONNX Runtime's QDQ fusions and leave the INT8 MatMuls in float "
                   "(slower than FP32); see export/quantize.py"}


def int8_graph(model: onnx.ModelProto, calibration_graph: onnx.ModelProto, spec, cfg, tokenizer, batch: int,
               float_precision: str = "fp32", log=None) -> tuple[onnx.ModelProto, dict]:
    """Calibrate ``calibration_graph`` (portable: ONNX Runtime runs it) on ``spec``'s samples and return the
    Q/DQ form of ``model`` (the same graph, or the tensorrt trace of the same model, whose ranges are then
    carried over by :func:`transfer_ranges`) with the record the sidecar keeps."""
    from .calibration import calibrate, default_method

    spec = dataclasses.replace(spec, method=spec.method or default_method(float_precision))
    ranges, calibration = calibrate(calibration_graph, spec, cfg, tokenizer, batch, INT8_OPS,
                                    progress=log is not None, log=log)
    quant = plan(model)
    if calibration_graph is not model:
        ranges = transfer_ranges(calibration_graph, ranges, model, quant)
    quantized = quantize_graph(model, ranges, quant)
    record = {"calibration": calibration,
              "calibrated_on": "this graph" if calibration_graph is model else
                               "the portable trace of the same model (ranges carried over layer by layer)",
              "policy": describe_policy(), **quant.summary(), "qdq": qdq_summary(quantized, quant),
              "quantized_by_module": group_by_module(quant.quantize, quant.modules),
              "quantized_nodes": list(quant.quantize),
              "onnxruntime_session": onnxruntime_session(float_precision)}
    if log is not None:
        log(f"      quantized {len(quant.quantize)} weighted nodes ({', '.join(f'{k} {v}' for k, v in record['qdq']['quantized_by_op'].items())}), "
            f"{len(quant.keep_float)} kept float by policy")
    return quantized, record
