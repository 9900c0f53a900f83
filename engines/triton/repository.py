"""Write a Triton model repository for an exported graph or a built engine (``instancevg-triton``).

The four models of a deployment are built in a staging folder next to the repository, checked (Triton's
schema, the ensemble's wiring, the core against the sidecar), then moved into the repository one folder
rename each: a failed run leaves the repository as it was.
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from instancevg.plugin_paths import TENSORRT_STATIC_LIBRARY

from ..plugin_library import engine_plugin_library
from ..sidecar import file_sha256, graph_inputs, read_sidecar, sidecar_path
from ..trtexec import format_command
from .configs import core_config, ensemble_config, postprocess_config, preprocess_config, python_parameters
from .pbtxt import to_pbtxt
from .spec import CORE_KINDS, ENVIRONMENT_MODULE, MANIFEST, model_names

TEMPLATES = Path(__file__).with_name("model_templates")
DEFAULT_QUEUE_DELAY_US = 1000
# what the Python-backend models import at serving time (the default --python-path)
SERVING_PACKAGES = ("instancevg", "evaluation", "engines", "numpy", "torch", "onnxruntime", "transformers", "cv2")


def _bundled_tokenizer(file_name: str) -> Path | None:
    """The tokenizer shipped inside the installed instancevg package (found without importing it)."""
    spec = importlib.util.find_spec("instancevg")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / file_name
    return path if path.is_file() else None


def resolve_tokenizer(sidecar: dict, given: str | os.PathLike | None, source: str) -> Path:
    """The tokenizer the graph was exported with: ``given`` or the bundled one, checked against the
    digest the sidecar records."""
    recorded = sidecar.get("tokenizer") or {}
    path = Path(given) if given else _bundled_tokenizer(recorded.get("file", ""))
    if path is None:
        raise ValueError(f"{source} was exported with tokenizer {recorded.get('file', '?')!r}, which is not bundled: "
                         "pass --tokenizer (the SentencePiece model, e.g. beit3.spm)")
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    if recorded.get("sha256") and file_sha256(path) != recorded["sha256"]:
        raise ValueError(f"tokenizer {path} (sha256 {file_sha256(path)[:12]}...) is not the one {source} records "
                         f"({recorded.get('file')}, sha256 {recorded['sha256'][:12]}...)")
    return path


def _external_data(onnx_path: Path) -> dict[str, Path]:
    """{location: file} of the graph's external initializers (copied next to it, at the same locations)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    locations = {entry.value for tensor in model.graph.initializer
                 if tensor.data_location == onnx.TensorProto.EXTERNAL
                 for entry in tensor.external_data if entry.key == "location"}
    return {location: onnx_path.parent / location for location in sorted(locations)}


def _source(onnx: str | None, engine: str | None, core: str | None):
    """(model file, ONNX sidecar, engine sidecar or None, batch range, core kind) with the refusals."""
    if (onnx is None) == (engine is None):
        raise ValueError("give exactly one of --engine model.engine or --onnx model.onnx")
    path = Path(engine or onnx)
    if not path.is_file():
        raise FileNotFoundError(f"{'engine' if engine else 'ONNX graph'} not found: {path}")
    source = str(sidecar_path(path))
    if engine:
        engine_sidecar = read_sidecar(path)
        if "onnx_sidecar" not in engine_sidecar:
            raise ValueError(f"{source} is not an engine sidecar written by instancevg-build-engine")
        sidecar, batch = engine_sidecar["onnx_sidecar"], engine_sidecar.get("batch")
        batch = tuple(int(b) for b in batch) if batch else None
        core = core or "tensorrt_plan"
        if core != "tensorrt_plan":
            raise ValueError(f"--core {core} cannot run a TensorRT engine: an engine is served by Triton's TensorRT "
                             "backend (--core tensorrt_plan); use --onnx with a portable graph for the other cores")
        return path, sidecar, engine_sidecar, batch, core
    sidecar = read_sidecar(path)
    _, batch = graph_inputs(sidecar, source)
    core = core or "onnxruntime"
    if core not in ("onnxruntime", "python"):
        raise ValueError(f"--core {core} needs --engine model.engine (build it with instancevg-build-engine)")
    if sidecar.get("target") != "portable":
        raise ValueError(f"{path} is a {sidecar.get('target')!r}-target graph with TensorRT plugin nodes that ONNX "
                         "Runtime cannot run: export with --target portable, or build an engine and pass --engine")
    return path, sidecar, None, batch, core


