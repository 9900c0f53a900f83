"""Triton Inference Server model repositories for our exports (``instancevg-triton``).

An ensemble ``instancevg``: a Python-backend preprocessing model (decode, resize, normalise, tokenize),
the core network (``tensorrt_plan`` for engines, ``onnxruntime`` or a Python-backend ONNX Runtime core
for portable graphs) with dynamic batching, and a Python-backend post-processing model. The configs are
generated from the export sidecar; the Python models are templates (``model_templates/``) that import
``instancevg``/``evaluation`` when Triton runs them. Like the rest of ``engines``, this package imports
no ``instancevg``.
"""
