"""Where the plugin libraries built from plugins/ are found (no torch: every stage uses it, engines too).

One setting for all of them: ``--plugins``, the CMake build folder or a library file in it, looked in only
there; else (commands running an engine) the library the engine's sidecar records, where it exists; else
$INSTANCEVG_PLUGINS, like --plugins; else ./build/plugins, else build/plugins of the source tree this
package was installed from.

| file | what | used by |
|---|---|---|
| libinstancevg_plugins.so | the TensorRT plugins (dynamic loading) | engine builds and runs, trtexec --dynamicPlugins |
| libinstancevg_plugins_static.so | the same, registered when loaded | trtexec --staticPlugins, Triton |
| libinstancevg_plugins_host.so | the kernels' host build (C ABI) | --ops plugin on CPU, tensorrt-target graphs in ONNX Runtime |
| libinstancevg_kernels_cuda.so | the CUDA kernels (C ABI) | --ops plugin on CUDA |
"""
from __future__ import annotations

import os
from pathlib import Path

PLUGINS_ENV = "INSTANCEVG_PLUGINS"
TENSORRT_LIBRARY = "libinstancevg_plugins.so"
TENSORRT_STATIC_LIBRARY = "libinstancevg_plugins_static.so"
HOST_LIBRARY = "libinstancevg_plugins_host.so"
CUDA_LIBRARY = "libinstancevg_kernels_cuda.so"
SOURCE_TREE = Path(__file__).resolve().parents[1]  # the checkout of an editable install


def search_dirs() -> list[Path]:
    """Where the libraries are looked for, in order: only the folder $INSTANCEVG_PLUGINS names (the folder,
    or the folder of the library file it names) when it is set; else ./build/plugins, then build/plugins of
    the source tree."""
    given = os.environ.get(PLUGINS_ENV)
    if given:
        return [build_folder(given)]
    return list(dict.fromkeys([Path.cwd() / "build" / "plugins", SOURCE_TREE / "build" / "plugins"]))


def build_folder(path: str | os.PathLike) -> Path:
    """The build folder ``path`` names: ``path`` itself, or the folder of the library file it names."""
    path = Path(path)
    return path.parent if path.suffix == ".so" or path.is_file() else path


def use_plugins(path: str | os.PathLike | None) -> None:
    """Make ``path`` (a build folder or a library in it; None: leave as is) the place looked at, for this
    process and the processes it starts."""
    if path:
        os.environ[PLUGINS_ENV] = str(path)


def library_in(path: str | os.PathLike, name: str) -> Path:
    """The library ``name`` of the build folder ``path`` names: ``path`` itself when it is that library,
    else ``name`` in ``path`` (a folder) or next to it (another library of the same build)."""
    return Path(path) if Path(path).name == name else build_folder(path) / name


def plugin_library(name: str = TENSORRT_LIBRARY, given: str | os.PathLike | None = None,
                   recorded: str | os.PathLike | None = None) -> Path:
    """The library ``name`` (it may not exist: errors then name the place looked at).

    ``given`` (--plugins): that build folder or a library in it, and only there. Else ``recorded`` (the
    library an engine's sidecar says it was built with, or ``name`` next to it) when it exists. Else
    $INSTANCEVG_PLUGINS the same way as ``given``; else the first of ./build/plugins and the source tree's
    build/plugins holding it; else build/plugins/<name>."""
    if given:
        return library_in(given, name)
    if recorded and library_in(recorded, name).is_file():
        return library_in(recorded, name)
    if os.environ.get(PLUGINS_ENV):
        return library_in(os.environ[PLUGINS_ENV], name)
    found = [d / name for d in search_dirs() if (d / name).is_file()]
    return found[0] if found else Path("build") / "plugins" / name
