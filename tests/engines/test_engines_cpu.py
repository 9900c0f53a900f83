"""engines on a machine without TensorRT: imports, trtexec recipes, sidecars, clear refusals.
Engine builds and runs are GPU/TensorRT tests (tests/engines/test_engines_gpu.py)."""
import json
import os
import subprocess
import sys

import pytest

from engines.cli import main
from engines.sidecar import graph_inputs, read_sidecar, sidecar_path
from engines.tensorrt_import import check_same_gpu, check_same_major, major_version
from engines.trtexec import static_library, trtexec_command

SIDECAR = {"inputs": [{"name": "image", "shape": [1, 3, 128, 128], "dtype": "float32"},
                      {"name": "text_ids", "shape": [1, 16], "dtype": "int64"},
                      {"name": "text_pad_mask", "shape": [1, 16], "dtype": "bool"}],
           "batch": {"dynamic": True, "min": 1, "opt": 4, "max": 8}, "target": "tensorrt"}


# the torch-free modules of instancevg that engines may import: the CLI vocabulary and what it stands on
ENGINES_MAY_IMPORT = ("instancevg", "instancevg.cli", "instancevg.cli.arguments", "instancevg.config",
                      "instancevg.io", "instancevg.plugin_paths")


def test_engines_imports_without_torch_tensorrt_or_instancevg():
    code = ("import sys\n"
            f"allowed = {ENGINES_MAY_IMPORT!r}\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        top = name.split('.')[0]\n"
            "        if top in ('torch', 'tensorrt') or (top == 'instancevg' and name not in allowed):\n"
            "            raise ImportError('blocked ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import engines, engines.cli, engines.build, engines.runner, engines.inspect_engine, engines.trtexec\n"
            "import engines.triton.cli, engines.triton.repository, engines.plugin_library\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('instancevg', 'torch', 'tensorrt')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert set(eval(out.stdout)) <= set(ENGINES_MAY_IMPORT), out.stdout


def test_trtexec_commands_for_tensorrt_10_and_11():
    inputs, batch = graph_inputs(SIDECAR)
    t10 = trtexec_command("m.onnx", "m.engine", "/x/libinstancevg_plugins.so", 10, inputs, batch, 4096, "cache.bin")
    assert t10 == ["trtexec", "--onnx=m.onnx", "--saveEngine=m.engine", "--stronglyTyped",
                   "--dynamicPlugins=/x/libinstancevg_plugins.so",
                   "--minShapes=image:1x3x128x128,text_ids:1x16,text_pad_mask:1x16",
                   "--optShapes=image:4x3x128x128,text_ids:4x16,text_pad_mask:4x16",
                   "--maxShapes=image:8x3x128x128,text_ids:8x16,text_pad_mask:8x16",
                   "--memPoolSize=workspace:4096M", "--timingCacheFile=cache.bin"]
    t11 = trtexec_command("m.onnx", "m.engine", "/x/libinstancevg_plugins.so", 11, inputs, None, static_plugins=True)
    assert "--stronglyTyped" not in t11 and not any(a.startswith("--fp16") for a in t11)
    assert "--staticPlugins=/x/libinstancevg_plugins_static.so" in t11
    assert not any(a.startswith("--minShapes") for a in t11)
    assert static_library("lib/libinstancevg_plugins.so") == "lib/libinstancevg_plugins_static.so"
    with pytest.raises(ValueError, match="10 or 11"):
        trtexec_command("m.onnx", "m.engine", "lib.so", 9, inputs)


def test_print_trtexec_cli(tmp_path, capsys):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"")
    (tmp_path / "model.json").write_text(json.dumps(SIDECAR))
    assert main([str(onnx), "--print-trtexec", "--plugins", "lib/libinstancevg_plugins.so"]) == 0
    out = capsys.readouterr().out
    assert out.count("trtexec --onnx=") == 4 and "# TensorRT 10" in out and "# TensorRT 11" in out
    assert f"--saveEngine={tmp_path / 'model.engine'}" in out


