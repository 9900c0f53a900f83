"""Every command turns expected failures into one line on stderr and exit status 2, never a traceback: bad
checkpoints, unwritable outputs (checked before any work), missing inputs, a portable graph given to an engine
build. Ctrl-C and SIGTERM during export, evaluation and engine building: one line, status 130 / 143, nothing
left behind (subprocesses for export and evaluation; engine building with a stand-in for TensorRT)."""
from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

from instancevg import bundled
from instancevg.plugin_paths import PLUGINS_ENV, TENSORRT_LIBRARY

REPO = Path(__file__).resolve().parents[1]
MODULES = {"instancevg-predict": "instancevg.cli.predict", "instancevg-convert": "instancevg.cli.convert",
           "instancevg-synthetic": "instancevg.cli.make_synthetic", "instancevg-train": "evaluation.train_cli",
           "instancevg-export": "export.cli", "instancevg-eval": "evaluation.cli", "instancevg-bench": "evaluation.bench",
           "instancevg-demo": "evaluation.demo", "instancevg-build-engine": "engines.cli",
           "instancevg-triton": "engines.triton.cli", "instancevg-debug-precision": "export.debug_precision"}
SIDECAR = {"inputs": [{"name": "image", "shape": [1, 3, 128, 128], "dtype": "float32"},
                      {"name": "text_ids", "shape": [1, 16], "dtype": "int64"},
                      {"name": "text_pad_mask", "shape": [1, 16], "dtype": "bool"}],
           "batch": {"dynamic": False, "min": 1, "opt": 1, "max": 1}}


@pytest.fixture(autouse=True)
def _plugins_setting_restored(monkeypatch):
    """--plugins sets $INSTANCEVG_PLUGINS for the process (child processes, the kernel loader): put it back."""
    monkeypatch.setenv(PLUGINS_ENV, os.environ.get(PLUGINS_ENV, ""))
    if not os.environ[PLUGINS_ENV]:
        monkeypatch.delenv(PLUGINS_ENV)


