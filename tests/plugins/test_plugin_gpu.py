"""CUDA execution of the plugin kernels against instancevg.ops, and a micro-benchmark. Needs a CUDA GPU (skipped
with the reason elsewhere); the TensorRT parts also need the TensorRT Python package.

- Kernels through libinstancevg_kernels_cuda.so (the plugins' launchers behind a C ABI; no TensorRT needed).
- Plugins through TensorRT (IPluginRegistry.load_library + add_plugin_v3), when tensorrt imports.
- Benchmark (slow): MSDeformAttn kernel vs the grid_sample decomposition (instancevg.ops.ms_deform_attn on CUDA),
  and vs NVIDIA's MultiscaleDeformableAttnPlugin_TRT when TensorRT is found. Timings are printed and written to
  build/tests/plugins/benchmark.json; the test asserts correctness, not speed.

Tolerances as in test_plugin_host_kernels.py (FP32 2e-5 abs + 1e-5 rel vs FP64, FP16 half an ulp + 1e-5);
the GPU may fuse multiply-adds, so GPU and host FP16 outputs may differ by one FP16 ulp. PointSelect is exact.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from ..plugin_build import build_root, cmake_build, cuda_gpu_reason, find_nvcc, tensorrt_include_dir
from .plugin_kernels import (MSDAInputs, fp16_tolerance, msda_inputs, msda_reference, select_points_reference)
from instancevg.ops import ms_deform_attn

pytestmark = pytest.mark.gpu

MODEL_LEVELS = [(80, 80), (40, 40), (20, 20), (10, 10)]
CASES = [
    (1, 20, 8, 32, MODEL_LEVELS, 4),
    (2, 7, 3, 5, [(13, 17), (7, 9), (4, 5), (1, 3)], 3),
    (3, 33, 4, 16, [(9, 23), (1, 1)], 5),
]


def _dev(a: np.ndarray, dtype=None) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a)).cuda()
    return t.to(dtype) if dtype is not None else t


def cuda_msda(lib, x: MSDAInputs, half: bool, value_offset: int = 0, synchronize: bool = True) -> torch.Tensor:
    """value_offset > 0 places value at an odd element offset, forcing the scalar FP16 path."""
    B, S, M, D, Q, L, P = x.dims
    dtype = torch.float16 if half else torch.float32
    flat = torch.empty(value_offset + x.value.size, dtype=dtype, device="cuda")
    value = flat[value_offset:].view(x.value.shape)
    value.copy_(_dev(x.value, dtype))
    shapes, starts = _dev(x.spatial_shapes.astype(np.int32)), _dev(x.level_start_index.astype(np.int32))
    loc, weights = _dev(x.sampling_locations, dtype), _dev(x.attention_weights, dtype)
    out = torch.full((B, Q, M * D), float("nan"), dtype=dtype, device="cuda")
    status = lib.ivg_cuda_ms_deform_attn(int(half), value.data_ptr(), shapes.data_ptr(), starts.data_ptr(),
                                         loc.data_ptr(), weights.data_ptr(), out.data_ptr(), B, S, M, D, Q, L, P,
                                         torch.cuda.current_stream().cuda_stream, int(synchronize))
    assert status == 0, lib.ivg_cuda_error_string(status)
    return out


def cuda_select_points(lib, scores: np.ndarray, num_points: int, w_dist: float, with_workspace: bool = True):
    B, h, w = scores.shape
    s = _dev(scores.astype(np.float32))
    indices = torch.full((B, num_points), -7, dtype=torch.int32, device="cuda")
    points = torch.full((B, num_points, 2), float("nan"), dtype=torch.float32, device="cuda")
    size = lib.ivg_cuda_point_select_workspace_size(B, h, w)
    workspace = torch.empty(max(size, 1), dtype=torch.uint8, device="cuda") if with_workspace else None
    status = lib.ivg_cuda_point_select(s.data_ptr(), B, h, w, num_points, w_dist,
                                       workspace.data_ptr() if workspace is not None else None, indices.data_ptr(),
                                       points.data_ptr(), torch.cuda.current_stream().cuda_stream, 1)
    return status, indices.cpu().numpy(), points.cpu().numpy()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"B{c[0]}Q{c[1]}M{c[2]}D{c[3]}L{len(c[4])}")
def test_cuda_ms_deform_attn_fp32(cuda_kernels_lib, case):
    x = msda_inputs(np.random.default_rng(0), *case)
    out = cuda_msda(cuda_kernels_lib, x, half=False).double().cpu().numpy()
    ref = msda_reference(x)
    err = np.abs(out - ref)
    assert np.all(err <= 2e-5 + 1e-5 * np.abs(ref)), f"max abs error {err.max():.3g}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"B{c[0]}Q{c[1]}M{c[2]}D{c[3]}L{len(c[4])}")
@pytest.mark.parametrize("value_offset", [0, 1], ids=["half2", "scalar"])
def test_cuda_ms_deform_attn_fp16(cuda_kernels_lib, host_lib, case, value_offset):
    from .plugin_kernels import host_msda
    x = msda_inputs(np.random.default_rng(1), *case).astype(np.float16)
    out = cuda_msda(cuda_kernels_lib, x, half=True, value_offset=value_offset).cpu().numpy()
    ref = msda_reference(x.astype(np.float64))
    err = np.abs(out.astype(np.float64) - ref)
    assert np.all(err <= fp16_tolerance(ref)), f"max abs error {err.max():.3g}"
    _, host = host_msda(host_lib, x, half=True)
    ulps = np.abs(out.view(np.int16).astype(np.int32) - host.view(np.int16).astype(np.int32))
    assert ulps.max() <= 1


@pytest.mark.parametrize("shape,num_points", [((2, 20, 20), 10), ((3, 7, 13), 91), ((1, 1, 9), 4),
                                              ((2, 130, 130), 12)])  # the last one uses the workspace
@pytest.mark.parametrize("w_dist", [0.0, 0.003, 1.0, -0.2])
def test_cuda_select_points(cuda_kernels_lib, shape, num_points, w_dist):
    rng = np.random.default_rng(3)
    scores = (1 / (1 + np.exp(-rng.standard_normal(shape)))).astype(np.float32)
    scores[0, 0, : shape[2] // 2] = scores[0, 0, 0]  # ties
    status, indices, points = cuda_select_points(cuda_kernels_lib, scores, num_points, w_dist)
    assert status == 0, cuda_kernels_lib.ivg_cuda_error_string(status)
    ref_indices, ref_points = select_points_reference(scores, num_points, w_dist)
    np.testing.assert_array_equal(indices, ref_indices.astype(np.int32))
    np.testing.assert_array_equal(points, ref_points)


def test_cuda_select_points_needs_workspace_for_large_maps(cuda_kernels_lib):
    scores = np.random.default_rng(0).random((1, 130, 130)).astype(np.float32)
    status, _, _ = cuda_select_points(cuda_kernels_lib, scores, 4, 0.003, with_workspace=False)
    assert status != 0


# --------------------------------------------------------------------------------------------------- TensorRT
@pytest.fixture(scope="module")
def trt_plugins():
    """(tensorrt module, libinstancevg_plugins.so built against headers of the installed TensorRT's major)."""
    why = cuda_gpu_reason()
    if why:
        pytest.skip(why)
    try:
        import tensorrt as trt
    except ImportError as exc:
        pytest.skip(f"TensorRT Python package not importable ({exc}): plugins not run through TensorRT")
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found")
    major = int(trt.__version__.split(".")[0])
    if os.environ.get("INSTANCEVG_TRT_INCLUDE_DIR"):
        include, why = tensorrt_include_dir()
    elif major == 10:
        include, why = tensorrt_include_dir()  # kernel-lens: TensorRT 10.14 headers
    else:
        include, why = None, (f"TensorRT {trt.__version__} installed: set INSTANCEVG_TRT_INCLUDE_DIR to its "
                              "headers (the plugin must be built against the runtime's major version)")
    if include is None:
        pytest.skip(why)
    build_dir = build_root() / "trt"
    cmake_build(build_dir, [f"-DCMAKE_CUDA_COMPILER={nvcc}", f"-DTensorRT_INCLUDE_DIR={include}",
                            "-DCMAKE_CUDA_ARCHITECTURES=native"], ["instancevg_plugins"])
    logger = trt.Logger(trt.Logger.WARNING)
    registry = trt.get_plugin_registry()
    assert registry.load_library(str(build_dir / "libinstancevg_plugins.so")) is not None
    return trt, logger


def trt_engine(trt, logger, creator_key, fields, inputs: dict[str, torch.Tensor]):
    """A one-plugin strongly typed engine; returns (run(outputs) -> None, output names)."""
    name, version, namespace = creator_key
    creator = trt.get_plugin_registry().get_creator(name, version, namespace)
    assert creator is not None, f"creator {creator_key} not registered"
    plugin = creator.create_plugin(name, trt.PluginFieldCollection(fields), trt.TensorRTPhase.BUILD)
    assert plugin is not None
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    dtypes = {torch.float32: trt.float32, torch.float16: trt.float16, torch.int32: trt.int32}
    tensors = [network.add_input(k, dtypes[v.dtype], tuple(v.shape)) for k, v in inputs.items()]
    layer = network.add_plugin_v3(tensors, [], plugin)
    names = []
    for i in range(layer.num_outputs):
        layer.get_output(i).name = f"out{i}"
        network.mark_output(layer.get_output(i))
        names.append(f"out{i}")
    serialized = builder.build_serialized_network(network, builder.create_builder_config())
    assert serialized is not None, "engine build failed"
    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    context = engine.create_execution_context()
    for k, v in inputs.items():
        context.set_tensor_address(k, v.data_ptr())

    def run(outputs: list[torch.Tensor]):
        for n, o in zip(names, outputs):
            context.set_tensor_address(n, o.data_ptr())
        assert context.execute_async_v3(torch.cuda.current_stream().cuda_stream)

    return run, names


def msda_torch_inputs(x: MSDAInputs, dtype) -> dict[str, torch.Tensor]:
    return {"value": _dev(x.value, dtype), "spatial_shapes": _dev(x.spatial_shapes.astype(np.int32)),
            "level_start_index": _dev(x.level_start_index.astype(np.int32)),
            "sampling_locations": _dev(x.sampling_locations, dtype),
            "attention_weights": _dev(x.attention_weights, dtype)}


@pytest.mark.parametrize("half", [False, True], ids=["fp32", "fp16"])
def test_tensorrt_ms_deform_attn(trt_plugins, half):
    trt, logger = trt_plugins
    x = msda_inputs(np.random.default_rng(4), *CASES[0])
    if half:
        x = x.astype(np.float16)
    dtype = torch.float16 if half else torch.float32
    run, _ = trt_engine(trt, logger, ("MSDeformAttn", "1", "instancevg"), [], msda_torch_inputs(x, dtype))
    B, S, M, D, Q, L, P = x.dims
    out = torch.empty((B, Q, M * D), dtype=dtype, device="cuda")
    run([out])
    torch.cuda.synchronize()
    ref = msda_reference(x.astype(np.float64))
    err = np.abs(out.double().cpu().numpy() - ref)
    tol = fp16_tolerance(ref) if half else 2e-5 + 1e-5 * np.abs(ref)
    assert np.all(err <= tol), f"max abs error {err.max():.3g}"


def test_tensorrt_point_select(trt_plugins):
    trt, logger = trt_plugins
    scores = np.random.default_rng(5).random((2, 20, 20)).astype(np.float32)
    fields = [trt.PluginField("num_points", np.array([10], np.int32), trt.PluginFieldType.INT32),
              trt.PluginField("w_dist", np.array([0.003], np.float32), trt.PluginFieldType.FLOAT32)]
    run, _ = trt_engine(trt, logger, ("PointSelect", "1", "instancevg"), fields, {"scores": _dev(scores)})
    indices = torch.empty((2, 10), dtype=torch.int32, device="cuda")
    points = torch.empty((2, 10, 2), dtype=torch.float32, device="cuda")
    run([indices, points])
    torch.cuda.synchronize()
    ref_indices, ref_points = select_points_reference(scores, 10, 0.003)
    np.testing.assert_array_equal(indices.cpu().numpy(), ref_indices.astype(np.int32))
    np.testing.assert_array_equal(points.cpu().numpy(), ref_points)


# -------------------------------------------------------------------------------------------------- benchmark
def _time_ms(fn, iters: int = 100) -> float:
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


@pytest.mark.slow
@pytest.mark.parametrize("batch,queries", [(1, 20), (8, 20), (8, 900)])
@pytest.mark.parametrize("half", [False, True], ids=["fp32", "fp16"])
def test_benchmark_ms_deform_attn(cuda_kernels_lib, batch, queries, half):
    x = msda_inputs(np.random.default_rng(0), batch, queries, 8, 32, MODEL_LEVELS, 4)
    if half:
        x = x.astype(np.float16)
    dtype = torch.float16 if half else torch.float32
    t = msda_torch_inputs(x, dtype)
    shapes64 = t["spatial_shapes"].long()
    starts64 = t["level_start_index"].long()
    kernel_out = cuda_msda(cuda_kernels_lib, x, half)
    reference_out = ms_deform_attn(t["value"], shapes64, starts64, t["sampling_locations"], t["attention_weights"])
    torch.testing.assert_close(kernel_out.float(), reference_out.float(), atol=2e-3 if half else 2e-5, rtol=1e-3)

    B, S, M, D, Q, L, P = x.dims
    out = torch.empty((B, Q, M * D), dtype=dtype, device="cuda")
    stream = torch.cuda.current_stream().cuda_stream
    ptrs = [t[k].data_ptr() for k in ("value", "spatial_shapes", "level_start_index", "sampling_locations",
                                      "attention_weights")]
    kernel_ms = _time_ms(lambda: cuda_kernels_lib.ivg_cuda_ms_deform_attn(int(half), *ptrs, out.data_ptr(), B, S, M,
                                                                           D, Q, L, P, stream, 0))
    # The decomposition as exported without a plugin: static level shapes (a Python list), L grid_samples.
    static_shapes = x.spatial_shapes.tolist()
    grid_ms = _time_ms(lambda: ms_deform_attn(t["value"], static_shapes, None, t["sampling_locations"],
                                              t["attention_weights"]))
    result = {"batch": batch, "queries": queries, "dtype": str(dtype), "device": torch.cuda.get_device_name(),
              "kernel_ms": kernel_ms, "grid_sample_ms": grid_ms, "speedup": grid_ms / kernel_ms}
    try:
        import tensorrt  # noqa: F401  (NVIDIA's plugin needs the TensorRT runtime)
        result.update(_nvidia_plugin_timing(x, dtype, out))
    except ImportError:
        result["nvidia_plugin"] = "not run: TensorRT Python package not importable"
    print(json.dumps(result))
    path = build_root() / "benchmark.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(result) + "\n")


def _nvidia_plugin_timing(x: MSDAInputs, dtype, ours: torch.Tensor) -> dict:
    """NVIDIA's MultiscaleDeformableAttnPlugin_TRT (version 2, IPluginV3) and ours, each as a one-layer engine."""
    import tensorrt as trt
    logger = trt.Logger(trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")
    inputs = msda_torch_inputs(x, dtype)
    B, S, M, D, Q, L, P = x.dims
    stream_sync = torch.cuda.synchronize
    result = {}
    try:
        run_nv, _ = trt_engine(trt, logger, ("MultiscaleDeformableAttnPlugin_TRT", "2", ""), [], inputs)
        nv_out = torch.empty((B, Q, M, D), dtype=dtype, device="cuda")
        result["nvidia_plugin_ms"] = _time_ms(lambda: run_nv([nv_out]))
        stream_sync()
        result["nvidia_plugin_max_abs_diff"] = float((nv_out.reshape(B, Q, M * D).float() - ours.float()).abs().max())
    except AssertionError as exc:
        result["nvidia_plugin"] = f"not run: {exc}"
    return result
