"""instancevg-triton: the generated model repository for each core kind, checked against Triton's
model-config schema (tritonclient's protobuf) and the export sidecar, without TensorRT or a server."""
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tritonclient.grpc", reason="the schema checks need tritonclient (pip install -e '.[test]')")

from engines.sidecar import read_sidecar  # noqa: E402
from engines.triton.cli import main  # noqa: E402
from engines.triton.configs import settings  # noqa: E402
from engines.triton.pbtxt import Enum, to_pbtxt  # noqa: E402
from engines.triton.spec import PYTHON_PATH_PARAMETER, SETTINGS_PARAMETER, model_names  # noqa: E402
from engines.triton.validate import check_repository, parse_config  # noqa: E402
from instancevg import bundled  # noqa: E402

from .test_engines_cpu import ENGINES_MAY_IMPORT  # noqa: E402

TEMPLATES = Path(__file__).resolve().parents[2] / "engines" / "triton" / "model_templates"


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def config(repository: Path, model: str):
    return parse_config((repository / model / "config.pbtxt").read_text(), model)


def fake_engine(tmp_path: Path, onnx: Path, batch=(1, 4, 8)) -> tuple[Path, Path]:
    """An engine file and the sidecar instancevg-build-engine writes next to it (its tensorrt-target ONNX
    sidecar has the portable graph's I/O: one contract for both targets), and a plugin library file."""
    from export.sidecar import plugins
    from instancevg.config import get_config

    onnx_sidecar = dict(read_sidecar(onnx), target="tensorrt", plugins=plugins(get_config("tiny"), "tensorrt"))
    engine = tmp_path / "tiny.engine"
    engine.write_bytes(b"serialized engine " * 64)
    library = tmp_path / "plugins" / "libinstancevg_plugins.so"
    library.parent.mkdir()
    (library.parent / "libinstancevg_plugins_static.so").write_bytes(b"\x7fELF self-registering plugins")
    (tmp_path / "tiny.engine.json").write_text(json.dumps({
        "format": "instancevg-engine", "version": 1, "tensorrt": "10.14.1.48", "gpu": "NVIDIA H100",
        "plugin_library": {"path": str(library), "sha256": "0" * 64}, "onnx": {"path": str(onnx)},
        "batch": list(batch) if batch else None, "onnx_sidecar": onnx_sidecar}))
    return engine, library.parent / "libinstancevg_plugins_static.so"


def test_pbtxt_writer_round_trips_through_the_schema():
    text = to_pbtxt({"name": "m", "max_batch_size": 4, "input": [{"name": "x", "data_type": Enum("TYPE_FP32"),
                                                                  "dims": [3, -1]}],
                     "parameters": [{"key": "k", "value": {"string_value": 'a "quoted" \\ back\nslash'}}],
                     "dynamic_batching": {"max_queue_delay_microseconds": 100}})
    parsed = parse_config(text, "test")
    assert parsed.name == "m" and parsed.max_batch_size == 4 and list(parsed.input[0].dims) == [3, -1]
    assert parsed.parameters["k"].string_value == 'a "quoted" \\ back\nslash'
    assert parsed.dynamic_batching.max_queue_delay_microseconds == 100
    with pytest.raises(ValueError, match="bad.pbtxt is not a valid Triton model config"):
        parse_config('name: "m" max_batch: 4', "bad.pbtxt")


