"""Build a TensorRT engine from our ONNX graph and plugin library with the TensorRT Python API.

Strongly typed network (the graph's FP16/FP32 types are obeyed: TensorRT 11 knows no other mode),
plugin library loaded through the plugin registry, one optimisation profile from the sidecar's batch
range, optional timing cache, workspace limit. The engine and its sidecar (TensorRT version, GPU,
plugin library digest, the ONNX sidecar it came from) are written atomically.

Builds take tensorrt-target graphs (instancevg-export --target tensorrt: MSDeformAttn and PointSelect as
plugin nodes). A portable graph is refused: every engine of this toolchain is built, recorded, run,
inspected and served with the plugin library (runner, sidecar, Triton's tensorrt_plan), and the portable
graph exists for ONNX Runtime; building it here would give an engine that only looks like the tensorrt
target's. The input files are checked before TensorRT is imported, so a wrong path is reported as such on
machines without TensorRT too. Ctrl-C and SIGTERM cancel the build through TensorRT's progress monitor
(TensorRT builds in C++, where Python's signal handlers cannot run) and are then raised as usual, with
nothing written.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import threading
import time
from pathlib import Path

from .plugin_contract import PLUGIN_DOMAIN
from .plugin_library import check_plugin_library
from .sidecar import file_sha256, graph_inputs, read_sidecar, sidecar_path
from .tensorrt_import import import_tensorrt

DEFAULT_WORKSPACE_MIB = 4096


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    from instancevg.io import atomic_path  # stdlib only; imported here to keep engines' import light

    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _gpu_name() -> str | None:
    """The GPU the engine is built on (recorded so that the runner can refuse another model)."""
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # the sidecar then records no GPU name
        return None


def _network_flags(trt) -> int:
    # TensorRT 10: request strong typing; TensorRT 11: always strongly typed (the flag is deprecated and
    # renumbered, so it is looked up by name and only set where it exists with that meaning).
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 1 << int(flag) if flag is not None and int(trt.__version__.split(".")[0]) == 10 else 0


def graph_target(onnx_path: str | os.PathLike, onnx_sidecar: dict) -> str:
    """"tensorrt" or "portable": the export target the sidecar records, else (a sidecar written by hand)
    whether the graph holds instancevg plugin nodes."""
    target = onnx_sidecar.get("target")
    if target is None:
        import onnx

        model = onnx.load(os.fspath(onnx_path), load_external_data=False)
        target = "tensorrt" if any(n.domain == PLUGIN_DOMAIN for n in model.graph.node) else "portable"
    return target


def check_plugin_graph(onnx_path: str | os.PathLike, onnx_sidecar: dict) -> None:
    """Refuse a graph that is not a tensorrt-target export (see the module docstring)."""
    target = graph_target(onnx_path, onnx_sidecar)
    if target != "tensorrt":
        raise ValueError(f"{onnx_path} is a {target} export (standard ops, no instancevg plugin nodes); engines are "
                         "built from tensorrt-target graphs with the plugin library: export it with instancevg-export "
                         "--target tensorrt (run the portable graph in ONNX Runtime: instancevg-eval --backend "
                         "onnxruntime --onnx, instancevg-triton --onnx)")


@contextlib.contextmanager
def signals_deferred():
    """Ctrl-C and SIGTERM only noted while TensorRT builds (yields the list of signals received), then
    delivered again to the handlers that were in place, so that they act as usual once TensorRT has
    returned. Outside the main thread signals are left alone (they are delivered to the main thread)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in signals}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: installed outside Python
        for s in dict.fromkeys(received):
            signal.raise_signal(s)


def cancelling_monitor(trt, received: list[int]):
    """A TensorRT progress monitor that cancels the build once a signal was noted in ``received`` (None
    where this TensorRT has no IProgressMonitor: the signal then acts when the build returns)."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class CancelOnSignal(base):
        def __init__(self):
            base.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            pass

        def phase_finish(self, phase_name):
            pass

        def step_complete(self, phase_name, step):
            return not received  # False cancels the build

    return CancelOnSignal()


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, plugin_library: str | os.PathLike,
                 workspace_mib: int = DEFAULT_WORKSPACE_MIB, timing_cache: str | os.PathLike | None = None,
                 verbose: bool = False) -> dict:
    """Build and write ``engine_path`` (+ ``engine_path.json``); returns the engine sidecar."""
    onnx_path, engine_path, plugin_library = Path(onnx_path), Path(engine_path), Path(plugin_library)
    if not onnx_path.is_file():  # the files first, then the TensorRT hint
        raise FileNotFoundError(f"ONNX graph not found: {onnx_path}")
    onnx_sidecar = read_sidecar(onnx_path)
    inputs, batch = graph_inputs(onnx_sidecar, str(sidecar_path(onnx_path)))
    check_plugin_graph(onnx_path, onnx_sidecar)
    if not plugin_library.is_file():
        raise FileNotFoundError(f"plugin library not found: {plugin_library} (build plugins/ with TensorRT: "
                                "cmake -S plugins -B build/plugins && cmake --build build/plugins; --plugins names "
                                "the build)")
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.INFO)
    builder = trt.Builder(logger)
    check_plugin_library(plugin_library, trt.__version__)
    registry = builder.get_plugin_registry()
    handle = registry.load_library(str(plugin_library))
    if handle is None:
        raise RuntimeError(f"TensorRT could not load the plugin library {plugin_library} (built for another "
                           "TensorRT major, or missing getCreators/setLoggerFinder?)")
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path}:\n{errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    cache = None
    if timing_cache is not None:
        blob = Path(timing_cache).read_bytes() if Path(timing_cache).is_file() else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, ignore_mismatch=False)
    if batch is not None:
        profile = builder.create_optimization_profile()
        for name, shape in inputs:
            profile.set_shape(name, *[[b] + shape[1:] for b in batch])
        config.add_optimization_profile(profile)
    started = time.perf_counter()
    print(f"building {engine_path} from {onnx_path} (TensorRT {trt.__version__}) ...", flush=True)
    with signals_deferred() as received:
        monitor = cancelling_monitor(trt, received)
        if monitor is not None:
            config.progress_monitor = monitor
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}; rerun with --verbose for the log")
    _atomic_write_bytes(engine_path, bytes(serialized))
    if cache is not None:
        _atomic_write_bytes(Path(timing_cache), bytes(cache.serialize()))
    sidecar = {
        "format": "instancevg-engine", "version": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tensorrt": trt.__version__, "gpu": _gpu_name(), "build_seconds": round(time.perf_counter() - started, 1),
        "workspace_mib": workspace_mib, "engine_sha256": file_sha256(engine_path),
        "plugin_library": {"path": str(plugin_library), "sha256": file_sha256(plugin_library)},
        "onnx": {"path": str(onnx_path), "sha256": file_sha256(onnx_path)}, "batch": batch,
        "onnx_sidecar": onnx_sidecar,
    }
    _atomic_write_bytes(sidecar_path(engine_path), (json.dumps(sidecar, indent=2) + "\n").encode())
    print(f"wrote {engine_path} in {sidecar['build_seconds']} s", flush=True)
    return sidecar
