"""Validate a generated repository: every ``config.pbtxt`` parsed with Triton's model-config schema (the
protobuf ``tritonclient`` ships), the ensemble's wiring (every tensor produced before it is consumed, with
the same data type and shape), the files each model needs, and the core against the export sidecar."""
from __future__ import annotations

from pathlib import Path

from .configs import network_tensors
from .spec import ENVIRONMENT_MODULE, TOKENIZER_PARAMETER, model_names

MODEL_FILES = {"tensorrt_plan": ("model.plan",), "onnxruntime": ("model.onnx",),
               "python": ("model.py", ENVIRONMENT_MODULE, "model.onnx", "model.json")}


def schema():
    """(model_config_pb2, text_format) from tritonclient, or a clear error."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise RuntimeError("checking config.pbtxt against Triton's model-config schema needs tritonclient: "
                           f"pip install 'instancevg[triton]', or pass --no-validate ({exc})") from None
    return model_config_pb2, text_format


def parse_config(text: str, source: str):
    """``config.pbtxt`` text -> inference.ModelConfig message; ValueError naming the file otherwise."""
    model_config_pb2, text_format = schema()
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ValueError(f"{source} is not a valid Triton model config: {exc}") from None


def _io(config) -> tuple[dict, dict]:
    """{name: (data type name, dims)} of a config's inputs and outputs."""
    model_config_pb2, _ = schema()

    def table(tensors):
        return {t.name: (model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in tensors}

    return table(config.input), table(config.output)


def _dims_match(a: list[int], b: list[int]) -> bool:
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b))


def core_kind(config) -> str:
    """'tensorrt_plan', 'onnxruntime', 'python' or 'unknown' for a core model's config."""
    if config.backend == "python":
        return "python"
    if config.platform == "tensorrt_plan" or config.backend == "tensorrt":
        return "tensorrt_plan"
    if config.platform == "onnxruntime_onnx" or config.backend == "onnxruntime":
        return "onnxruntime"
    return "unknown"


def check_core_against_sidecar(config, sidecar: dict, batch: tuple[int, int, int] | None, source: str) -> list[str]:
    """The core's tensors are the graph's (names, data types, dims) and its batch fits the graph's range."""
    problems = []
    inputs, outputs = _io(config)
    for kind, have, entries in (("input", inputs, sidecar["inputs"]), ("output", outputs, sidecar["outputs"])):
        want = {t["name"]: (str(t["data_type"]), t["dims"]) for t in network_tensors(entries, source)}
        if list(have) != list(want):
            problems.append(f"{source}: core {kind}s {list(have)} differ from the sidecar's {list(want)}")
            continue
        problems += [f"{source}: core {kind} {n} is {have[n]}, the sidecar says {want[n]}"
                     for n in want if have[n] != want[n]]
    if core_kind(config) != "python":
        if batch is None:
            problems.append(f"{source}: a fixed-batch graph cannot take Triton's batches (export with --dynamic-batch)")
        elif not (batch[0] == 1 and 1 <= config.max_batch_size <= batch[2]):
            problems.append(f"{source}: max_batch_size {config.max_batch_size} is outside the graph's batch range "
                            f"{batch[0]}:{batch[2]} (which must start at 1)")
    return problems


def _check_ensemble(ensemble, configs: dict, source: str) -> list[str]:
    problems = []
    inputs, outputs = _io(ensemble)
    available = dict(inputs)  # tensor -> (type, dims) produced so far
    by_name = {c.name: c for c in configs.values()}
    for index, step in enumerate(ensemble.ensemble_scheduling.step):
        model = by_name.get(step.model_name)
        where = f"{source}: step {index} ({step.model_name})"
        if model is None:
            problems.append(f"{where}: no such model in the repository")
            continue
        model_inputs, model_outputs = _io(model)
        if set(step.input_map) != set(model_inputs):
            problems.append(f"{where}: maps inputs {sorted(step.input_map)}, the model has {sorted(model_inputs)}")
        for key, tensor in step.input_map.items():
            if tensor not in available:
                problems.append(f"{where}: consumes {tensor!r} before anything produces it")
            elif key in model_inputs and (available[tensor][0] != model_inputs[key][0]
                                          or not _dims_match(available[tensor][1], model_inputs[key][1])):
                problems.append(f"{where}: {tensor!r} is {available[tensor]}, input {key} wants {model_inputs[key]}")
        for key, tensor in step.output_map.items():
            if key not in model_outputs:
                problems.append(f"{where}: the model has no output {key!r}")
            elif tensor in available:
                problems.append(f"{where}: {tensor!r} is produced twice")
            else:
                available[tensor] = model_outputs[key]
        if model.max_batch_size < ensemble.max_batch_size:
            problems.append(f"{where}: max_batch_size {model.max_batch_size} < the ensemble's "
                            f"{ensemble.max_batch_size}")
    for name, (dtype, dims) in outputs.items():
        if name not in available:
            problems.append(f"{source}: ensemble output {name!r} is produced by no step")
        elif available[name][0] != dtype or not _dims_match(available[name][1], dims):
            problems.append(f"{source}: ensemble output {name!r} is {(dtype, dims)}, its step makes {available[name]}")
    return problems


def check_repository(repository: str | Path, name: str, sidecar: dict | None = None,
                     batch: tuple[int, int, int] | None = None) -> dict:
    """Check the deployment ``name`` in ``repository``; returns {role: ModelConfig message}. Raises
    ValueError listing every problem. ``sidecar`` (the ONNX sidecar) and ``batch`` (the graph's batch
    range) enable the core's checks against the graph."""
    repository = Path(repository)
    configs, problems = {}, []
    for role, model in model_names(name).items():
        path = repository / model / "config.pbtxt"
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        config = configs[role] = parse_config(path.read_text(), str(path))
        if config.name != model:
            problems.append(f"{path}: name {config.name!r} differs from its folder {model!r}")
        if not (repository / model / "1").is_dir():
            problems.append(f"{repository / model / '1'} (the version folder) is missing")
    if problems:
        raise ValueError("invalid Triton repository:\n  " + "\n  ".join(problems))
    kind = core_kind(configs["core"])
    needed = {"preprocess": ["model.py", ENVIRONMENT_MODULE,
                             configs["preprocess"].parameters[TOKENIZER_PARAMETER].string_value],
              "core": list(MODEL_FILES.get(kind, ())), "postprocess": ["model.py", ENVIRONMENT_MODULE]}
    for role, files in needed.items():
        folder = repository / model_names(name)[role] / "1"
        problems += [f"{folder / f} is missing" for f in files if not f or not (folder / f).is_file()]
    problems += _check_ensemble(configs["ensemble"], configs, str(repository / name / "config.pbtxt"))
    if sidecar is not None:
        problems += check_core_against_sidecar(configs["core"], sidecar, batch,
                                               str(repository / model_names(name)["core"] / "config.pbtxt"))
    if problems:
        raise ValueError("invalid Triton repository:\n  " + "\n  ".join(problems))
    return configs
