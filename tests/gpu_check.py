"""The one check for a GPU machine (``bash .ci/gpu``): everything the toolchain promises on a GPU that can be
verified without TensorRT, within a time budget, in one report.

    python -m tests.gpu_check [--out DIR] [--budget SECONDS] [--steps a,b,...]

Steps, in order (each marked passed / failed / skipped with its reason; a step whose estimated duration no
longer fits in what is left of the budget is skipped and listed as such):

- environment      GPU, driver, CUDA, torch, nvcc, compute-sanitizer, CPU
- build            the kernel libraries from plugins/ with CMake (CUDA build for the GPU present, host build)
- kernels          both kernels (CUDA build and host build) against an FP64 reference on gres-base shapes
                   (value [B, 8500, 8, 32], Q 10 and 300, levels 80/40/20/10, 4 points, B 1 and 8; PointSelect
                   [B, 20, 20], N 10) and adversarial cases (outside / border / NaN / inf locations, FP16
                   overflow, PointSelect ties and large batches)
- model-golden     gres-base with the golden weights on CUDA: FP32 (TF32 off), TF32, the FP16 export's policy,
                   each with --ops reference and --ops plugin, against the golden outputs and the CPU model
- sanitizer        compute-sanitizer memcheck, racecheck, initcheck and synccheck on small kernel launches
- kernel-timings   kernels vs the grid_sample / PyTorch reference: CUDA events and CUDA-graph replay
- latency          gres-base batch 1 and 8: eager and CUDA graph, FP32 and FP16, both op implementations
- gpu-tests        the test suite's GPU-marked tests
- fidelity-tests   the golden fidelity tests and the plugin-op tests

On a machine without a GPU the host-kernel parts run and the GPU parts are skipped with the reason. Writes
gpu-report.json and gpu-report.md to --out ($OUT, default gpu-report/); exits 1 when a step failed.
"""
from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "gpu-check"
STEP_NAMES = ("environment", "build", "kernels", "model-golden", "sanitizer", "kernel-timings", "latency",
              "gpu-tests", "fidelity-tests")
GRES_LEVELS = [(80, 80), (40, 40), (20, 20), (10, 10)]


class Skip(Exception):
    """A step that cannot run here; the message is the reason."""


@dataclass
class Result:
    name: str
    status: str = "skipped"  # passed | failed | skipped
    reason: str = ""
    seconds: float = 0.0
    details: dict = field(default_factory=dict)
    checks: list = field(default_factory=list)  # [{"name", "passed", "value", "limit"}]

    def check(self, name: str, value, limit, passed: bool | None = None) -> bool:
        ok = bool(value <= limit) if passed is None else bool(passed)
        self.checks.append({"name": name, "passed": ok, "value": _plain(value), "limit": _plain(limit)})
        return ok


def _plain(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    return v


def cuda_reason() -> str:
    if not torch.cuda.is_available():
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    return ""


def need_cuda() -> None:
    why = cuda_reason()
    if why:
        raise Skip(why)


def run(cmd: list[str], timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 1), env=env, cwd=REPO)


