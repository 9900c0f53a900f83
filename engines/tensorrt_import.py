"""Lazy TensorRT import with a clear message, and version helpers (no torch, no instancevg)."""
from __future__ import annotations


class TensorRTUnavailable(RuntimeError):
    """TensorRT's Python package is missing or unusable on this machine."""


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailable(
            "TensorRT's Python package is not installed (or cannot load its libraries): install TensorRT 10 "
            f"or 11 for your CUDA version, e.g. the 'tensorrt' wheel ({exc})") from exc
    return trt


def tensorrt_unavailable(plugin_library) -> str | None:
    """Why engines cannot be built or run here (no TensorRT, no CUDA GPU, the plugin library not built),
    or None when they can. ``plugin_library``: path of libinstancevg_plugins.so."""
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT's Python package is not installed"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch"
    if not Path(plugin_library).is_file():
        return (f"plugin library {plugin_library} not built (cmake -S plugins -B build/plugins with TensorRT headers, "
                "then --plugins or $INSTANCEVG_PLUGINS)")
    return None


def major_version(version: str) -> int:
    """'10.14.1.48' -> 10."""
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise ValueError(f"not a TensorRT version string: {version!r}") from None


def check_same_major(what: str, built_for: str, runtime: str) -> None:
    """Refuse an artefact built for another TensorRT major: engines and plugin libraries do not cross
    majors (TensorRT 11 renumbered enums and removed APIs)."""
    if major_version(built_for) != major_version(runtime):
        raise RuntimeError(f"{what} was built for TensorRT {built_for}, but this process runs TensorRT {runtime}; "
                           f"rebuild it with TensorRT {major_version(runtime)}.x")


def check_same_gpu(what: str, built_on: str | None, running_on: str) -> None:
    """Refuse an engine built on another GPU model: its tactics were timed there and may not run here."""
    if built_on and built_on != running_on:
        raise RuntimeError(f"{what} was built on a {built_on}, but this process runs on a {running_on}; rebuild "
                           "the engine on this GPU (instancevg-build-engine)")
