"""The exported graph and its sidecar get the mode a plain open() would give under the user's umask."""
import dataclasses
import os
import stat

import pytest

from export import finish_export


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_onnx_and_sidecar_follow_the_umask(traced, tmp_path, mask, expected):
    graph = traced("portable-fp16")
    graph = dataclasses.replace(graph, options=dataclasses.replace(graph.options, verify=False))
    previous = os.umask(mask)
    try:
        result = finish_export(graph, tmp_path / "model.onnx", log=None)
    finally:
        os.umask(previous)
    for path in (result.onnx_path, result.sidecar_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == expected, path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.onnx"]