# --------------------------------------------------------------------------------------------- environment
def step_environment(result: Result, remaining: float) -> None:
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": platform.python_version(),
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    gpu_memory_gib=round(props.total_memory / 2**30, 1), multiprocessors=props.multi_processor_count)
    for tool, args in (("nvidia-smi", ["--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]),
                       ("nvcc", ["--version"]), ("compute-sanitizer", ["--version"]), ("cmake", ["--version"])):
        path = find_tool(tool)
        if path is None:
            info[tool] = None
            continue
        out = run([path, *args], 30).stdout.strip().splitlines()
        info[tool] = (out[-1] if tool in ("nvcc", "compute-sanitizer") else out[0]) if out else path
    for package in ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "pycocotools", "polygraphy", "tensorrt"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    result.details = info


def find_tool(name: str) -> str | None:
    for candidate in (shutil.which(name), f"/usr/local/cuda/bin/{name}",
                      f"/usr/local/cuda/compute-sanitizer/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


# --------------------------------------------------------------------------------------------- build
def step_build(result: Result, remaining: float) -> None:
    cmake = find_tool("cmake")
    if cmake is None:
        raise Skip("cmake not found")
    nvcc = find_tool("nvcc")
    options = ["-DCMAKE_BUILD_TYPE=Release"]
    targets = ["instancevg_plugins_host"]
    if nvcc and torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        options += [f"-DCMAKE_CUDA_COMPILER={nvcc}", f"-DCMAKE_CUDA_ARCHITECTURES={major}{minor}"]
        targets += ["instancevg_kernels_cuda", "instancevg_kernel_check"]
        result.details["cuda_architecture"] = f"sm_{major}{minor}"
    else:
        options.append("-DINSTANCEVG_PLUGINS_HOST_ONLY=ON")
        result.details["cuda"] = "not built: " + ("no nvcc" if not nvcc else cuda_reason())
    start = time.perf_counter()
    configure = run([cmake, "-S", str(REPO / "plugins"), "-B", str(BUILD), *options], remaining)
    if configure.returncode != 0:
        raise RuntimeError("cmake configure failed:\n" + (configure.stdout + configure.stderr)[-3000:])
    build = run([cmake, "--build", str(BUILD), "-j", str(os.cpu_count() or 2), "--target", *targets],
                remaining - (time.perf_counter() - start))
    if build.returncode != 0:
        raise RuntimeError("build failed:\n" + (build.stdout + build.stderr)[-3000:])
    result.details.update(targets=targets, build_seconds=round(time.perf_counter() - start, 1), folder=str(BUILD))
    use_kernels(BUILD)


def use_kernels(folder: Path) -> None:
    from instancevg.ops import kernels

    os.environ[kernels.PLUGINS_ENV] = str(folder)
    kernels.reset()


def kernels_ready(device: str) -> None:
    from instancevg.ops import kernels

    why = kernels.available(device)
    if why:
        raise Skip(f"{device} kernels unavailable: {why}")


# --------------------------------------------------------------------------------------------- kernels
def _msda_case(rng, batch, queries, dtype=np.float32, **kw):
    from tests.plugins.plugin_kernels import msda_inputs

    return msda_inputs(rng, batch, queries, 8, 32, GRES_LEVELS, 4, **kw).astype(dtype)


def _torch_args(x, device, dtype):
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)  # noqa: E731
    shapes = [tuple(int(v) for v in hw) for hw in x.spatial_shapes]
    return t(x.value), shapes, x.level_start_index.tolist(), t(x.sampling_locations), t(x.attention_weights)


def _plugin_msda(x, device, dtype, weights=None):
    from instancevg import ops

    args = list(_torch_args(x, device, dtype))
    if weights is not None:
        args[4] = torch.from_numpy(weights).to(device=device, dtype=dtype)
    with ops.use_ops("plugin"):
        out = ops.ms_deform_attn(*args)
    if out.is_cuda:
        torch.cuda.synchronize()
    return out.cpu()


def step_kernels(result: Result, remaining: float) -> None:
    from instancevg import ops
    from tests.plugins.plugin_kernels import fp16_tolerance, msda_reference

    kernels_ready("cpu")
    devices = ["cpu"] + (["cuda"] if not cuda_reason() and not _cuda_kernels_missing() else [])
    result.details["devices"] = devices
    if len(devices) == 1:
        result.details["cuda"] = cuda_reason() or _cuda_kernels_missing()
    rng = np.random.default_rng(0)
    for batch, queries in ((1, 10), (1, 300), (8, 10), (8, 300)):
        x32 = _msda_case(rng, batch, queries)
        ref = msda_reference(x32)  # float64
        x16 = x32.astype(np.float16)
        ref16 = msda_reference(x16)  # float64 on the FP16-rounded inputs
        for device in devices:
            out = _plugin_msda(x32, device, torch.float32).double().numpy()
            err = np.abs(out - ref) - (2e-5 + 1e-5 * np.abs(ref))
            result.check(f"MSDeformAttn fp32 {device} B{batch} Q{queries}: max |out - fp64| - bound",
                         float(err.max()), 0.0)
            out16 = _plugin_msda(x16, device, torch.float16).double().numpy()
            err16 = np.abs(out16 - ref16) - fp16_tolerance(ref16)
            result.check(f"MSDeformAttn fp16 {device} B{batch} Q{queries}: max |out - fp64| - bound",
                         float(err16.max()), 0.0)
    # adversarial: NaN / inf / far-outside locations add nothing; FP16 sums beyond 65504 overflow to inf
    x = _msda_case(np.random.default_rng(1), 2, 10)
    loc = x.sampling_locations
    loc[0, 0, :, 0, 0, 0], loc[0, 1, :, 1, 1, 1], loc[1, 2, :, 2, 2] = np.nan, np.inf, -np.inf
    loc[1, 3, :, 3, 3] = 7.0
    dead = ~np.isfinite(loc).all(-1) | (loc > 2).any(-1)
    ref = msda_reference(type(x)(x.value, x.spatial_shapes, x.level_start_index, np.where(dead[..., None], 0.5, loc),
                                 np.where(dead, 0, x.attention_weights)))
    big = x.astype(np.float16)
    big.value[:] = np.float16(60000.0) * np.sign(big.value)
    heavy = np.ones_like(big.attention_weights)  # 16 samples of weight 1: sums far beyond 65504
    ref_big = msda_reference(type(big)(big.value, big.spatial_shapes, big.level_start_index,
                                       big.sampling_locations, heavy))
    # sum of |terms| of each output: float32 summation of 16 samples x 4 corners errs by <= 64 * 2^-24 of it
    terms_big = msda_reference(type(big)(np.abs(big.value), big.spatial_shapes, big.level_start_index,
                                         big.sampling_locations, heavy))
    for device in devices:
        out = _plugin_msda(x, device, torch.float32).double().numpy()
        result.check(f"MSDeformAttn {device} non-finite/outside locations: max error", float(np.abs(out - ref).max()),
                     2e-5 + 1e-5 * float(np.abs(ref).max()))
        out_big = _plugin_msda(big, device, torch.float16, heavy).double().numpy()
        with np.errstate(over="ignore"):
            overflow = np.isinf(ref_big.astype(np.float16))
        clear = np.abs(np.abs(ref_big) - 65520) > 65.52  # FP32 summation order may decide exact borderline cases
        same_inf = np.array_equal(np.isinf(out_big)[clear], overflow[clear]) and \
            np.array_equal(np.sign(out_big[overflow & clear]), np.sign(ref_big[overflow & clear]))
        keep = ~overflow & clear
        bound = fp16_tolerance(ref_big) + 64 * 2.0 ** -24 * terms_big
        finite_err = float(np.max((np.abs(out_big - ref_big) - bound)[keep], initial=-np.inf))
        result.check(f"MSDeformAttn fp16 {device} overflow: inf exactly where the exact sum overflows "
                     f"({int(overflow.sum())} outputs)", 0, 0, passed=same_inf and overflow.any())
        result.check(f"MSDeformAttn fp16 {device} overflow: finite outputs within bound", finite_err, 0.0)
    # PointSelect: exact against the reference on near-flat maps, ties and large batches
    maps = {"softmax B8": torch.sigmoid(torch.softmax(torch.from_numpy(rng.normal(0, 1, (8, 400))).float(), -1))
            .reshape(8, 20, 20),
            "softmax B4096": torch.sigmoid(torch.softmax(torch.from_numpy(rng.normal(0, 1, (4096, 400))).float(), -1))
            .reshape(4096, 20, 20),
            "ties B64": torch.full((64, 20, 20), 0.5),
            "ulp-quantised B1024": 0.5 + torch.from_numpy(rng.integers(-40, 41, (1024, 20, 20))).float()
            * float(np.spacing(np.float32(0.5)))}
    for label, scores in maps.items():
        ref_idx, ref_pts = ops.select_points(scores, 10, 0.003)
        for device in devices:
            with ops.use_ops("plugin"):
                idx, pts = ops.select_points(scores.to(device), 10, 0.003)
            same = torch.equal(idx.cpu(), ref_idx) and torch.equal(pts.cpu(), ref_pts)
            differ = int((idx.cpu() != ref_idx).any(1).sum())
            result.check(f"PointSelect {device} {label}: maps differing from the reference", differ, 0, passed=same)


def _cuda_kernels_missing() -> str:
    from instancevg.ops import kernels

    return kernels.available("cuda") or ""


# --------------------------------------------------------------------------------------------- model on CUDA
@functools.cache
def _golden_weights() -> dict:
    """The golden gres-base weights, made and checksummed once per run (the model is built up to four times)."""
    from tests.golden import golden_state_dict

    return golden_state_dict()


def _golden_model(device: str):
    from instancevg.checkpoint import load_checkpoint
    from instancevg.config import get_config
    from instancevg.model import build_model

    model = build_model(get_config("gres-base")).eval()
    load_checkpoint(model, {"state_dict": _golden_weights()})
    return model.to(device)


OUTPUTS = ("class_logits", "boxes", "instance_mask_logits", "global_mask_logits", "exist_logits")
GOLDEN_NAMES = {"class_logits": "class_logits", "boxes": "boxes_cxcywh", "instance_mask_logits": "instance_mask_logits_80",
                "global_mask_logits": "global_mask_logits_80", "exist_logits": "nt_logits"}
# largest output error (relative to each output's max |value|) per mode: FP32 within the golden tolerance;
# TF32 rounds matmul inputs to 10 bits (~5e-4 each, through 12 encoder layers); FP16 as the FP16 export
MODE_LIMITS = {"fp32": 1e-4, "tf32": 2e-2, "fp16": 5e-2}


def step_model_golden(result: Result, remaining: float) -> None:
    from instancevg import ops
    from instancevg.inference import compute_dtype, tf32_mode
    from instancevg.model.precision import apply_fp16_policy
    from tests.golden import Golden

    need_cuda()
    golden = Golden()
    inputs = golden.inputs()
    cpu_model = _golden_model("cpu")
    with torch.no_grad():
        cpu = cpu_model.forward_all(*inputs)
    del cpu_model
    model = _golden_model("cuda")
    cuda_inputs = [t.cuda() for t in inputs]
    plugin_ok = not _cuda_kernels_missing()
    for mode in ("fp32", "tf32", "fp16"):
        if mode == "fp16":
            apply_fp16_policy(model)
        for impl in ("reference", "plugin"):
            label = f"{mode} ops={impl}"
            if impl == "plugin" and not plugin_ok:
                result.checks.append({"name": label, "passed": True, "value": "skipped: " + _cuda_kernels_missing(),
                                      "limit": None})
                continue
            image = cuda_inputs[0].to(compute_dtype(model))
            with torch.no_grad(), ops.use_ops(impl), tf32_mode(mode == "tf32"):
                out = model.forward_all(image, *cuda_inputs[1:])
            torch.cuda.synchronize()
            errors = {}
            for name in OUTPUTS:
                ours = out[name].float().cpu()
                err, scale = golden.errors(GOLDEN_NAMES[name], ours)
                errors[f"vs golden {name}"] = err / scale
                errors[f"vs CPU {name}"] = float((ours - cpu[name].float()).abs().max() / cpu[name].abs().max())
            result.details[label] = errors
            worst = max(errors.values())
            result.check(f"{label}: largest relative output error", worst, MODE_LIMITS[mode])
            same_points = np.array_equal(out["point_index"].cpu().numpy(), golden["point_index"])
            same_tokens = np.array_equal(out["text_index"].cpu().numpy(), golden["text_sel_index"])
            # FP32 must select exactly; TF32/FP16 inputs to the float32 selection differ: reported, not required
            result.check(f"{label}: points and text tokens identical to the golden", int(not (same_points and
                         same_tokens)), 0, passed=(same_points and same_tokens) or mode != "fp32")
    result.details["limits"] = MODE_LIMITS


# --------------------------------------------------------------------------------------------- sanitizer
def step_sanitizer(result: Result, remaining: float) -> None:
    need_cuda()
    sanitizer = find_tool("compute-sanitizer")
    if sanitizer is None:
        raise Skip("compute-sanitizer not found")
    program = BUILD / "instancevg_kernel_check"
    if not program.is_file():
        raise Skip(f"{program} not built (the build step did not build the CUDA targets)")
    spent = 0.0
    for tool in ("memcheck", "racecheck", "initcheck", "synccheck"):
        start = time.perf_counter()
        proc = run([sanitizer, "--tool", tool, "--error-exitcode", "3", str(program)], min(remaining - spent, 180))
        seconds = time.perf_counter() - start
        spent += seconds
        summary = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR SUMMARY" in line
                   or "RACECHECK SUMMARY" in line or line.startswith(("ok:", "FAILED", "FAIL", "no usable"))]
        result.details[tool] = {"returncode": proc.returncode, "seconds": round(seconds, 1), "summary": summary,
                                "tail": (proc.stdout + proc.stderr)[-1500:] if proc.returncode else ""}
        result.check(f"compute-sanitizer --tool {tool}: exit code", proc.returncode, 0, passed=proc.returncode == 0)


# --------------------------------------------------------------------------------------------- timings
def cuda_time_ms(fn: Callable[[], object], iters: int = 50, warmup: int = 5) -> float:
    """Median milliseconds of fn() between CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def graph_time_ms(fn: Callable[[], object], iters: int = 50, calls: int = 10) -> float:
    """Median milliseconds of one fn() replayed from a CUDA graph holding ``calls`` calls."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    return cuda_time_ms(graph.replay, iters) / calls


def step_kernel_timings(result: Result, remaining: float) -> None:
    from instancevg import ops

    need_cuda()
    kernels_ready("cuda")
    rng = np.random.default_rng(2)
    rows = []
    for batch, queries in ((1, 10), (8, 300)):
        for dtype in (torch.float32, torch.float16):
            args = _torch_args(_msda_case(rng, batch, queries), "cuda", dtype)

            def reference():
                return ops.ms_deform_attn(*args)

            def plugin():
                with ops.use_ops("plugin"):
                    return ops.ms_deform_attn(*args)

            row = {"op": "MSDeformAttn", "shape": f"B{batch} Q{queries}", "dtype": str(dtype).split(".")[1]}
            row.update(reference_ms=cuda_time_ms(reference), plugin_ms=cuda_time_ms(plugin),
                       reference_graph_ms=graph_time_ms(reference), plugin_graph_ms=graph_time_ms(plugin))
            rows.append(row)
    for batch in (1, 8):
        scores = torch.sigmoid(torch.rand(batch, 20, 20, device="cuda") / 400)

        def reference_select():
            return ops.select_points(scores, 10, 0.003)

        def plugin_select():
            with ops.use_ops("plugin"):
                return ops.select_points(scores, 10, 0.003)

        rows.append({"op": "PointSelect", "shape": f"B{batch} 20x20 N10", "dtype": "float32",
                     "reference_ms": cuda_time_ms(reference_select), "plugin_ms": cuda_time_ms(plugin_select),
                     "reference_graph_ms": graph_time_ms(reference_select),
                     "plugin_graph_ms": graph_time_ms(plugin_select)})
    for row in rows:
        row["speedup_graph"] = row["reference_graph_ms"] / row["plugin_graph_ms"]
    result.details["rows"] = rows


# --------------------------------------------------------------------------------------------- latency
def step_latency(result: Result, remaining: float) -> None:
    from instancevg import ops
    from instancevg.inference import CudaGraphForward, compute_dtype, tf32_mode
    from instancevg.model.precision import apply_fp16_policy

    need_cuda()
    plugin_ok = not _cuda_kernels_missing()
    rows = []
    for precision in ("fp32", "fp16"):
        model = _golden_model("cuda")
        if precision == "fp16":
            apply_fp16_policy(model)
        dtype = compute_dtype(model)
        for batch in (1, 8):
            gen = torch.Generator(device="cuda").manual_seed(0)
            image = torch.randn(batch, 3, 320, 320, device="cuda", generator=gen).to(dtype)
            ids = torch.randint(4, 64000, (batch, 50), device="cuda", generator=gen)
            pad = torch.arange(50, device="cuda")[None].expand(batch, 50) >= 12
            for impl in ("reference", "plugin"):
                if impl == "plugin" and not plugin_ok:
                    continue
                with torch.no_grad(), ops.use_ops(impl), tf32_mode(False):
                    eager = cuda_time_ms(lambda: model(image, ids, pad), iters=20, warmup=3)
                    graph = CudaGraphForward(model)
                    graphed = cuda_time_ms(lambda: graph(image, ids, pad), iters=20, warmup=2)
                rows.append({"precision": precision, "batch": batch, "ops": impl, "eager_ms": eager,
                             "cuda_graph_ms": graphed, "samples_per_s_graph": 1000 * batch / graphed})
        del model
        torch.cuda.empty_cache()
    result.details["rows"] = rows
    result.details["note"] = "model forward on device tensors (no host copies), TF32 off, median of 20"


# --------------------------------------------------------------------------------------------- pytest steps
def _pytest(result: Result, remaining: float, args: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args], remaining, env)
    lines = (proc.stdout + proc.stderr).splitlines()
    summary = next((line for line in reversed(lines) if re.search(r"\d+ (passed|failed|skipped|error)", line)), "")
    result.details.update(command="python -m pytest " + " ".join(args), returncode=proc.returncode, summary=summary,
                          skipped=[line for line in lines if line.startswith("SKIPPED")][:40],
                          tail="\n".join(lines[-60:]) if proc.returncode not in (0, 5) else "")
    result.check("pytest exit code (0 passed, 5 nothing collected)", proc.returncode, 0,
                 passed=proc.returncode in (0, 5))


