"""PyTorch -> ONNX: the model's own forward traced by torch 2.13's dynamo exporter.

The ops in ``instancevg.ops`` decide their ONNX form under ``onnx_export_target`` (custom nodes for the
tensorrt target, standard ops for portable); nothing here rewrites the model. The graph is traced with
two extra *debug outputs* (the selected point and text-token indices) so that verification can compare
the selections exactly; :func:`strip_debug_outputs` removes them from the graph that is shipped (they are
intermediate values the rest of the graph consumes, so no node goes with them).
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings

import onnx
import torch
from torch import nn

from instancevg.inference import compute_dtype
from instancevg.ops import onnx_export_target
from instancevg.structures import INPUT_NAMES, RAW_OUTPUT_NAMES

from .opset import downgrade_to_opset17
from .options import MAX_IR_VERSION, ExportOptions
from .precision import io_float_dtype

DEBUG_OUTPUT_NAMES = ("debug_point_index", "debug_text_index")
BATCH_DIM = "batch"


class ExportWrapper(nn.Module):
    """The model's forward with ONNX-friendly I/O: a tuple in RAW_OUTPUT_NAMES order (+ debug outputs).

    forward(image [B,3,S,S] io float, text_ids [B,L] int64, text_pad_mask [B,L] bool) ->
    class_logits, boxes, points, instance_mask_logits, global_mask_logits, exist_logits (io float)
    [, point index [B,N] int64, text-token index [B,N] int64]. The image is cast to the model's weight type
    (FP16 graphs) and the float outputs to the I/O type (float32 unless --fp16-io).
    """

    def __init__(self, model: nn.Module, io_dtype: torch.dtype = torch.float32, debug_outputs: bool = True):
        super().__init__()
        self.model = model
        self.io_dtype = io_dtype
        self.debug_outputs = debug_outputs

    def forward(self, image: torch.Tensor, text_ids: torch.Tensor, text_pad_mask: torch.Tensor):
        out = self.model.forward_all(image.to(compute_dtype(self.model)), text_ids, text_pad_mask)
        outputs = tuple(out[name].to(self.io_dtype) for name in RAW_OUTPUT_NAMES)
        if self.debug_outputs:
            outputs += (out["point_index"], out["text_index"])
        return outputs


def output_names(debug_outputs: bool) -> list[str]:
    return list(RAW_OUTPUT_NAMES) + (list(DEBUG_OUTPUT_NAMES) if debug_outputs else [])


@contextlib.contextmanager
def _quiet_exporter(verbose: bool):
    """torch.onnx prints its progress and optimiser chatter; keep the user's console to our own lines."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript",
                                              "torch.fx.experimental.symbolic_shapes", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def trace_to_onnx(model: nn.Module, sample: tuple[torch.Tensor, ...], options: ExportOptions,
                  verbose: bool = False) -> onnx.ModelProto:
    """Export ``model`` (already cast to the precision policy) on ``sample`` inputs (image in the I/O type).

    Returns the ModelProto with the debug outputs, the batch dimension named ``batch`` when dynamic,
    the requested opset (17 by our own rewrite, see opset.py) and IR version <= MAX_IR_VERSION.
    """
    wrapper = ExportWrapper(model, io_float_dtype(options.fp16_io), debug_outputs=True).eval()
    dynamic_shapes = None
    if options.batch.dynamic:
        batch = torch.export.Dim(BATCH_DIM, min=options.batch.min, max=options.batch.max)
        dynamic_shapes = {name: {0: batch} for name in INPUT_NAMES}
    # the exporter translates at >= 18 and, asked for 17, silently stays at 18: we go down ourselves
    trace_opset = max(options.opset, 18)
    with torch.no_grad(), onnx_export_target(options.target), _quiet_exporter(verbose):
        program = torch.onnx.export(wrapper, sample, dynamo=True, opset_version=trace_opset,
                                    input_names=list(INPUT_NAMES), output_names=output_names(True),
                                    dynamic_shapes=dynamic_shapes, optimize=True, verbose=verbose)
    proto = program.model_proto
    if options.opset == 17:
        downgrade_to_opset17(proto)
    got = {o.domain: o.version for o in proto.opset_import}.get("")
    if got != options.opset:
        raise RuntimeError(f"the exporter wrote opset {got}, not the requested {options.opset}")
    if proto.ir_version > MAX_IR_VERSION:
        proto.ir_version = MAX_IR_VERSION
    return proto


def strip_debug_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` without the debug outputs; nodes that only fed them would be removed too (none
    do: both indices feed gathers of the graph). Raises if a node had to go, since the shipped graph must
    be the verified one."""
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    keep = [o for o in stripped.graph.output if o.name not in DEBUG_OUTPUT_NAMES]
    del stripped.graph.output[:]
    stripped.graph.output.extend(keep)
    removed = prune_dead_nodes(stripped)
    if removed:
        raise RuntimeError(f"removing the debug outputs also removed nodes {removed[:5]}: the shipped graph "
                           "would differ from the verified one")
    return stripped


def prune_dead_nodes(model: onnx.ModelProto) -> list[str]:
    """Remove nodes whose outputs reach no graph output; returns their names."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    alive = [False] * len(graph.node)
    for i in reversed(range(len(graph.node))):
        node = graph.node[i]
        if any(name in needed for name in node.output if name):
            alive[i] = True
            needed.update(name for name in node.input if name)
            # subgraph bodies (If/Loop) reference outer values without listing them as inputs
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    needed.update(_outer_references(attr.g))
    removed = [n.name or n.op_type for n, keep in zip(graph.node, alive) if not keep]
    if removed:
        kept = [n for n, keep in zip(graph.node, alive) if keep]
        del graph.node[:]
        graph.node.extend(kept)
        inits = [t for t in graph.initializer if t.name in needed]
        del graph.initializer[:]
        graph.initializer.extend(inits)
    return removed


def _outer_references(graph: onnx.GraphProto) -> set[str]:
    return {name for node in graph.node for name in node.input if name}
