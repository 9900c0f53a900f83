"""Triton Python-backend model: the network of an instancevg ensemble run with ONNX Runtime inside
Triton's Python backend (``instancevg-triton --core python``, for servers without Triton's ONNX Runtime
backend). ``1/model.onnx`` is a portable graph with its sidecar ``1/model.json``; instances Triton places
on a GPU use ONNX Runtime's CUDA provider. Requests batched by Triton run as one batch.
"""
import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
from instancevg_environment import use_environment


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        use_environment(config)
        from evaluation.backends.onnxruntime import OnnxRuntimeBackend

        folder = Path(args["model_repository"]) / args["model_version"]
        device = "cuda" if args.get("model_instance_kind") == "GPU" else "cpu"
        self.backend = OnnxRuntimeBackend(folder / "model.onnx", device=device, tokenizer_required=False)
        self.inputs = [i["name"] for i in config["input"]]
        # the backend returns float32; the config declares the graph's own output types (FP16 I/O graphs)
        self.outputs = {o["name"]: pb_utils.triton_string_to_numpy(o["data_type"]) for o in config["output"]}

    def execute(self, requests):
        feeds = [{n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs} for r in requests]
        sizes = [len(f[self.inputs[0]]) for f in feeds]
        try:
            raw = self.backend.forward({n: np.concatenate([f[n] for f in feeds]) for n in self.inputs}).as_dict()
        except Exception as exc:  # one failed run fails the requests batched into it, never the server
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(f"ONNX Runtime failed: {exc}"))
                    for _ in requests]
        responses, start = [], 0
        for size in sizes:
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor(n, np.ascontiguousarray(raw[n][start:start + size], dtype=t))
                 for n, t in self.outputs.items()]))
            start += size
        return responses