def run(prog: str, argv: list[str], capsys) -> tuple[int, str]:
    """The command in-process: (exit status, stderr)."""
    rc = importlib.import_module(MODULES[prog]).main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def assert_one_line(prog: str, err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    assert err.startswith(f"{prog}: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def data_root(synthetic_root):
    return synthetic_root(16, 0)


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A truncated checkpoint, bytes that are no checkpoint, and a torch file that holds no state dict."""
    folder = tmp_path_factory.mktemp("bad-checkpoints")
    whole = bundled.TINY_CHECKPOINT.read_bytes()
    (folder / "truncated.pth").write_bytes(whole[: len(whole) // 2])
    (folder / "garbage.pth").write_bytes(b"these bytes are not a checkpoint\n" * 10)
    torch.save([1, 2, 3], folder / "list.pth")
    return {p.stem: p for p in folder.iterdir()}


def tensorrt_graph(folder: Path, target: str | None = "tensorrt") -> Path:
    """An ONNX file and its sidecar (target as given; None: a hand-written sidecar without one)."""
    import onnx
    from onnx import TensorProto, helper

    node = (helper.make_node("PointSelect", ["x"], ["y"], domain="instancevg") if target != "portable"
            else helper.make_node("Relu", ["x"], ["y"]))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                      helper.make_opsetid("instancevg", 1)]), path)
    path.with_suffix(".json").write_text(json.dumps(SIDECAR if target is None else {**SIDECAR, "target": target}))
    return path


# ------------------------------------------------------------------ bad checkpoints
def checkpoint_argv(prog: str, checkpoint: Path, out: Path, data_root: str) -> list:
    return {
        "instancevg-predict": ["--checkpoint", checkpoint, "-o", out / "pred"],
        "instancevg-export": ["--checkpoint", checkpoint, "-o", out / "m.onnx"],
        "instancevg-bench": ["--checkpoint", checkpoint, "--iters", 1, "--warmup", 0, "-o", out / "bench.json"],
        "instancevg-eval": ["--checkpoint", checkpoint, "--dataset", "grefcoco", "--split", "val", "--data-root",
                            data_root, "--no-progress", "-o", out / "r.json", "--save-predictions", out / "p.jsonl"],
        "instancevg-train": ["--load-from", checkpoint, "--dataset", "grefcoco", "--data-root", data_root,
                             "--work-dir", out / "run", "--epochs", 1, "--train-limit", 2, "--eval-split", "none",
                             "--workers", 0, "--no-progress"],
    }[prog]


@pytest.mark.parametrize("kind,expected", [("truncated", "not a readable checkpoint"),
                                           ("garbage", "not a readable checkpoint"),
                                           ("list", "expected a dict")])
@pytest.mark.parametrize("prog", ["instancevg-predict", "instancevg-export", "instancevg-bench", "instancevg-eval",
                                  "instancevg-train"])
def test_bad_checkpoint(prog, kind, expected, bad_checkpoints, data_root, tmp_path, capsys):
    rc, err = run(prog, checkpoint_argv(prog, bad_checkpoints[kind], tmp_path, data_root), capsys)
    assert rc == 2
    assert_one_line(prog, err, str(bad_checkpoints[kind]), expected)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_bad_resume_checkpoint(bad_checkpoints, data_root, tmp_path, capsys):
    argv = checkpoint_argv("instancevg-train", bad_checkpoints["truncated"], tmp_path, data_root)
    argv[0] = "--resume"
    rc, err = run("instancevg-train", argv, capsys)
    assert rc == 2
    assert_one_line("instancevg-train", err, str(bad_checkpoints["truncated"]), "not a readable checkpoint")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


# ------------------------------------------------------------------ unwritable outputs, before any work
def unwritable_cases(blocker: Path, data_root: str, graph: Path) -> list[tuple[str, list, str, Path]]:
    """(command, argv, option, path): every output option of every command, under a file (not a folder).
    The other inputs are often missing or absent: the output check comes first."""
    eval_args = ["--dataset", "grefcoco", "--split", "val", "--data-root", data_root, "--no-progress"]
    out = blocker / "out"
    return [
        ("instancevg-predict", ["-o", out], "-o", out.with_name("out.png")),
        ("instancevg-export", ["-o", blocker / "m.onnx"], "-o", blocker / "m.onnx"),
        ("instancevg-eval", eval_args + ["-o", blocker / "r.json"], "-o", blocker / "r.json"),
        ("instancevg-eval", eval_args + ["--save-predictions", blocker / "{dataset}" / "{split}.jsonl"],
         "--save-predictions", blocker / "grefcoco" / "val.jsonl"),
        ("instancevg-bench", ["-o", blocker / "b.json", "--onnx", "absent.onnx", "--backends", "onnxruntime"], "-o",
         blocker / "b.json"),
        ("instancevg-demo", ["-o", out], "-o", out),
        ("instancevg-synthetic", ["-o", out], "-o", out),
        ("instancevg-convert", ["--dataset", "grefcoco", "--source", "absent", "-o", out], "-o", out),
        ("instancevg-train", ["--dataset", "grefcoco", "--data-root", "absent", "--work-dir", out], "--work-dir", out),
        ("instancevg-build-engine", [graph, "-o", blocker / "m.engine"], "-o", blocker / "m.engine"),
        ("instancevg-build-engine", [graph, "-o", graph.with_suffix(".engine"), "--timing-cache", blocker / "c"],
         "--timing-cache", blocker / "c"),
        ("instancevg-triton", ["--onnx", "absent.onnx", "-o", out], "-o", out),
        ("instancevg-debug-precision", ["absent_a.onnx", "absent_b.onnx", "-o", blocker / "r.json"], "-o",
         blocker / "r.json"),
    ]


def test_unwritable_outputs_are_refused_before_any_work(data_root, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder is needed")
    graph = tensorrt_graph(tmp_path)
    listing = sorted(p.name for p in tmp_path.iterdir())
    cases = unwritable_cases(blocker, data_root, graph)
    assert {case[0] for case in cases} == set(MODULES)  # every command
    for prog, argv, option, path in cases:
        rc, err = run(prog, argv, capsys)
        assert rc == 2, (prog, err)
        assert err == f"{prog}: error: {option} {path}: cannot write in {blocker}: not a folder\n", err
        assert sorted(p.name for p in tmp_path.iterdir()) == listing  # nothing created, no probe left


def test_an_output_that_is_a_folder_is_refused(tmp_path, capsys):
    for prog, argv in (("instancevg-export", ["-o", tmp_path]), ("instancevg-bench", ["-o", tmp_path]),
                       ("instancevg-debug-precision", ["a.onnx", "b.onnx", "-o", tmp_path])):
        rc, err = run(prog, argv, capsys)
        assert rc == 2
        assert_one_line(prog, err, f"-o {tmp_path}: is a folder")


# ------------------------------------------------------------------ missing or wrong inputs
@pytest.mark.parametrize("prog,argv,fragments", [
    ("instancevg-predict", ["{tmp}/absent.jpg", "a red circle", "-o", "{tmp}/p"], ["image file not found"]),
    ("instancevg-predict", ["only-an-image.jpg", "-o", "{tmp}/p"], ["give both IMAGE and EXPRESSION"]),
    ("instancevg-export", ["--checkpoint", "{tmp}/absent.pth", "-o", "{tmp}/m.onnx"], ["absent.pth", "not found"]),
    ("instancevg-eval", ["--data-root", "{tmp}", "--dataset", "grefcoco"], ["no annotation files found"]),
    ("instancevg-eval", ["--data-root", "{tmp}"], ["give --dataset"]),
    ("instancevg-eval", ["--data-root", "{data}", "--dataset", "nosuch"], ["unknown benchmark 'nosuch'"]),
    ("instancevg-eval", ["--data-root", "{data}", "--dataset", "grefcoco", "--split", "val", "--backend",
                         "onnxruntime"], ["--backend onnxruntime needs --onnx"]),
    ("instancevg-eval", ["--data-root", "{data}", "--dataset", "grefcoco", "--plugins", "{tmp}/absent"],
     ["--plugins", "absent: no such file or folder"]),
    ("instancevg-bench", ["--backends", "pytorch,nosuch"], ["--backends: unknown ['nosuch']"]),
    ("instancevg-bench", ["--batch-sizes", "1,x"], ["--batch-sizes 1,x: expected comma-separated integers"]),
    ("instancevg-train", ["--dataset", "grefcoco", "--data-root", "{data}", "--load-from", "{tmp}/absent.pth",
                          "--work-dir", "{tmp}/w"], ["--load-from", "absent.pth: file not found"]),
    ("instancevg-synthetic", ["-o", "{tmp}/d", "--num-images", "1"], ["num_images"]),
    ("instancevg-convert", ["--dataset", "grefcoco", "--source", "{tmp}/absent", "-o", "{tmp}/d"],
     ["no original release under"]),
    ("instancevg-demo", ["-o", "{tmp}/d", "--plugins", "{tmp}/absent"], ["no such file or folder"]),
    ("instancevg-build-engine", ["{tmp}/absent.onnx"], ["ONNX graph", "absent.onnx: file not found"]),
    ("instancevg-build-engine", ["{tmp}/absent.onnx", "--check"], ["absent.onnx: file not found"]),
    ("instancevg-build-engine", ["--inspect", "{tmp}/absent.engine"], ["engine", "absent.engine: file not found"]),
    ("instancevg-build-engine", [], ["give the ONNX graph to build"]),
    ("instancevg-triton", ["--onnx", "{tmp}/absent.onnx", "-o", "{tmp}/repo"], ["absent.onnx"]),
    ("instancevg-debug-precision", ["{tmp}/absent.onnx", "{tmp}/b.onnx"], ["graph A", "absent.onnx: file not found"]),
])
def test_missing_or_wrong_inputs(prog, argv, fragments, data_root, tmp_path, capsys):
    rc, err = run(prog, [a.format(tmp=tmp_path, data=data_root) for a in argv], capsys)
    assert rc == 2
    assert_one_line(prog, err, *fragments)
    assert "TensorRT" not in err  # files are reported as such, before any hint about TensorRT
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("target", ["portable", None])
@pytest.mark.parametrize("extra", [[], ["--print-trtexec"]])
def test_build_engine_refuses_a_portable_graph(target, extra, tmp_path, capsys):
    """A graph without plugin nodes (sidecar target portable, or no target and no instancevg node) is not
    built with the plugins as if it were the tensorrt target: exit 2, naming the remedy."""
    graph = tensorrt_graph(tmp_path, target or "portable")
    if target is None:
        graph.with_suffix(".json").write_text(json.dumps(SIDECAR))
    rc, err = run("instancevg-build-engine", [graph, *extra], capsys)
    assert rc == 2
    assert_one_line("instancevg-build-engine", err, f"{graph} is a portable export",
                    "export it with instancevg-export --target tensorrt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.onnx"]


def test_build_engine_takes_a_tensorrt_graph_without_target_in_its_sidecar(tmp_path, capsys):
    graph = tensorrt_graph(tmp_path, None)
    rc = importlib.import_module(MODULES["instancevg-build-engine"]).main([str(graph), "--print-trtexec"])
    assert rc == 0 and capsys.readouterr().out.count("trtexec --onnx=") == 4


# ------------------------------------------------------------------ Ctrl-C and SIGTERM
def interrupt(argv: list[str], started: str, signum: int, cwd: Path) -> tuple[int, list[str]]:
    """Start a command, send ``signum`` once ``started`` appears on its stdout; (status, stderr lines)."""
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        for line in proc.stdout:
            if started in line:
                break
        else:
            pytest.fail(f"{argv[0]} ended before printing {started!r}: {proc.stderr.read()}")
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, err.splitlines()


def assert_interrupted(prog: str, status: int, lines: list[str], signum: int) -> None:
    expected = {signal.SIGTERM: (143, "terminated (SIGTERM)"), signal.SIGINT: (130, "interrupted (Ctrl-C)")}[signum]
    assert status == expected[0], lines
    assert lines[-1] == f"{prog}: {expected[1]}; temporary files removed, nothing half-written left", lines
    # before it, at most the run's one-line warnings: no traceback
    assert all(line.startswith("warning: ") for line in lines[:-1]), lines


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_export_interrupted(signum, tmp_path):
    """Interrupted while tracing: no graph, no sidecar, no temporary file."""
    out = tmp_path / "out"
    status, lines = interrupt(["export.cli", "-o", str(out / "model.onnx")], "[2/4]", signum, tmp_path)
    assert_interrupted("instancevg-export", status, lines, signum)
    assert not out.exists() or list(out.iterdir()) == []


@pytest.fixture(scope="module")
def eval_root(synthetic_root):
    return synthetic_root(64, 1)  # grefcoco val: enough samples to be interrupted in the middle


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_evaluation_interrupted(signum, eval_root, tmp_path):
    """Interrupted while evaluating: no report, no predictions file, no temporary file."""
    out = tmp_path / "out"
    out.mkdir()
    argv = ["evaluation.cli", "--dataset", "grefcoco", "--split", "val", "--data-root", eval_root, "--batch-size",
            "1", "--no-progress", "-o", str(out / "r.json"), "--save-predictions", str(out / "p.jsonl")]
    status, lines = interrupt(argv, "grefcoco/val: ", signum, tmp_path)
    assert_interrupted("instancevg-eval", status, lines, signum)
    assert list(out.iterdir()) == []


class FakeTensorRT:
    """Just enough of TensorRT's Python API for engines.build.build_engine: the builder asks the progress
    monitor after each of its steps, as TensorRT does, and a signal arrives at ``signal_at``."""

    def __init__(self, signal_at: int | None):
        import types

        class IProgressMonitor:
            def __init__(self):
                pass

        self.module = mock.MagicMock(__version__="10.14.1", IProgressMonitor=IProgressMonitor)
        self.module.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=0)
        builder = self.module.Builder.return_value
        self.config = builder.create_builder_config.return_value
        self.module.OnnxParser.return_value.parse_from_file.return_value = True
        self.steps = []

        def build(network, config):
            for step in range(5):
                if step == signal_at:
                    os.kill(os.getpid(), signal.SIGTERM)
                if not config.progress_monitor.step_complete("building", step):
                    return None  # cancelled
                self.steps.append(step)
            return b"serialized engine"

        builder.build_serialized_network.side_effect = build


@pytest.mark.parametrize("signal_at", [None, 2])
def test_engine_build_cancelled_by_a_signal(signal_at, tmp_path, monkeypatch, capsys):
    """SIGTERM during a build: TensorRT's progress monitor cancels it, the command prints one line and exits
    143, and no engine, sidecar or temporary file is left. Without the signal the same build writes both."""
    import engines.build

    fake = FakeTensorRT(signal_at)
    monkeypatch.setitem(sys.modules, "tensorrt", fake.module)
    monkeypatch.setattr(engines.build, "check_plugin_library", lambda path, version: None)
    graph = tensorrt_graph(tmp_path)
    (tmp_path / TENSORRT_LIBRARY).write_bytes(b"\x7fELF")
    rc = importlib.import_module(MODULES["instancevg-build-engine"]).main([str(graph), "--plugins", str(tmp_path)])
    captured = capsys.readouterr()
    names = sorted(p.name for p in tmp_path.iterdir())
    if signal_at is None:
        assert rc == 0 and fake.steps == [0, 1, 2, 3, 4]
        assert names == [TENSORRT_LIBRARY, "model.engine", "model.engine.json", "model.json", "model.onnx"]
        assert (tmp_path / "model.engine").read_bytes() == b"serialized engine"
        return
    assert rc == 143 and fake.steps == [0, 1]  # cancelled at the step the signal arrived in
    assert captured.err == ("instancevg-build-engine: terminated (SIGTERM); temporary files removed, nothing "
                            "half-written left\n")
    assert names == [TENSORRT_LIBRARY, "model.json", "model.onnx"]
    assert re.search(r"building .*model.engine", captured.out)
