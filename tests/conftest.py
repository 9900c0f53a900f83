"""Shared test settings: markers, small-thread torch, synthetic data roots."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; excluded by default, run with -m slow")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped with its reason elsewhere")
    config.addinivalue_line("markers", "tensorrt: needs TensorRT; skipped with its reason elsewhere")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """synthetic_root(num_images, seed) -> a data root with every format of every benchmark (cached)."""
    from instancevg.data.synthetic import generate

    roots = {}

    def make(num_images: int = 16, seed: int = 0) -> str:
        if (num_images, seed) not in roots:
            root = tmp_path_factory.mktemp(f"synthetic-{num_images}-{seed}")
            generate(str(root), num_images=num_images, seed=seed)
            roots[num_images, seed] = str(root)
        return roots[num_images, seed]

    return make


@pytest.fixture(scope="session")
def plugin_kernels():
    """The plugin kernel libraries for ``instancevg.ops.kernels`` (the ``plugin`` op implementation): the
    folder named by $INSTANCEVG_PLUGINS when it holds the host library, else built with CMake into
    build/tests/plugins/kernels (host library; with the CUDA one too where a GPU and nvcc exist).
    Returns the folder; the loader finds the libraries there for the whole session."""
    from instancevg.ops import kernels

    from .plugin_build import build_root, cmake_build, cuda_gpu_reason, find_nvcc

    given = os.environ.get(kernels.PLUGINS_ENV)
    if given and (kernels.search_dirs()[0] / kernels.HOST_LIBRARY).is_file():
        folder = kernels.search_dirs()[0]
    else:
        folder = build_root() / "kernels"
        nvcc = find_nvcc()
        if nvcc and not cuda_gpu_reason():
            archs = os.environ.get("INSTANCEVG_TEST_CUDA_ARCHITECTURES", "native")
            cmake_build(folder, [f"-DCMAKE_CUDA_COMPILER={nvcc}", f"-DCMAKE_CUDA_ARCHITECTURES={archs}"],
                        ["instancevg_plugins_host", "instancevg_kernels_cuda"])
        else:
            cmake_build(folder, ["-DINSTANCEVG_PLUGINS_HOST_ONLY=ON"], ["instancevg_plugins_host"])
        os.environ[kernels.PLUGINS_ENV] = str(folder)
    kernels.reset()
    kernels.host_library()  # fails here, with the reason, if the build is unusable
    return folder
