"""Reference semantics of the custom ops (ARCHITECTURE.md, Ops).

The model calls these functions; the exporter decides their ONNX form; the TensorRT plugins implement
the same contracts; tests compare all of them with these definitions. ``export_target`` selects, during an ONNX export,
whether the ops emit TensorRT plugin nodes or standard ops.
"""
from .export_target import current_export_target, emit_plugin_nodes, onnx_export_target
from .ms_deform_attn import ms_deform_attn
from .select_points import points_from_indices, select_points
from .select_text_tokens import select_text_tokens, text_token_indices

__all__ = ["ms_deform_attn", "select_points", "points_from_indices", "select_text_tokens",
           "text_token_indices", "onnx_export_target", "current_export_target", "emit_plugin_nodes"]
