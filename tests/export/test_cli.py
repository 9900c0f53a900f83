"""instancevg-export end to end (portable, opset 19, dynamic batch, a checkpoint file) and its refusals."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export.cli import main
from export.exporter import ExportError, resolve_checkpoint
from export.verify import sample_inputs
from instancevg import bundled
from instancevg.checkpoint import file_digest, save_checkpoint
from instancevg.config import IMAGE_MEAN, get_config
from instancevg.inference import load_model
from instancevg.structures import RAW_OUTPUT_NAMES

TINY = get_config("tiny")


@pytest.fixture(scope="module")
def cli_export(tmp_path_factory):
    """portable fp32, opset 19, dynamic batch 1:2:3, from a checkpoint file (not --random-weights)."""
    folder = tmp_path_factory.mktemp("cli")
    with pytest.warns(UserWarning, match="RANDOM"):
        model = load_model(TINY, None, seed=3)
    save_checkpoint(model, folder / "tiny_seed3.pth", epoch=0)
    out = folder / "export" / "model.onnx"
    argv = ["--checkpoint", str(folder / "tiny_seed3.pth"), "--config", "tiny", "--target", "portable",
            "--dynamic-batch", "1:2:3", "--opset", "19", "-o", str(out)]
    return main(argv), out, folder / "tiny_seed3.pth", model


def test_cli_exports_verifies_and_reports(cli_export, capsys):
    rc, out, _, _ = cli_export
    assert rc == 0
    assert out.is_file() and out.with_suffix(".json").is_file()
    model = onnx.load(out)
    assert {o.domain: o.version for o in model.opset_import}[""] == 19
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)


def test_dynamic_batch_runs_at_1_and_3_with_the_same_per_sample_results(cli_export):
    _, out, _, model = cli_export
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    inputs = sample_inputs(TINY, 3, seed=7)
    names = [o.name for o in session.get_outputs()]
    assert names == list(RAW_OUTPUT_NAMES)
    batch3 = session.run(names, inputs)
    for b in range(3):
        single = session.run(names, {k: v[b:b + 1] for k, v in inputs.items()})
        for name, whole, one in zip(names, batch3, single):
            np.testing.assert_allclose(one[0], whole[b], rtol=1e-5, atol=1e-5, err_msg=f"{name}[{b}]")
    with torch.no_grad():
        ref = model(*(torch.from_numpy(inputs[k]) for k in ("image", "text_ids", "text_pad_mask")))
    np.testing.assert_allclose(batch3[0], ref.class_logits.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(batch3[2], ref.points.numpy())


def test_sidecar_content(cli_export):
    _, out, ckpt, _ = cli_export
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["format"] == "instancevg-onnx" and meta["model"] == "model.onnx"
    assert meta["target"] == "portable" and meta["precision"] == "fp32" and meta["opset"] == 19
    assert meta["ir_version"] <= 10
    assert meta["batch"] == {"dynamic": True, "min": 1, "opt": 2, "max": 3}
    assert meta["inputs"] == [
        {"name": "image", "shape": ["batch", 3, 128, 128], "dtype": "float32"},
        {"name": "text_ids", "shape": ["batch", 16], "dtype": "int64"},
        {"name": "text_pad_mask", "shape": ["batch", 16], "dtype": "bool"}]
    outputs = {o["name"]: o for o in meta["outputs"]}
    assert list(outputs) == list(RAW_OUTPUT_NAMES)
    assert outputs["instance_mask_logits"]["shape"] == ["batch", 5, 32, 32]
    assert outputs["exist_logits"] == {"name": "exist_logits", "shape": ["batch", 2], "dtype": "float32"}
    assert meta["preprocessing"]["mean"] == list(IMAGE_MEAN)
    assert meta["preprocessing"]["resize"]["keep_aspect_ratio"] is False
    assert meta["tokenizer"]["max_tokens"] == 16 and meta["tokenizer"]["file"] == "tiny.spm"
    assert meta["postprocessing"]["thr_q"] == 0.7 and meta["postprocessing"]["out_mask"] == "merge"
    assert meta["plugins"] is None  # portable
    assert meta["config_name"] == "tiny" and meta["config"] == json.loads(json.dumps(TINY.to_dict()))
    assert meta["checkpoint"] == {"file": "tiny_seed3.pth", "sha256": file_digest(ckpt), "random_weights": False}
    assert meta["verification"]["passed"] is True
    assert meta["verification"]["tolerances"]["points"] == {"atol": 0.0, "rtol": 0.0}
    assert set(meta["verification"]["outputs"]) >= set(RAW_OUTPUT_NAMES)
    assert {"torch", "onnx", "onnxruntime", "onnxscript", "instancevg"} <= set(meta["tools"])
    assert meta["summary"]["parameter_bytes"]["total"] > 0


def test_tensorrt_sidecar_lists_the_plugins(traced, tmp_path):
    from export import finish_export

    result = finish_export(traced("tensorrt-fp16"), tmp_path / "m.onnx", log=None)
    plugins = result.sidecar["plugins"]
    assert plugins["namespace"] == "instancevg" and plugins["library"] == "libinstancevg_plugins.so"
    nodes = {n["name"]: n for n in plugins["nodes"]}
    assert nodes["MSDeformAttn"]["count"] == 3 and nodes["MSDeformAttn"]["version"] == "1"
    assert nodes["PointSelect"]["fields"] == {"num_points": 5, "w_dist": 0.003}
    assert result.sidecar["fp16_policy"]["ms_deform_attn_io"] == "float16"
    # trtexec: --stronglyTyped on TensorRT 10 only, no precision flags, the plugin library
    commands = result.commands
    trt10 = commands["TensorRT 10, dynamic plugin loading"]
    trt11 = commands["TensorRT 11, dynamic plugin loading"]
    assert "--stronglyTyped" in trt10 and "--stronglyTyped" not in trt11
    assert "--dynamicPlugins=libinstancevg_plugins.so" in trt11
    assert "--staticPlugins=libinstancevg_plugins_static.so" in commands["TensorRT 11, static plugin loading"]
    assert not any(flag in cmd for cmd in commands.values() for flag in ("--fp16", "--best", "--int8"))
    assert result.report.rstrip().endswith(commands["TensorRT 11, static plugin loading"])


# ------------------------------------------------------------------ refusals (no trace needed)
def run_cli(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own refusals (choices)
        rc = exc.code
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--config", "nope", "--random-weights"], "--config: invalid choice: 'nope'"),
    (["--random-weights", "--target", "portable", "--opset", "20"], "opset >= 20"),
    (["--random-weights", "--opset", "16"], "--opset must lie in 17..19"),
    (["--random-weights", "--fp16-io"], "--fp16-io needs --fp16"),
    (["--random-weights", "--dynamic-batch", "4:2:8"], "1 <= MIN <= OPT <= MAX"),
    (["--random-weights", "--dynamic-batch", "2:2:2"], "use --batch 2"),
    (["--random-weights", "--dynamic-batch", "1-8"], "MIN:OPT:MAX"),
    (["--checkpoint", "/nonexistent/ckpt.pth"], "file not found"),
])
def test_bad_arguments_are_refused_with_a_clear_error(argv, message, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    rc, err = run_cli(argv + ["-o", str(out)], capsys)
    assert rc == 2 and message in err
    assert list(tmp_path.iterdir()) == []


def test_opsets_17_to_19_are_accepted():
    from export import ExportOptions

    for opset in (17, 18, 19):
        for target in ("portable", "tensorrt"):
            assert ExportOptions(target=target, opset=opset).opset == opset


def test_unwritable_output_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    rc, err = run_cli(["--random-weights", "-o", str(blocker / "m.onnx")], capsys)
    assert rc == 2 and f"cannot write in {blocker}: not a folder" in err
    rc, err = run_cli(["--random-weights", "-o", str(tmp_path)], capsys)
    assert rc == 2 and "is a folder" in err


def test_checkpoint_of_another_config_is_refused(tmp_path, capsys):
    with pytest.warns(UserWarning, match="RANDOM"):
        model = load_model(TINY, None)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("head.nt_embed")}
    state["head.query_generation.query_embed.weight"] = torch.zeros(10, 64)
    torch.save({"state_dict": state}, tmp_path / "other.pth")
    rc, err = run_cli(["--checkpoint", str(tmp_path / "other.pth"), "-o", str(tmp_path / "m.onnx")], capsys)
    assert rc == 2 and "does not fit config 'tiny'" in err
    assert "missing keys" in err and "head.nt_embed" in err and "mis-shaped" in err
    assert not (tmp_path / "m.onnx").exists()


def test_without_checkpoint_an_unbundled_config_is_refused(tmp_path, capsys):
    rc, err = run_cli(["--config", "gres-base", "-o", str(tmp_path / "m.onnx")], capsys)
    assert rc == 2 and "no --checkpoint given and none is bundled for config 'gres-base'" in err
    assert "--random-weights" in err
    rc, err = run_cli(["--config", "gres-base", "--random-weights", "--checkpoint", "x.pth",
                       "-o", str(tmp_path / "m.onnx")], capsys)
    assert rc == 2 and "not both" in err


def test_the_bundled_tiny_model_is_the_default_checkpoint():
    bundled_ckpt = bundled.default_checkpoint("tiny")
    if bundled_ckpt is None:
        with pytest.raises(ExportError, match="--random-weights"):
            resolve_checkpoint(TINY, None, random_weights=False)
    else:
        assert resolve_checkpoint(TINY, None, random_weights=False) == bundled_ckpt
    assert resolve_checkpoint(TINY, None, random_weights=True) is None
