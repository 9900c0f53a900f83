"""The PyTorch model on CUDA (GPU only; each test skips with its reason elsewhere): CPU parity with TF32 off,
the plugin kernels' CUDA build inside the model, CUDA-graph capture (which fails on any host-to-device copy
or synchronisation inside forward), the FP16 policy, TF32 switching.

Tolerances: FP32 on CUDA vs CPU: summation order only, 1e-4 of each output's range (the golden tolerance);
plugin vs reference ops on CUDA: 1e-5; CUDA-graph replay vs eager: the same kernels, 1e-6; FP16 policy vs
FP32: 5e-2 (the FP16 export's verification tolerance).
"""
import numpy as np
import pytest
import torch

from evaluation.backends.pytorch import PyTorchBackend
from instancevg import bundled, ops
from instancevg.config import get_config
from instancevg.inference import CudaGraphForward, load_model, tf32_mode

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU (torch.cuda.is_available() is False)")]

OUTPUTS = ("class_logits", "boxes", "instance_mask_logits", "global_mask_logits", "exist_logits")


def tiny_inputs(batch=4, device="cpu"):
    cfg = get_config("tiny")
    g = torch.Generator().manual_seed(0)
    image = torch.randn(batch, 3, cfg.image_size, cfg.image_size, generator=g)
    ids = torch.randint(4, cfg.encoder.vocab_size, (batch, cfg.max_tokens), generator=g)
    pad = torch.arange(cfg.max_tokens)[None].expand(batch, -1) >= torch.tensor([3, 7, 12, 16][:batch])[:, None]
    return [t.to(device) for t in (image, ids, pad)]


def relative(a, b):
    return float((a.float().cpu() - b.float().cpu()).abs().max() / b.float().abs().max())


@pytest.fixture(scope="module")
def models():
    cfg = get_config("tiny")
    return load_model(cfg, bundled.default_checkpoint("tiny")), load_model(cfg, bundled.default_checkpoint("tiny"),
                                                                           "cuda")


def test_cuda_matches_cpu_with_tf32_off(models):
    cpu, cuda = models
    with torch.no_grad(), tf32_mode(False):
        ref = cpu.forward_all(*tiny_inputs())
        out = cuda.forward_all(*tiny_inputs(device="cuda"))
    assert torch.equal(out["point_index"].cpu(), ref["point_index"])
    for name in OUTPUTS:
        assert relative(out[name], ref[name]) <= 1e-4, name


def test_plugin_kernels_inside_the_model_on_cuda(models, plugin_kernels):
    _, cuda = models
    from instancevg.ops import kernels

    if kernels.available("cuda"):
        pytest.skip(kernels.available("cuda"))
    inputs = tiny_inputs(device="cuda")
    with torch.no_grad():
        ref = cuda.forward_all(*inputs)
        with ops.use_ops("plugin"):
            out = cuda.forward_all(*inputs)
    assert torch.equal(out["point_index"], ref["point_index"]) and torch.equal(out["points"], ref["points"])
    for name in OUTPUTS:
        assert relative(out[name], ref[name]) <= 1e-5, name


@pytest.mark.parametrize("implementation", ["reference", "plugin"])
def test_cuda_graph_replay_equals_eager(models, plugin_kernels, implementation):
    _, cuda = models
    from instancevg.ops import kernels

    if implementation == "plugin" and kernels.available("cuda"):
        pytest.skip(kernels.available("cuda"))
    graph = CudaGraphForward(cuda)
    first, second = tiny_inputs(device="cuda"), [t.flip(0) for t in tiny_inputs(device="cuda")]
    with torch.no_grad(), ops.use_ops(implementation):
        eager = cuda(*second)
        graph(*first)  # capture with other inputs: replay must read the new ones
        replay = graph(*second)
    for name in OUTPUTS:
        assert relative(getattr(replay, name), getattr(eager, name)) <= 1e-6, name


def test_fp16_policy_backend_selects_the_same_points():
    inputs = {k: v.numpy() for k, v in zip(("image", "text_ids", "text_pad_mask"), tiny_inputs())}
    fp32 = PyTorchBackend.from_files("tiny", device="cuda").forward(inputs)
    fp16_backend = PyTorchBackend.from_files("tiny", device="cuda", precision="fp16")
    assert fp16_backend.model.vis_enc.beit3.vision_embed.proj.weight.dtype == torch.float16
    fp16 = fp16_backend.forward(inputs)
    assert np.array_equal(fp16.points, fp32.points)
    for name in OUTPUTS:
        ref = getattr(fp32, name)
        assert np.abs(getattr(fp16, name) - ref).max() <= 5e-2 * np.abs(ref).max() + 5e-2, name