def _max_batch(requested: int | None, batch, sidecar: dict, core: str, source: str) -> int:
    if core != "python":
        if batch is None:
            raise ValueError(f"{source}: the graph has a fixed batch, but Triton's {core} backend sends any batch "
                             "from 1 to max_batch_size: export with --dynamic-batch 1:OPT:MAX (or use --core python)")
        if batch[0] != 1:
            raise ValueError(f"{source}: the batch range {batch[0]}:{batch[1]}:{batch[2]} must start at 1 for Triton")
        requested = batch[2] if requested is None else requested
        if not 1 <= requested <= batch[2]:
            raise ValueError(f"--max-batch {requested} is outside the graph's batch range 1:{batch[2]}")
        return requested
    fixed = batch[2] if batch else int(sidecar["inputs"][0]["shape"][0])
    requested = fixed if requested is None else requested
    if requested < 1:
        raise ValueError(f"--max-batch must be >= 1, got {requested}")
    return requested


def _plugin_library(engine_sidecar: dict, given: str | None) -> Path:
    """The self-registering plugin library Triton loads with dlopen (LD_PRELOAD or the TensorRT backend's
    ``plugins`` option): libinstancevg_plugins_static.so, not the getCreators library TensorRT's
    loadLibrary takes. ``given`` (--plugins): the build folder or a library in it; default: next to the
    library the engine's sidecar records."""
    path = engine_plugin_library(engine_sidecar, given, TENSORRT_STATIC_LIBRARY)
    if not path.is_file():
        raise FileNotFoundError(f"plugin library not found: {path} (build plugins/ with TensorRT; Triton needs "
                                f"{TENSORRT_STATIC_LIBRARY} built for its TensorRT version, found through --plugins)")
    return path


def environment_path() -> str:
    """The folders this environment imports instancevg, numpy, torch ... from, ':'-separated: where the
    Python-backend models import them by default."""
    folders = []
    for name in SERVING_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            folder = str(Path(list(spec.submodule_search_locations)[0]).parent)
            if folder not in folders:
                folders.append(folder)
    return os.pathsep.join(folders)


def server_commands(repository: Path, plugin_library: Path | None) -> dict[str, str]:
    """The tritonserver command lines for this repository; engines load the plugin library as Triton
    documents for TensorRT plugins (LD_PRELOAD, or the TensorRT backend's ``plugins`` option)."""
    argv = ["tritonserver", f"--model-repository={repository.resolve()}"]
    commands = {"tritonserver": format_command(argv)}
    if plugin_library is not None:
        library = str(plugin_library.resolve())
        commands["tritonserver"] = f"LD_PRELOAD={library}${{LD_PRELOAD:+:$LD_PRELOAD}} " + commands["tritonserver"]
        commands["tritonserver_backend_config"] = format_command(
            argv + [f"--backend-config=tensorrt,plugins={library}"])
    return commands


def _write_model(folder: Path, config: dict, files: dict[str, Path]) -> None:
    """folder/config.pbtxt and folder/1/<name> copies of ``files``."""
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text(to_pbtxt(config))
    for name, source in files.items():
        (folder / "1" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / "1" / name)


def _manifest(stage: Path, repository: Path, name: str, core: str, source: Path, engine_sidecar: dict | None,
              sidecar: dict, plugin_library: Path | None, validated: bool, settings: dict) -> dict:
    """deployment.json: what was deployed from where, every file's digest, the settings, the commands."""
    installed_plugins = repository / model_names(name)["core"] / plugin_library.name if plugin_library else None
    return {
        "format": "instancevg-triton", "version": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "name": name, "models": model_names(name), "core": core, **settings,
        "source": {"path": str(source.resolve()), "kind": "engine" if engine_sidecar else "onnx",
                   "sha256": file_sha256(source)},
        "tensorrt": engine_sidecar.get("tensorrt") if engine_sidecar else None,
        "outputs_at": "original image size (boxes, points and mask in the pixels of the decoded image)",
        "files": {str(p.relative_to(stage)): file_sha256(p) for p in sorted(stage.rglob("*")) if p.is_file()},
        "validated": validated, "commands": server_commands(repository, installed_plugins),
        "python": sys.version.split()[0], "sidecar": sidecar,
    }


