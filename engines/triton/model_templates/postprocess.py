"""Triton Python-backend model: the post-processing step of an instancevg ensemble (written by
instancevg-triton): instancevg's post-processing with the thresholds of the export sidecar (parameter
``instancevg_settings``, ``postprocessing``), predictions rescaled to the original image size, the output
mask as COCO RLE. Requests batched by Triton are post-processed as one batch.
"""
import json

import numpy as np
import triton_python_backend_utils as pb_utils
from instancevg_environment import use_environment


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        use_environment(config)
        from engines.triton.configs import RAW_PREFIX
        from engines.triton.spec import ORIGINAL_SIZE, RESPONSE_OUTPUTS, SETTINGS_PARAMETER
        from evaluation.serving import Postprocessor, response_tensors
        from instancevg.structures import RAW_OUTPUT_NAMES, RawOutputs

        parameters = {k: v["string_value"] for k, v in config["parameters"].items()}
        self.postprocessor = Postprocessor(json.loads(parameters[SETTINGS_PARAMETER]), source=config["name"])
        self.raw = {n: RAW_PREFIX + n for n in RAW_OUTPUT_NAMES}
        self.size, self.outputs = ORIGINAL_SIZE[0], [name for name, _, _ in RESPONSE_OUTPUTS]
        self.make_raw, self.response_tensors = RawOutputs, response_tensors

    def execute(self, requests):
        raws = [{n: pb_utils.get_input_tensor_by_name(r, t).as_numpy().astype(np.float32) for n, t in self.raw.items()}
                for r in requests]
        sizes = [pb_utils.get_input_tensor_by_name(r, self.size).as_numpy() for r in requests]
        try:
            predictions = self.postprocessor(self.make_raw(**{n: np.concatenate([r[n] for r in raws])
                                                             for n in self.raw}), np.concatenate(sizes))
        except Exception as exc:  # fails the requests batched together, never the server
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(f"post-processing failed: {exc}"))
                    for _ in requests]
        responses, start = [], 0
        for size in sizes:
            tensors = self.response_tensors(predictions[start:start + len(size)])
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(n, tensors[n]) for n in self.outputs]))
            start += len(size)
        return responses
