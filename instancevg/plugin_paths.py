"""Where the plugin libraries built from plugins/ are found (no torch: every stage uses it, engines too).

One setting for all of them: ``--plugins`` / $INSTANCEVG_PLUGINS, the CMake build folder or a library file in
it; else ./build/plugins, else build/plugins of the source tree this package was installed from.

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
    """Where the libraries are looked for, in order."""
    dirs = []
    given = os.environ.get(PLUGINS_ENV)
    if given:
        path = Path(given)
        dirs.append(path.parent if path.suffix == ".so" else path)
    dirs.append(Path.cwd() / "build" / "plugins")
    dirs.append(SOURCE_TREE / "build" / "plugins")
    return list(dict.fromkeys(dirs))


def use_plugins(path: str | os.PathLike | None) -> None:
    """Make ``path`` (a build folder or a library in it; None: leave as is) the first place looked at, for
    this process and the processes it starts."""
    if path:
        os.environ[PLUGINS_ENV] = str(path)


def plugin_library(name: str = TENSORRT_LIBRARY) -> Path:
    """The library ``name``: the file $INSTANCEVG_PLUGINS names when it is that library, else the first
    search folder holding it, else where a build would put it (build/plugins/<name>, for messages)."""
    given = os.environ.get(PLUGINS_ENV)
    if given and Path(given).name == name:
        return Path(given)
    found = [d / name for d in search_dirs() if (d / name).is_file()]
    return found[0] if found else Path("build") / "plugins" / name