def _install(stage: Path, output: Path, models: list[str]) -> None:
    """Move the staged model folders into the repository, one rename each (with --force the old folder
    leaves by one rename before the new one arrives by another)."""
    output.mkdir(exist_ok=True)
    for model in models:
        target = output / model
        if target.exists():
            target.rename(stage / f".replaced-{model}")
        (stage / model).rename(target)


def write_repository(output: str | os.PathLike, onnx: str | None = None, engine: str | None = None,
                     core: str | None = None, name: str = "instancevg", max_batch: int | None = None,
                     instances: int = 1, python_instances: int = 1, queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
                     tokenizer: str | None = None, plugins: str | None = None, python_path: str | None = None,
                     execution_env: str | None = None, force: bool = False, validate: bool = True) -> dict:
    """Write the deployment ``name`` (ensemble ``name``, models ``name_preprocess``, ``name_core``,
    ``name_postprocess``) into the repository ``output``; returns the manifest (also written to
    ``output/name/deployment.json``). ``python_path``: folders the Python-backend models import instancevg
    from (default: this environment's; "" when Triton's Python has instancevg installed);
    ``execution_env``: Triton's EXECUTION_ENV_PATH for the Python-backend models (None: Triton's own Python)."""
    if core is not None and core not in CORE_KINDS:
        raise ValueError(f"--core must be one of {', '.join(CORE_KINDS)}, got {core!r}")
    if instances < 1 or python_instances < 1 or queue_delay_us < 0:
        raise ValueError("--instances and --python-instances must be >= 1, --max-queue-delay-us >= 0")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"--name must be letters, digits, '_' or '-', got {name!r}")
    path, sidecar, engine_sidecar, batch, core = _source(onnx, engine, core)
    source = str(sidecar_path(path))
    max_batch = _max_batch(max_batch, batch, sidecar, core, source)
    tokenizer_path = resolve_tokenizer(sidecar, tokenizer, source)
    plugin_library = _plugin_library(engine_sidecar, plugins) if engine_sidecar else None
    if execution_env and Path(execution_env).exists():
        execution_env = str(Path(execution_env).resolve())
    python = python_parameters(environment_path() if python_path is None else python_path, execution_env)
    output, names = Path(output), model_names(name)
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output {output} exists and is not a folder")
    existing = [n for n in names.values() if (output / n).exists()]
    if existing and not force:
        raise ValueError(f"{output} already holds {existing}: use --force to replace them")

    output.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        tokenizer_name, environment = tokenizer_path.name, {ENVIRONMENT_MODULE: TEMPLATES / "environment.py"}
        _write_model(stage / names["preprocess"],
                     preprocess_config(name, sidecar, tokenizer_name, max_batch, python_instances, queue_delay_us,
                                       python, source),
                     {"model.py": TEMPLATES / "preprocess.py", tokenizer_name: tokenizer_path, **environment})
        if core == "tensorrt_plan":
            core_files = {"model.plan": path}
        else:
            core_files = {"model.onnx": path, **_external_data(path)}
            if core == "python":
                core_files.update({"model.py": TEMPLATES / "core.py", "model.json": sidecar_path(path), **environment})
        _write_model(stage / names["core"], core_config(name, core, sidecar, max_batch, instances, queue_delay_us,
                                                       python, source), core_files)
        if plugin_library is not None:
            shutil.copyfile(plugin_library, stage / names["core"] / plugin_library.name)
        _write_model(stage / names["postprocess"],
                     postprocess_config(name, sidecar, max_batch, python_instances, queue_delay_us, python, source),
                     {"model.py": TEMPLATES / "postprocess.py", **environment})
        _write_model(stage / name, ensemble_config(name, sidecar, max_batch), {})
        if validate:
            from .validate import check_repository

            check_repository(stage, name, sidecar, batch)
        manifest = _manifest(stage, output.resolve(), name, core, path, engine_sidecar, sidecar, plugin_library,
                             validate, {"max_batch_size": max_batch, "instances": instances,
                                        "python_instances": python_instances, "max_queue_delay_us": queue_delay_us,
                                        "python_parameters": python})
        (stage / name / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _install(stage, output, list(names.values()))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return manifest
