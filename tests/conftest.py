"""Shared test settings: markers, small-thread torch, locations of the shared reference data."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; excluded by default, run with -m slow")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped with its reason elsewhere")
    config.addinivalue_line("markers", "tensorrt: needs TensorRT; skipped with its reason elsewhere")


def golden_dir() -> Path | None:
    """The golden folder: $INSTANCEVG_GOLDEN_DIR, else ../shared/facts/golden next to the repository."""
    env = os.environ.get("INSTANCEVG_GOLDEN_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "facts" / "golden"
    return path if (path / "golden_gres_base.npz").is_file() else None


def facts_dir() -> Path | None:
    env = os.environ.get("INSTANCEVG_FACTS_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "facts"
    return path if (path / "official_state_dict_gres_base.json").is_file() else None


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
