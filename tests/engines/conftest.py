"""Shared fixtures of the engines tests: one portable export of the bundled tiny model (dynamic batch
1:4:8, the bundled checkpoint) and distinct grounding requests built from synthetic scenes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_portable(tmp_path_factory):
    """Path of tiny.onnx (+ tiny.json). Not verified here: the Triton tests compare with PyTorch."""
    from export import BatchSpec, ExportOptions
    from export.exporter import export_onnx

    path = tmp_path_factory.mktemp("tiny-portable") / "tiny.onnx"
    export_onnx(path, "tiny", ExportOptions(target="portable", batch=BatchSpec.parse_dynamic("1:4:8"), verify=False),
                log=None)
    return path


@dataclass(frozen=True)
class Request:
    image_bytes: bytes  # JPEG file
    expression: str
    size: tuple[int, int]  # (height, width)


@pytest.fixture(scope="session")
def grounding_requests() -> list[Request]:
    """Eight (image, expression) pairs of distinct image sizes, so a response's mask size names its input."""
    from instancevg.data.synthetic import encode_jpeg, group_referents, make_scene, render, single_expressions

    rng, requests, sizes = np.random.default_rng(11), [], set()
    image_id = 0
    while len(requests) < 8:
        scene = make_scene(rng, image_id, int(rng.integers(96, 200)))
        image_id += 1
        if (scene.height, scene.width) in sizes:
            continue
        groups = group_referents(scene)
        expression = groups[0][1][0] if len(requests) % 2 and groups else single_expressions(scene, scene.objects[0])[0]
        sizes.add((scene.height, scene.width))
        requests.append(Request(encode_jpeg(render(scene)), expression, (scene.height, scene.width)))
    return requests