def test_python_core_repository(tiny_portable, tmp_path, capsys):
    out = tmp_path / "repo"
    assert main(["--onnx", str(tiny_portable), "-o", str(out), "--core", "python", "--max-batch", "6",
                 "--instances", "2", "--python-instances", "3", "--max-queue-delay-us", "250"]) == 0
    assert "serve it with:\n  tritonserver --model-repository=" in capsys.readouterr().out
    names = model_names("instancevg")
    sidecar = read_sidecar(tiny_portable)
    configs = check_repository(out, "instancevg", sidecar, (1, 4, 8))
    core, pre, post, ensemble = (configs[k] for k in ("core", "preprocess", "postprocess", "ensemble"))
    assert core.backend == "python" and core.max_batch_size == 6 and core.instance_group[0].count == 2
    assert pre.instance_group[0].count == 3 and pre.instance_group[0].kind == 2  # KIND_CPU
    assert [(t.name, list(t.dims)) for t in core.input] == [("image", [3, 128, 128]), ("text_ids", [16]),
                                                            ("text_pad_mask", [16])]
    assert [(t.name, list(t.dims)) for t in core.output][3] == ("instance_mask_logits", [5, 32, 32])
    assert all(c.dynamic_batching.max_queue_delay_microseconds == 250 for c in (core, pre, post))
    assert ensemble.platform == "ensemble" and ensemble.max_batch_size == 6
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == [names["preprocess"], names["core"],
                                                                         names["postprocess"]]
    assert json.loads(pre.parameters[SETTINGS_PARAMETER].string_value) == settings(sidecar)
    assert pre.parameters["tokenizer_file"].string_value == "tiny.spm"
    assert sha256(out / names["preprocess"] / "1" / "tiny.spm") == sidecar["tokenizer"]["sha256"]
    assert sha256(out / names["core"] / "1" / "model.onnx") == sha256(tiny_portable)
    assert (out / names["core"] / "1" / "model.py").read_text() == (TEMPLATES / "core.py").read_text()
    path = pre.parameters[PYTHON_PATH_PARAMETER].string_value.split(":")
    assert str(Path(bundled.__file__).parents[1]) in path  # where this environment imports instancevg from
    manifest = json.loads((out / "instancevg" / "deployment.json").read_text())
    assert manifest["core"] == "python" and manifest["source"]["sha256"] == sha256(tiny_portable)
    assert manifest["files"] == {str(p.relative_to(out)): sha256(p) for p in sorted(out.rglob("*"))
                                 if p.is_file() and p.name != "deployment.json"}
    assert manifest["sidecar"] == sidecar
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging folder left behind"


def test_onnxruntime_core_repository(tiny_portable, tmp_path):
    out = tmp_path / "repo"
    assert main(["--onnx", str(tiny_portable), "-o", str(out), "--name", "grounding"]) == 0
    core = check_repository(out, "grounding", read_sidecar(tiny_portable), (1, 4, 8))["core"]
    assert core.name == "grounding_core" and core.platform == "onnxruntime_onnx" and core.max_batch_size == 8
    assert core.instance_group[0].kind == 0  # KIND_AUTO: GPU where Triton finds one, else CPU
    assert sorted(p.name for p in (out / "grounding_core" / "1").iterdir()) == ["model.onnx"]
    assert PYTHON_PATH_PARAMETER not in core.parameters


def test_external_weights_travel_with_the_graph(tiny_portable, tmp_path):
    import onnx
    import onnxruntime as ort

    graph = tmp_path / "src" / "tiny.onnx"
    (graph.parent / "weights").mkdir(parents=True)
    onnx.save_model(onnx.load(str(tiny_portable)), str(graph), save_as_external_data=True,
                    location="weights/tiny.bin")
    shutil.copyfile(tiny_portable.with_suffix(".json"), graph.with_suffix(".json"))
    assert main(["--onnx", str(graph), "-o", str(tmp_path / "repo")]) == 0
    version = tmp_path / "repo" / "instancevg_core" / "1"
    assert sha256(version / "weights" / "tiny.bin") == sha256(graph.parent / "weights" / "tiny.bin")
    ort.InferenceSession(str(version / "model.onnx"), providers=["CPUExecutionProvider"])  # finds its weights


