"""Triton Python-backend model: the preprocessing step of an instancevg ensemble (written by
instancevg-triton; runs where instancevg is importable, see the README's "Serving with Triton").

Each request carries ``image_bytes`` [b, 1] (encoded image files) and ``expression`` [b, 1] (UTF-8);
the response holds the network inputs in the graph's dtypes and ``original_size`` [b, 2]. A request
that cannot be decoded or tokenized gets an error response; the others in the batch are served.
"""
import json
from pathlib import Path

import triton_python_backend_utils as pb_utils
from instancevg_environment import use_environment


def error_response(message):
    code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
    error = pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
    return pb_utils.InferenceResponse(error=error)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        use_environment(config)
        from engines.triton.spec import REQUEST_INPUTS, SETTINGS_PARAMETER, TOKENIZER_PARAMETER
        from evaluation.serving import Preprocessor

        self.inputs = [name for name, _, _ in REQUEST_INPUTS]
        parameters = {k: v["string_value"] for k, v in config["parameters"].items()}
        folder = Path(args["model_repository"]) / args["model_version"]
        self.preprocessor = Preprocessor(json.loads(parameters[SETTINGS_PARAMETER]),
                                         folder / parameters[TOKENIZER_PARAMETER], source=config["name"])
        self.outputs = [o["name"] for o in config["output"]]

    def execute(self, requests):
        responses = []
        for request in requests:
            images, expressions = (pb_utils.get_input_tensor_by_name(request, name).as_numpy().reshape(-1)
                                   for name in self.inputs)
            try:
                tensors = self.preprocessor(list(images), list(expressions))
            except ValueError as exc:
                responses.append(error_response(str(exc)))
                continue
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(n, tensors[n]) for n in self.outputs]))
        return responses