def step_gpu_tests(result: Result, remaining: float) -> None:
    need_cuda()
    _pytest(result, remaining, ["-m", "gpu", "tests/plugins", "tests/engines", "tests/instancevg/test_gpu_model.py"])


def step_fidelity_tests(result: Result, remaining: float) -> None:
    _pytest(result, remaining, ["tests/instancevg/test_golden.py", "tests/instancevg/training/test_golden_train.py",
                                "tests/instancevg/test_ops_plugin.py"])


STEPS: dict[str, tuple[Callable[[Result, float], None], float]] = {
    # name: (function, estimated seconds on a 16-core GPU machine: a step that no longer fits is skipped)
    "environment": (step_environment, 5),
    "build": (step_build, 90),
    "kernels": (step_kernels, 45),
    "model-golden": (step_model_golden, 60),
    "sanitizer": (step_sanitizer, 60),
    "kernel-timings": (step_kernel_timings, 30),
    "latency": (step_latency, 60),
    "gpu-tests": (step_gpu_tests, 90),
    "fidelity-tests": (step_fidelity_tests, 90),
}


def run_steps(selected: list[str], budget: float) -> list[Result]:
    deadline = time.monotonic() + budget
    results = []
    for name in STEP_NAMES:
        result = Result(name)
        results.append(result)
        fn, estimate = STEPS[name]
        remaining = deadline - time.monotonic()
        if name not in selected:
            result.reason = "not selected (--steps)"
            continue
        if estimate > remaining:
            result.reason = f"out of time: needs ~{estimate:.0f} s, {max(remaining, 0):.0f} s of the budget left"
            continue
        print(f"[gpu-check] {name} ...", flush=True)
        start = time.perf_counter()
        try:
            fn(result, remaining)
            failed = [c["name"] for c in result.checks if not c["passed"]]
            result.status = "failed" if failed else "passed"
            result.reason = f"{len(failed)} of {len(result.checks)} checks failed" if failed else \
                (f"{len(result.checks)} checks passed" if result.checks else "")
        except Skip as exc:
            result.status, result.reason = "skipped", str(exc)
        except subprocess.TimeoutExpired as exc:
            result.status, result.reason = "failed", f"timed out after {exc.timeout:.0f} s"
        except Exception as exc:  # noqa: BLE001 - a broken step is reported, the others still run
            result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"
            result.details["traceback"] = traceback.format_exc()[-4000:]
        result.seconds = round(time.perf_counter() - start, 1)
        print(f"[gpu-check] {name}: {result.status} ({result.seconds} s) {result.reason}", flush=True)
    return results