def test_tensorrt_plan_core_against_schema_and_sidecar(tiny_portable, tmp_path, capsys, monkeypatch):
    engine, static = fake_engine(tmp_path, tiny_portable)
    out = tmp_path / "repo"
    assert main(["--engine", str(engine), "-o", str(out), "--max-batch", "4", "--instances", "2"]) == 0
    printed = capsys.readouterr().out
    core_dir = out / "instancevg_core"
    library = core_dir / "libinstancevg_plugins_static.so"
    assert f"LD_PRELOAD={library}${{LD_PRELOAD:+:$LD_PRELOAD}} tritonserver --model-repository={out}" in printed
    assert f"--backend-config=tensorrt,plugins={library}" in printed
    assert library.read_bytes() == static.read_bytes()
    engine_sidecar = read_sidecar(engine)
    configs = check_repository(out, "instancevg", engine_sidecar["onnx_sidecar"], (1, 4, 8))
    core = configs["core"]
    assert core.platform == "tensorrt_plan" and core.max_batch_size == 4
    assert core.instance_group[0].kind == 1 and core.instance_group[0].count == 2  # KIND_GPU, per GPU
    assert (core_dir / "1" / "model.plan").read_bytes() == engine.read_bytes()
    manifest = json.loads((out / "instancevg" / "deployment.json").read_text())
    assert manifest["tensorrt"] == "10.14.1.48" and manifest["sidecar"]["target"] == "tensorrt"
    # --plugins names the build (its folder or any library in it): Triton gets that build's static library
    (static.parent / "libinstancevg_plugins.so").write_bytes(b"\x7fELF getCreators")
    monkeypatch.setenv("INSTANCEVG_PLUGINS", "")  # --plugins sets it: restored after the test
    for given in (static.parent, static.parent / "libinstancevg_plugins.so"):
        assert main(["--engine", str(engine), "-o", str(tmp_path / "repo2"), "--plugins", str(given), "--force"]) == 0
        assert (tmp_path / "repo2" / "instancevg_core" / static.name).read_bytes() == static.read_bytes()
    # the checks can fail: a core whose tensors drift from the graph, a broken ensemble wiring
    text = (core_dir / "config.pbtxt").read_text()
    (core_dir / "config.pbtxt").write_text(text.replace("dims: [5, 32, 32]", "dims: [5, 64, 64]", 1))
    with pytest.raises(ValueError, match=r"core output instance_mask_logits is \('TYPE_FP32', \[5, 64, 64\]\)"):
        check_repository(out, "instancevg", engine_sidecar["onnx_sidecar"], (1, 4, 8))
    (core_dir / "config.pbtxt").write_text(text)
    ensemble = out / "instancevg" / "config.pbtxt"
    ensemble.write_text(ensemble.read_text().replace('value: "raw_exist_logits"', 'value: "raw_exists"', 1))
    with pytest.raises(ValueError, match="consumes 'raw_exist_logits' before anything produces it"):
        check_repository(out, "instancevg")


