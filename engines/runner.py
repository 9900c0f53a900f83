"""Run a built engine with torch CUDA tensors as I/O buffers on one stream (optionally a CUDA graph).

torch and tensorrt are imported inside the functions that need them, so ``engines`` imports anywhere.
"""
from __future__ import annotations

from pathlib import Path

from .plugin_library import check_plugin_library, engine_plugin_library
from .sidecar import read_sidecar
from .tensorrt_import import check_same_gpu, check_same_major, import_tensorrt


class EngineRunner:
    """runner(inputs: {name: array or CUDA tensor}) -> {output name: CUDA tensor}.

    The engine's sidecar tells the TensorRT version it was built with (a different major is refused) and
    the plugin library to load; ``plugin_library`` (--plugins: a build folder or a library in it) overrides the
    latter.
    """

    def __init__(self, engine_path: str, plugin_library: str | None = None, device: int = 0,
                 cuda_graph: bool = False):
        import torch

        trt = import_tensorrt()
        self.torch, self.trt = torch, trt
        self.sidecar = read_sidecar(engine_path)
        check_same_major(f"engine {engine_path}", self.sidecar["tensorrt"], trt.__version__)
        library = engine_plugin_library(self.sidecar, plugin_library)
        if not library.is_file():
            raise FileNotFoundError(f"plugin library {library} not found (pass --plugins, the plugins/ build folder)")
        check_plugin_library(library, trt.__version__)
        self.device = torch.device("cuda", device)
        check_same_gpu(f"engine {engine_path}", self.sidecar.get("gpu"), torch.cuda.get_device_name(self.device))
        self.logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(self.device):  # TensorRT takes the current device: this process's GPU
            self.runtime = trt.Runtime(self.logger)
            if self.runtime.get_plugin_registry().load_library(str(library)) is None:
                raise RuntimeError(f"TensorRT could not load the plugin library {library}")
            self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
            if self.engine is None:
                raise RuntimeError(f"TensorRT could not deserialize {engine_path}")
            self.context = self.engine.create_execution_context()
            if self.context is None:
                raise RuntimeError(f"TensorRT could not create an execution context for {engine_path} on {self.device}")
        self.stream = torch.cuda.Stream(self.device)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.cuda_graph = cuda_graph
        self._graph = None
        self._buffers: dict = {}

    def _torch_dtype(self, name):
        return {self.trt.float32: self.torch.float32, self.trt.float16: self.torch.float16,
                self.trt.int32: self.torch.int32, self.trt.int64: self.torch.int64,
                self.trt.bool: self.torch.bool}[self.engine.get_tensor_dtype(name)]

    def __call__(self, inputs: dict) -> dict:
        """Every TensorRT call is checked: a refused shape, address or launch raises with the tensor's name
        instead of returning the buffers of an earlier call."""
        torch = self.torch
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            for name in self.inputs:
                value = torch.as_tensor(inputs[name]).to(self.device, self._torch_dtype(name), non_blocking=True)
                buffer = self._buffers.get(name)
                if buffer is None or buffer.shape != value.shape:
                    self._buffers[name] = buffer = torch.empty_like(value)
                    self._graph = None  # shapes changed: the captured graph no longer applies
                    self._check(self.context.set_input_shape(name, tuple(value.shape)),
                                f"input {name!r} of shape {tuple(value.shape)} is outside the engine's profile")
                buffer.copy_(value)
                self._check(self.context.set_tensor_address(name, buffer.data_ptr()), f"binding input {name!r}")
            for name in self.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise RuntimeError(f"TensorRT could not infer the shape of output {name!r} ({shape})")
                buffer = self._buffers.get(name)
                if buffer is None or tuple(buffer.shape) != shape:
                    self._buffers[name] = buffer = torch.empty(shape, dtype=self._torch_dtype(name), device=self.device)
                    self._graph = None
                self._check(self.context.set_tensor_address(name, buffer.data_ptr()), f"binding output {name!r}")
            if self.cuda_graph:
                self._replay()
            else:
                self._execute("execution")
        self.stream.synchronize()
        return {name: self._buffers[name] for name in self.outputs}

    @staticmethod
    def _check(ok, what: str) -> None:
        if ok is False:
            raise RuntimeError(f"TensorRT refused: {what} (see the TensorRT log)")

    def _execute(self, what: str) -> None:
        self._check(self.context.execute_async_v3(self.stream.cuda_stream), what)

    def _replay(self):
        torch = self.torch
        if self._graph is None:
            self._execute("execution before the CUDA-graph capture")  # warm-up outside the capture
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                self._execute("execution during the CUDA-graph capture")
            self._graph = graph
        self._graph.replay()
