"""Fixtures: one small synthetic data root (both formats) shared by the data tests."""
import pytest

from instancevg.data.synthetic import generate

NUM_IMAGES = 24
SEED = 7


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    generate(str(root), num_images=NUM_IMAGES, seed=SEED, image_size=96)
    return str(root)
