"""Fixtures of the training tests: a small synthetic data root and a tiny model factory."""
import pytest
import torch

from instancevg.bundled import TINY_TOKENIZER
from instancevg.config import get_config
from instancevg.data.datasets import open_dataset
from instancevg.data.synthetic import generate
from instancevg.data.tokenizer import Tokenizer
from instancevg.model import build_model
from instancevg.training.data import GroundingTrainSet

NUM_IMAGES = 16
SEED = 3


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny model's ops are too small to gain from a second thread, and on a shared 2-core machine two
    OpenMP threads per process thrash (steps ran 30x slower): train with one, then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def train_root(tmp_path_factory):
    """A gRefCOCO-format synthetic data root (unified format, 96-px images)."""
    root = tmp_path_factory.mktemp("synthetic-train")
    generate(str(root), num_images=NUM_IMAGES, seed=SEED, formats=("unified",), image_size=96)
    return str(root)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return Tokenizer(TINY_TOKENIZER, get_config("tiny").max_tokens)


@pytest.fixture()
def make_train_set(train_root, tiny_tokenizer):
    """make_train_set(n): the first n gRefCOCO training samples as a GroundingTrainSet (seed 6666)."""
    def make(n: int, seed: int = 6666) -> GroundingTrainSet:
        samples = open_dataset("grefcoco", "train", train_root)
        samples = [samples[i] for i in range(min(n, len(samples)))]
        return GroundingTrainSet(samples, tiny_tokenizer, get_config("tiny").image_size, seed=seed)
    return make


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(get_config("tiny"))
