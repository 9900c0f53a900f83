"""The PyTorch backend's runtime options on the CPU: --precision fp16 (the FP16 export's policy), the op
implementation, TF32 switching, refusals. (CUDA: tests/instancevg/test_gpu_model.py.)"""
import json

import numpy as np
import pytest
import torch

from evaluation.backends.pytorch import PyTorchBackend
from instancevg.cli.predict import main as predict_main
from instancevg.inference import tf32_mode

OUTPUTS = ("class_logits", "boxes", "instance_mask_logits", "global_mask_logits", "exist_logits")


def tiny_inputs(batch=4):
    g = torch.Generator().manual_seed(0)
    image = torch.randn(batch, 3, 128, 128, generator=g).numpy()
    ids = torch.randint(4, 500, (batch, 16), generator=g).numpy()  # tiny embeds 512 ids
    pad = np.arange(16)[None].repeat(batch, 0) >= np.array([3, 7, 12, 16][:batch])[:, None]
    return {"image": image, "text_ids": ids, "text_pad_mask": pad}


def test_fp16_policy_keeps_the_selection_and_stays_within_the_fp16_tolerance():
    """5e-2 of each output's range: the FP16 export's verification tolerance (same policy, same islands)."""
    fp32 = PyTorchBackend.from_files("tiny").forward(tiny_inputs())
    backend = PyTorchBackend.from_files("tiny", precision="fp16")
    fp16 = backend.forward(tiny_inputs())
    assert backend.describe()["precision"] == "fp16"
    assert backend.model.head.query_generation.mlp.layers[0].weight.dtype == torch.float32  # AQSM island
    assert backend.model.vis_enc.beit3.encoder.layers[0].ffn.A.fc1.weight.dtype == torch.float16
    assert np.array_equal(fp16.points, fp32.points)
    for name in OUTPUTS:
        ref = getattr(fp32, name)
        error = np.abs(getattr(fp16, name) - ref).max() / np.abs(ref).max()
        assert 0 < error <= 5e-2, name  # > 0: FP16 really ran


def test_tf32_mode_switches_and_restores():
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = (matmul.fp32_precision, conv.fp32_precision)
    with tf32_mode(True):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
    with tf32_mode(False):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
    assert (matmul.fp32_precision, conv.fp32_precision) == before


def test_refusals():
    with pytest.raises(ValueError, match="ops must be one of reference, plugin"):
        PyTorchBackend.from_files("tiny", ops="cuda")
    with pytest.raises(ValueError, match="precision must be one of fp32, fp16"):
        PyTorchBackend.from_files("tiny", precision="int4")
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        PyTorchBackend.from_files("tiny", cuda_graph=True)


def test_predict_with_plugin_ops_writes_what_the_reference_writes(plugin_kernels, tmp_path):
    assert predict_main(["-o", str(tmp_path / "ref")]) == 0
    assert predict_main(["--ops", "plugin", "-o", str(tmp_path / "plugin")]) == 0
    ref, plugin = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("ref", "plugin"))
    assert [q["point_xy"] for q in ref["queries"]] == [q["point_xy"] for q in plugin["queries"]]
    assert np.allclose([q["score"] for q in ref["queries"]], [q["score"] for q in plugin["queries"]], atol=1e-6)
    assert ref["mask"] == plugin["mask"]
