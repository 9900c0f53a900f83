"""Which plugin library goes with an engine, and checks on it before TensorRT loads it (no TensorRT needed)."""
from __future__ import annotations

import ctypes
from pathlib import Path

from instancevg.plugin_paths import TENSORRT_LIBRARY, plugin_library

from .tensorrt_import import check_same_major


def engine_plugin_library(engine_sidecar: dict, given: str | Path | None = None, name: str = TENSORRT_LIBRARY) -> Path:
    """The plugin library ``name`` that goes with an engine: ``given`` (--plugins), else the one the engine's
    sidecar records (or ``name`` next to it) where it exists, else $INSTANCEVG_PLUGINS, else build/plugins."""
    return plugin_library(name, given, (engine_sidecar.get("plugin_library") or {}).get("path"))


def plugin_library_tensorrt_version(path: str | Path) -> str:
    """The TensorRT version whose headers the library was compiled against (its exported
    ``instancevgPluginsTensorRTVersion``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"plugin library not found: {path} (build it: cmake -S plugins -B build/plugins "
                                "&& cmake --build build/plugins)")
    try:
        library = ctypes.CDLL(str(path))
        query = library.instancevgPluginsTensorRTVersion
    except OSError as exc:
        raise RuntimeError(f"cannot load the plugin library {path}: {exc}") from None
    except AttributeError:
        raise RuntimeError(f"{path} is not an instancevg plugin library (no instancevgPluginsTensorRTVersion); "
                           "use libinstancevg_plugins.so built from plugins/") from None
    query.restype = ctypes.c_char_p
    return query().decode()


def check_plugin_library(path: str | Path, tensorrt_version: str) -> None:
    """Refuse a plugin library built for another TensorRT major than the running one."""
    check_same_major(f"plugin library {path}", plugin_library_tensorrt_version(path), tensorrt_version)
