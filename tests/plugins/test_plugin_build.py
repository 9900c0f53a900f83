"""Full plugin library: compiled and linked with nvcc against the TensorRT headers of the kernel-lens wheel, then
loaded by the host harness (plugins/harness/pluginHarness.cpp) without GPU or libnvinfer: creators, fields,
build-phase methods, enqueue refusals, serialization round trip, creator refusals.

Skips with the reason where nvcc or the headers are unavailable (see conftest.py).
"""
from __future__ import annotations

import shutil
import subprocess

import pytest


@pytest.fixture(scope="module")
def harness_results(full_build) -> dict[str, str]:
    """Runs the harness once; returns {check: "PASS" | "FAIL: why"} and fails on a crash."""
    proc = subprocess.run([str(full_build.harness), str(full_build.plugins), str(full_build.plugins_static)],
                          capture_output=True, text=True, timeout=120)
    results = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status == "PASS":
            results[rest] = "PASS"
        elif status == "FAIL":
            name, _, why = rest.partition(": ")
            results[name] = f"FAIL: {why}"
    if "SUMMARY" not in proc.stdout:
        pytest.fail(f"harness did not finish (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
                    pytrace=False)
    results["__exit__"] = str(proc.returncode)
    return results


def test_harness_all_checks_pass(harness_results):
    failures = {k: v for k, v in harness_results.items() if v.startswith("FAIL")}
    assert not failures, failures
    assert harness_results["__exit__"] == "0"


# The checks the acceptance criteria name: each must have run and passed (not merely be absent from the failures).
REQUIRED_CHECKS = [
    "exports", "get_creators", "creator_names",
    "MSDeformAttn.creator_version", "MSDeformAttn.creator_namespace", "MSDeformAttn.field_names",
    "PointSelect.creator_version", "PointSelect.creator_namespace", "PointSelect.field_names",
    "MSDeformAttn.create_from_fields", "PointSelect.create_from_fields",
    "MSDeformAttn.output_shape", "PointSelect.output_shapes", "MSDeformAttn.refuse_int64_spatial_shapes",
    "MSDeformAttn.enqueue_refuses_null_tensors", "MSDeformAttn.enqueue_refuses_mismatched_dims",
    "PointSelect.enqueue_refuses_mismatched_dims",
    "MSDeformAttn.serialize_fields", "MSDeformAttn.recreate_runtime", "MSDeformAttn.round_trip",
    "PointSelect.serialize_fields", "PointSelect.recreate_runtime", "PointSelect.round_trip",
    "PointSelect.clone_serialize",
    "MSDeformAttn.refuse_unknown_field", "PointSelect.refuse_unknown_field", "PointSelect.refuse_missing_w_dist",
    "PointSelect.refuse_float_num_points", "PointSelect.refuse_zero_num_points", "PointSelect.refuse_nan_w_dist",
    "static.dlopen_without_libnvinfer", "static.no_getCreators_export",
]


@pytest.mark.parametrize("check", REQUIRED_CHECKS)
def test_harness_check(harness_results, check):
    assert harness_results.get(check) == "PASS", harness_results.get(check, "did not run")


def _exported(path) -> set[str]:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not found")
    out = subprocess.run([nm, "-D", "--defined-only", str(path)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def _needed(path) -> list[str]:
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) not found")
    out = subprocess.run([readelf, "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return [line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def test_dynamic_library_exports_only_the_loader_entry_points(full_build):
    assert _exported(full_build.plugins) == {"getCreators", "setLoggerFinder", "instancevgPluginsTensorRTVersion"}


def test_library_reports_the_tensorrt_version_it_was_built_for(full_build):
    from engines.plugin_library import plugin_library_tensorrt_version

    from engines.plugin_library import check_plugin_library

    assert plugin_library_tensorrt_version(full_build.plugins) == "10.14.1"  # the kernel-lens 2.0.1 headers
    check_plugin_library(full_build.plugins, "10.8.0")
    with pytest.raises(RuntimeError, match="built for TensorRT 10.14.1, but this process runs TensorRT 11.1.0"):
        check_plugin_library(full_build.plugins, "11.1.0")


def test_static_library_exports_nothing(full_build):
    assert _exported(full_build.plugins_static) == set()


def test_libraries_need_no_tensorrt_or_cuda_runtime_library(full_build):
    """libinstancevg_plugins.so loads into any TensorRT of the headers' major version (no libnvinfer link) and
    links the CUDA runtime statically. (The static variant links libnvinfer only when CMake found one.)"""
    needed = _needed(full_build.plugins)
    assert not [n for n in needed if "nvinfer" in n or "cudart" in n], needed
    needed = _needed(full_build.plugins_static)
    assert not [n for n in needed if "cudart" in n], needed