def test_sidecar_errors(tmp_path, capsys):
    assert sidecar_path("a/model.onnx").name == "model.json" and sidecar_path("m.engine").name == "m.engine.json"
    with pytest.raises(FileNotFoundError, match="instancevg-export"):
        read_sidecar(tmp_path / "none.onnx")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        read_sidecar(tmp_path / "bad.onnx")
    with pytest.raises(ValueError, match="min <= opt <= max"):
        graph_inputs({**SIDECAR, "batch": {"dynamic": True, "min": 4, "opt": 2, "max": 8}})
    (tmp_path / "nosidecar.onnx").write_bytes(b"")
    assert main([str(tmp_path / "nosidecar.onnx"), "--print-trtexec"]) == 2
    assert "nosidecar.json" in capsys.readouterr().err


def test_versions_across_majors_are_refused():
    assert major_version("10.14.1.48") == 10
    check_same_major("engine e", "10.14.1", "10.8.0")
    with pytest.raises(RuntimeError, match="built for TensorRT 10.14.1, but this process runs TensorRT 11.1"):
        check_same_major("engine e", "10.14.1", "11.1.0")


def test_engines_from_another_gpu_are_refused():
    check_same_gpu("engine e", "NVIDIA H100", "NVIDIA H100")
    check_same_gpu("engine e", None, "NVIDIA H100")  # older sidecars without a GPU name are accepted
    with pytest.raises(RuntimeError, match="built on a NVIDIA A100.*runs on a NVIDIA H100; rebuild"):
        check_same_gpu("engine e", "NVIDIA A100", "NVIDIA H100")


def test_build_without_tensorrt_says_so(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here: the refusal path does not apply")
    except ImportError:
        pass
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"")
    (tmp_path / "model.json").write_text(json.dumps(SIDECAR))
    (tmp_path / "libinstancevg_plugins.so").write_bytes(b"")  # present: the files are checked first
    monkeypatch.setenv("INSTANCEVG_PLUGINS", "")  # --plugins sets it: restored after the test
    assert main([str(onnx), "--plugins", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("instancevg-build-engine: error: TensorRT's Python package is not installed"), err
    assert not (tmp_path / "model.engine").exists()


def test_plugin_library_checks(tmp_path):
    from engines.plugin_library import check_plugin_library, plugin_library_tensorrt_version

    with pytest.raises(FileNotFoundError, match="missing.so"):
        plugin_library_tensorrt_version(tmp_path / "missing.so")
    (tmp_path / "junk.so").write_bytes(b"not an ELF file")
    with pytest.raises(RuntimeError, match="cannot load the plugin library"):
        check_plugin_library(tmp_path / "junk.so", "10.14.1")
    libm = "/lib/x86_64-linux-gnu/libm.so.6"
    if os.path.exists(libm):  # a loadable library that is not ours
        with pytest.raises(RuntimeError, match="not an instancevg plugin library"):
            plugin_library_tensorrt_version(libm)


def test_runner_raises_when_tensorrt_refuses_a_call():
    """A refused execute (or shape, or address) raises with what was refused instead of returning the buffers
    of an earlier call (the CUDA-graph path included)."""
    from types import SimpleNamespace

    from engines.runner import EngineRunner

    runner = object.__new__(EngineRunner)
    runner.context = SimpleNamespace(execute_async_v3=lambda stream: False)
    runner.stream = SimpleNamespace(cuda_stream=0)
    with pytest.raises(RuntimeError, match="TensorRT refused: execution during the CUDA-graph capture"):
        runner._execute("execution during the CUDA-graph capture")
    runner.context = SimpleNamespace(execute_async_v3=lambda stream: True)
    runner._execute("execution")  # accepted: no error
    with pytest.raises(RuntimeError, match="input 'image' of shape"):
        EngineRunner._check(False, "input 'image' of shape (9, 3, 128, 128) is outside the engine's profile")
