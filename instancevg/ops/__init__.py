"""The custom ops: one definition of each op's semantics, two implementations.

The model calls these functions; the exporter decides their ONNX form (``export_target``: TensorRT plugin
nodes or standard ops); the TensorRT plugins implement the same contracts. Eager runs compute them with
the ``reference`` implementation (PyTorch, the definitions here) or, inside ``use_ops("plugin")``, with the
plugins' own kernels through their C ABI (``plugin``, ``kernels``). ``forced_selection`` replaces AQSM's
selections by given indices.
"""
from .context import IMPLEMENTATIONS, current_ops, forced_selection, use_ops
from .export_target import current_export_target, emit_plugin_nodes, onnx_export_target
from .ms_deform_attn import level_starts, ms_deform_attn
from .select_points import distance_scale, points_from_indices, select_points
from .select_text_tokens import select_text_tokens, text_token_indices

__all__ = ["ms_deform_attn", "level_starts", "select_points", "distance_scale", "points_from_indices",
           "select_text_tokens", "text_token_indices", "onnx_export_target", "current_export_target",
           "emit_plugin_nodes", "use_ops", "current_ops", "forced_selection", "IMPLEMENTATIONS"]
