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


def golden_state_dict(golden: Path, facts: Path) -> dict:
    """The golden README's deterministic gres-base weights (its own make_weights.py), checked against two
    of its recorded checksums."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("make_weights", golden / "make_weights.py")
    make_weights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_weights)
    state = make_weights.make_state_dict(make_weights.load_key_list(facts / "official_state_dict_gres_base.json"))
    checksums = json.loads((golden / "weights_checksums.json").read_text())
    for key in ("head.class_embed.2.weight", "vis_enc.beit3.encoder.layers.11.ffn.B.fc2.weight"):
        assert make_weights.sha256_of(state[key]) == checksums[key]["sha256"], f"weight recipe differs at {key}"
    return state


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