def markdown(results: list[Result], budget: float) -> str:
    env = next((r.details for r in results if r.name == "environment"), {})
    lines = ["# GPU check", "", f"{env.get('date', '')} - {env.get('gpu') or 'no GPU'} - torch {env.get('torch')} "
             f"(CUDA {env.get('torch_cuda')}) - budget {budget:.0f} s", "",
             "| step | status | seconds | reason |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.status} | {r.seconds} | {r.reason} |" for r in results]
    for r in results:
        if not (r.checks or r.details) or r.name == "environment":
            continue
        lines += ["", f"## {r.name}", ""]
        if r.checks:
            lines += ["| check | value | limit | result |", "|---|---|---|---|"]
            lines += [f"| {c['name']} | {_fmt(c['value'])} | {_fmt(c['limit'])} | {'ok' if c['passed'] else 'FAIL'} |"
                      for c in r.checks]
        rows = r.details.get("rows")
        if rows:
            keys = list(rows[0])
            lines += ["", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            lines += ["| " + " | ".join(_fmt(row.get(k)) for k in keys) + " |" for row in rows]
        for key in ("summary", "command"):
            if key in r.details:
                lines.append(f"\n{key}: `{r.details[key]}`")
    lines += ["", "## environment", "", "```", json.dumps(env, indent=2), "```", ""]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"
    return "-" if v is None else str(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu-report", help="report folder (default: $OUT or "
                   "gpu-report)")
    p.add_argument("--budget", type=float, default=float(os.environ.get("INSTANCEVG_GPU_BUDGET_S", 480)),
                   help="seconds for all steps; a step that no longer fits is skipped (default 480)")
    p.add_argument("--steps", default=os.environ.get("INSTANCEVG_GPU_STEPS", ",".join(STEP_NAMES)),
                   help="comma-separated steps to run (default: all): " + ", ".join(STEP_NAMES))
    args = p.parse_args(argv)
    selected = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(selected) - set(STEP_NAMES))
    if unknown:
        print(f"gpu_check: error: unknown steps {unknown}; expected some of {', '.join(STEP_NAMES)}", file=sys.stderr)
        return 2
    torch.set_num_threads(os.cpu_count() or 1)
    results = run_steps(selected, args.budget)
    report = {"format": "instancevg-gpu-report", "version": 1, "budget_s": args.budget,
              "passed": not any(r.status == "failed" for r in results),
              "steps": [r.__dict__ for r in results]}
    out = Path(args.out)
    from instancevg.io import write_json_atomic, write_text_atomic

    write_json_atomic(out / "gpu-report.json", report)
    write_text_atomic(out / "gpu-report.md", markdown(results, args.budget))
    print(f"[gpu-check] {'PASSED' if report['passed'] else 'FAILED'}; report in {out}/gpu-report.md", flush=True)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
