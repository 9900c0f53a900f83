"""Copied next to each Python-backend model.py of an instancevg deployment as instancevg_environment.py.

Triton's Python backend stub starts its interpreter without reading PYTHONPATH, so the models put the
environment where instancevg is installed (the config parameter ``instancevg_python_path``, folders
separated by ':', written by instancevg-triton, empty when the stub's own Python has instancevg) in front
of sys.path before importing it. ``site.addsitedir`` also runs the folders' .pth files (editable installs).
"""
import os
import site
import sys

PARAMETER = "instancevg_python_path"


def use_environment(config: dict) -> None:
    """config: the model config (args["model_config"] parsed)."""
    value = config.get("parameters", {}).get(PARAMETER, {}).get("string_value", "")
    folders = [f for f in value.split(os.pathsep) if f]
    missing = [f for f in folders if not os.path.isdir(f)]
    if missing:
        raise RuntimeError(f"{config.get('name')}: {PARAMETER} names folders that do not exist here: {missing}; "
                           "regenerate the repository with instancevg-triton --python-path for this machine")
    before = list(sys.path)
    for folder in folders:
        site.addsitedir(folder)
    sys.path[:] = [p for p in sys.path if p not in before] + before
