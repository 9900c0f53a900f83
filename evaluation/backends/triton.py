"""The Triton backend: the core model of a running instancevg-triton deployment, fed the shared
preprocessed inputs over HTTP or gRPC. It computes RawOutputs like every other backend, so
``instancevg-bench`` times the served network (transfers and the server's queueing included) and
``instancevg-eval`` scores it; the ensemble's own pre/post-processing is exercised by the clients of the
ensemble (README, "Serving with Triton")."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engines.triton.spec import SETTINGS_PARAMETER, model_names
from instancevg.structures import INPUT_NAMES, RAW_OUTPUT_NAMES, RawOutputs

from .graph import run_in_chunks, settings_from_sidecar

DEFAULT_MODEL = model_names("instancevg")["core"]


def parse_url(url: str) -> tuple[str, str]:
    """'grpc://host:port' / 'http://host:port' / 'host:port' (HTTP) -> (protocol, host:port)."""
    protocol, sep, address = url.partition("://")
    if not sep:
        protocol, address = "http", url
    if protocol not in ("http", "grpc") or not address or "/" in address.rstrip("/"):
        raise ValueError(f"--url must be http://HOST:PORT, grpc://HOST:PORT or HOST:PORT, got {url!r}")
    return protocol, address.rstrip("/")


def _client_module(protocol: str):
    try:
        if protocol == "grpc":
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
    except ImportError as exc:
        raise RuntimeError(f"the triton backend needs tritonclient: pip install 'instancevg[triton]' ({exc})") from None
    return module


class TritonBackend:
    """Runs the core model ``model`` (default instancevg_core) of a deployment at ``url``; settings
    (config, post-processing) come from the model's config parameter ``instancevg_settings``."""

    name = "triton"

    def __init__(self, url: str, model: str = DEFAULT_MODEL, tokenizer: str | Path | None = None):
        self.url, self.model = url, model
        self.protocol, address = parse_url(url)
        self.module = _client_module(self.protocol)
        from tritonclient.utils import InferenceServerException, triton_to_np_dtype

        self.errors, self.to_numpy = (InferenceServerException, ConnectionError, OSError), triton_to_np_dtype
        self.client = self.module.InferenceServerClient(address)
        try:
            ready = self.client.is_model_ready(model)
            metadata = self.client.get_server_metadata()
        except self.errors as exc:
            raise RuntimeError(f"no Triton server answers at {url}: {exc}") from None
        if not ready:
            raise ValueError(f"model {model!r} is not ready on the Triton server at {url} (--triton-model names the "
                             "core model of an instancevg-triton deployment, e.g. instancevg_core)")
        config = self.client.get_model_config(model, **({"as_json": True} if self.protocol == "grpc" else {}))
        config = config.get("config", config)
        try:
            self.sidecar = json.loads(config["parameters"][SETTINGS_PARAMETER]["string_value"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{url}/{model} is not the core model of an instancevg-triton deployment (its config "
                             f"has no {SETTINGS_PARAMETER} parameter)") from None
        self.config, self.post, self.tokenizer_path = settings_from_sidecar(self.sidecar, f"{url}/{model}", tokenizer)
        self.max_batch = int(config.get("max_batch_size", 0))
        self.input_types = {i["name"]: i["data_type"].removeprefix("TYPE_") for i in config["input"]}
        self.outputs = [o["name"] for o in config["output"]]
        self.server = {"name": metadata["name"] if isinstance(metadata, dict) else metadata.name,
                       "version": metadata["version"] if isinstance(metadata, dict) else metadata.version}
        self.kind = config.get("platform") or config.get("backend")

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = []
        for name in INPUT_NAMES:
            dtype = self.input_types[name]
            array = np.ascontiguousarray(inputs[name], dtype=self.to_numpy(dtype))
            tensor = self.module.InferInput(name, list(array.shape), dtype)
            tensor.set_data_from_numpy(array)
            request.append(tensor)
        try:
            result = self.client.infer(self.model, request,
                                       outputs=[self.module.InferRequestedOutput(n) for n in RAW_OUTPUT_NAMES])
        except self.errors as exc:
            raise RuntimeError(f"Triton inference on {self.url}/{self.model} failed: {exc}") from None
        return {n: result.as_numpy(n) for n in RAW_OUTPUT_NAMES}

    def forward(self, inputs: dict[str, np.ndarray]) -> RawOutputs:
        n = len(inputs[INPUT_NAMES[0]])
        return run_in_chunks(self._run, inputs, None if self.max_batch == 0 or n <= self.max_batch else self.max_batch)

    def describe(self) -> dict:
        return {"name": self.name, "url": self.url, "protocol": self.protocol, "model": self.model,
                "core": self.kind, "server": self.server, "max_batch_size": self.max_batch,
                "config": self.config.name, "precision": self.sidecar.get("precision")}
