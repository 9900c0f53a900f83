"""ONNX (+ plugin library) -> TensorRT engine: builder, trtexec recipes, runner, inspector.

Imports neither torch nor tensorrt nor instancevg at module level: an engine is built and run from files
(the graph, its sidecar, the plugin library), and the package imports on machines without TensorRT.
"""
