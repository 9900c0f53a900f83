"""Versions of the tools that produced a file (sidecars, reports), for provenance."""
from __future__ import annotations

import platform
from importlib import metadata
from typing import Iterable

from . import __version__


def tool_versions(packages: Iterable[str]) -> dict:
    """{"python", "platform", and each package's installed version (None when absent)}."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in packages:
        if name == "instancevg":  # also right when run from a source tree that is not installed
            versions[name] = __version__
            continue
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