def _refused(capsys, argv, message, output: Path):
    before = sorted(p.name for p in output.parent.iterdir())
    assert main(argv + ["-o", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("instancevg-triton: error: ") and message in err and "Traceback" not in err, err
    assert sorted(p.name for p in output.parent.iterdir()) == before  # nothing written, no staging left


def test_refusals_exit_2_and_write_nothing(tiny_portable, tmp_path, capsys):
    out = tmp_path / "repo"
    engine, _ = fake_engine(tmp_path, tiny_portable)
    onnx = ["--onnx", str(tiny_portable)]
    _refused(capsys, onnx + ["--max-batch", "9"], "--max-batch 9 is outside the graph's batch range 1:8", out)
    _refused(capsys, onnx + ["--core", "tensorrt_plan"], "--core tensorrt_plan needs --engine model.engine", out)
    _refused(capsys, ["--engine", str(engine), "--core", "python"], "cannot run a TensorRT engine", out)
    _refused(capsys, ["--engine", str(engine), "--plugins", str(tmp_path / "none_static.so")],
             "--plugins " + str(tmp_path / "none_static.so") + ": no such file or folder", out)
    (tmp_path / "dynamic_only").mkdir()
    (tmp_path / "dynamic_only" / "libinstancevg_plugins.so").write_bytes(b"\x7fELF")
    _refused(capsys, ["--engine", str(engine), "--plugins", str(tmp_path / "dynamic_only" / "libinstancevg_plugins.so")],
             f"plugin library not found: {tmp_path / 'dynamic_only' / 'libinstancevg_plugins_static.so'}", out)
    _refused(capsys, onnx + ["--tokenizer", str(TEMPLATES / "core.py")], "is not the one", out)
    _refused(capsys, ["--onnx", str(tmp_path / "missing.onnx")], "ONNX graph not found", out)
    for name, change in (("fixed", {"batch": {"dynamic": False, "min": 2, "opt": 2, "max": 2}}),
                         ("plugins", {"target": "tensorrt"}), ("starts_at_2", {"batch": {"dynamic": True, "min": 2,
                                                                                         "opt": 4, "max": 8}})):
        graph = tmp_path / f"{name}.onnx"
        shutil.copyfile(tiny_portable, graph)
        graph.with_suffix(".json").write_text(json.dumps({**read_sidecar(tiny_portable), **change}))
        message = {"fixed": "export with --dynamic-batch 1:OPT:MAX (or use --core python)",
                   "plugins": "export with --target portable", "starts_at_2": "must start at 1 for Triton"}[name]
        _refused(capsys, ["--onnx", str(graph)], message, out)
    # an existing deployment is replaced only with --force
    assert main(onnx + ["-o", str(out), "--core", "python"]) == 0
    _refused(capsys, onnx, "already holds ['instancevg', 'instancevg_preprocess', 'instancevg_core', "
                           "'instancevg_postprocess']: use --force", out)
    assert main(onnx + ["-o", str(out), "--force"]) == 0
    assert config(out, "instancevg_core").platform == "onnxruntime_onnx"
    assert not (out / "instancevg_core" / "1" / "model.py").exists()


def test_templates_and_environment_bootstrap(tmp_path, monkeypatch):
    import importlib.util

    for template in TEMPLATES.glob("*.py"):
        compile(template.read_text(), str(template), "exec")
    spec = importlib.util.spec_from_file_location("instancevg_environment", TEMPLATES / "environment.py")
    environment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(environment)
    assert environment.PARAMETER == PYTHON_PATH_PARAMETER
    site, extra = tmp_path / "site", tmp_path / "extra"
    site.mkdir(), extra.mkdir()
    (site / "extra.pth").write_text(str(extra) + "\n")  # .pth files run, as for editable installs
    monkeypatch.setattr(sys, "path", ["/already/there"])
    environment.use_environment({"parameters": {PYTHON_PATH_PARAMETER: {"string_value": str(site)}}})
    assert sys.path == [str(site), str(extra), "/already/there"]
    with pytest.raises(RuntimeError, match="names folders that do not exist here"):
        environment.use_environment({"name": "m", "parameters": {PYTHON_PATH_PARAMETER: {
            "string_value": str(tmp_path / "gone")}}})


def test_generator_runs_without_instancevg_or_torch(tiny_portable, tmp_path):
    """engines (triton included) imports no torch, tensorrt, evaluation, and of instancevg only the torch-free
    CLI vocabulary: the repository is generated from files alone."""
    code = ("import sys\n"
            f"allowed = {ENGINES_MAY_IMPORT!r}\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        top = name.split('.')[0]\n"
            "        if top in ('torch', 'tensorrt', 'evaluation') or (top == 'instancevg' and name not in allowed):\n"
            "            raise ImportError('blocked ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from engines.triton.cli import main\n"
            f"sys.exit(main(['--onnx', {str(tiny_portable)!r}, '-o', {str(tmp_path / 'repo')!r}, '--core', 'python',"
            f" '--tokenizer', {str(bundled.default_tokenizer('tiny'))!r}, '--python-path', '']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    pre = config(tmp_path / "repo", "instancevg_preprocess")
    assert pre.parameters[PYTHON_PATH_PARAMETER].string_value == ""
