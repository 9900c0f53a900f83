"""TensorRT on a GPU: build engines from our graphs with our plugin library, run them, and check parity
with PyTorch. Skipped, with the reason, where TensorRT, a CUDA GPU or the plugin library is missing;
written to run as it is on such a machine (set INSTANCEVG_PLUGINS or build plugins into build/plugins)."""
import json
from pathlib import Path

import pytest

from engines.tensorrt_import import tensorrt_unavailable
from instancevg.plugin_paths import plugin_library

pytestmark = [pytest.mark.gpu, pytest.mark.tensorrt]
LIBRARY = plugin_library()  # --plugins' default: $INSTANCEVG_PLUGINS (a build folder or a library in it), build/plugins


REASON = tensorrt_unavailable(LIBRARY)
pytestmark.append(pytest.mark.skipif(REASON is not None, reason=str(REASON)))


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    from engines.build import build_engine
    from export import BatchSpec, ExportOptions, export_onnx

    folder = tmp_path_factory.mktemp("trt")
    built = {}
    for precision in ("fp32", "fp16"):
        onnx = folder / f"tiny_{precision}.onnx"
        export_onnx(onnx, "tiny", ExportOptions(target="tensorrt", fp16=precision == "fp16",
                                                batch=BatchSpec.parse_dynamic("1:2:4")), log=None)
        built[precision] = folder / f"tiny_{precision}.engine"
        build_engine(onnx, built[precision], LIBRARY)
    return built


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_parity_with_pytorch(engines, precision, tmp_path):
    from evaluation.backends.pytorch import PyTorchBackend
    from evaluation.backends.tensorrt import TensorRTBackend
    from evaluation.parity import compare_split
    from instancevg.data.datasets import open_dataset
    from instancevg.data.synthetic import generate

    generate(str(tmp_path), num_images=16, seed=2)
    result = compare_split(TensorRTBackend(engines[precision]), PyTorchBackend.from_files("tiny", device="cuda"),
                           open_dataset("grefcoco", "val", str(tmp_path)), ("grec", "gres"), batch_size=4)
    assert result.violations == []
    assert result.agreement["points_identical"] == 1.0  # the selection path is FP32 in both precisions


def test_engine_sidecar_and_inspection(engines):
    from engines.inspect_engine import inspect_engine

    sidecar = json.loads(Path(f"{engines['fp32']}.json").read_text())
    assert sidecar["plugin_library"]["sha256"] and sidecar["onnx_sidecar"]["target"] == "tensorrt"
    info = inspect_engine(str(engines["fp32"]), str(LIBRARY))
    assert {t["name"] for t in info["io"]} >= {"image", "text_ids", "text_pad_mask", "boxes"}


def test_cuda_graph_runner_matches_plain_runs(engines):
    import numpy as np

    from engines.runner import EngineRunner

    plain, graphed = EngineRunner(str(engines["fp32"]), str(LIBRARY)), \
        EngineRunner(str(engines["fp32"]), str(LIBRARY), cuda_graph=True)
    rng = np.random.default_rng(0)
    inputs = {"image": rng.standard_normal((2, 3, 128, 128), dtype=np.float32),
              "text_ids": np.ones((2, 16), np.int64), "text_pad_mask": np.zeros((2, 16), bool)}
    a, b = plain(inputs), graphed(inputs)
    for name in a:
        assert (a[name] == b[name]).all(), name
