"""Checkpoint I/O: round trip, official-style files, BEiT-3 pretrained weights, refusals, safe loading."""
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from instancevg.checkpoint import (CheckpointFormatError, CheckpointMismatchError, UnsafeCheckpointError,
                                   interpolate_position_table, load_beit3_pretrained, load_checkpoint, read_file,
                                   save_checkpoint)
from instancevg.config import get_config
from instancevg.model import build_model


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(1)
    return build_model(get_config("tiny")).eval()


def test_save_load_round_trip_is_exact(tiny, tmp_path):
    save_checkpoint(tiny, tmp_path / "ckpt.pth", epoch=3, optimizer={"state": {}})
    saved = torch.load(tmp_path / "ckpt.pth", weights_only=True)
    assert set(saved) == {"state_dict", "epoch", "optimizer"} and saved["epoch"] == 3
    torch.manual_seed(2)
    other = build_model(get_config("tiny"))
    extra = load_checkpoint(other, tmp_path / "ckpt.pth")
    assert extra["epoch"] == 3
    for (k, a), (_, b) in zip(tiny.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob("*.tmp")), "temporary file left behind"


def test_official_style_checkpoint_with_module_prefix_loads(tiny, tmp_path):
    g = torch.Generator().manual_seed(5)
    state = {"module." + k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v
             for k, v in tiny.state_dict().items()}
    # the three head copies differ in an official-style file: the last one takes effect
    torch.save({"state_dict": state, "optimizer": {}, "scheduler": {}, "lr": 5e-4, "epoch": 9, "F1score": 0.5},
               tmp_path / "official.pth")
    model = build_model(get_config("tiny"))
    load_checkpoint(model, tmp_path / "official.pth")
    assert torch.equal(model.head.class_embed[0].weight, state["module.head.class_embed.2.weight"])
    assert torch.equal(model.vis_enc.beit3.text_embed.weight, state["module.vis_enc.beit3.text_embed.weight"])


def test_wrong_config_is_refused_with_the_key_report(tmp_path):
    with torch.device("meta"):
        big = build_model(get_config("refcoco-base"))
    state = {k: torch.zeros(v.shape) for k, v in big.state_dict().items() if not k.startswith("vis_enc.")}
    state["head.extra.weight"] = torch.zeros(2)
    torch.save({"state_dict": state}, tmp_path / "refcoco.pth")
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(build_model(get_config("tiny")), tmp_path / "refcoco.pth")
    message = str(info.value)
    assert "refcoco.pth does not fit the model" in message
    assert "missing keys: vis_enc.beit3.text_embed.weight" in message
    assert "unexpected keys: head.extra.weight" in message
    assert "head.lan_embedding.weight [256, 768] vs [64, 64]" in info.value.mismatched
    assert "mis-shaped keys (checkpoint vs model)" in message and "... and" in message
    assert info.value.missing and info.value.mismatched


def test_missing_file_and_non_dict_are_refused(tmp_path):
    model = build_model(get_config("tiny"))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint(model, tmp_path / "nope.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="expected a dict"):
        load_checkpoint(model, tmp_path / "list.pth")


def test_position_table_interpolation():
    table = torch.randn(3 + 14 * 14, 8)
    out = interpolate_position_table(table, 20)
    assert out.shape == (403, 8)
    assert torch.equal(out[:3], table[:3])
    grid = table[3:].reshape(1, 14, 14, 8).permute(0, 3, 1, 2)
    ref = F.interpolate(grid, size=(20, 20), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(400, 8)
    torch.testing.assert_close(out[3:], ref, rtol=0, atol=0)
    const = torch.ones(3 + 49, 4)
    assert torch.allclose(interpolate_position_table(const, 5)[3:], torch.ones(25, 4), atol=1e-6)


def test_beit3_pretrained_weights_load_with_interpolation(tiny, tmp_path):
    enc = tiny.vis_enc.state_dict()
    state = {k: torch.randn(v.shape) for k, v in enc.items()}  # keys "beit3.*" as in official files
    state["beit3.encoder.embed_positions.A.weight"] = torch.randn(3 + 4 * 4, 64)  # a 64-px (4x4) grid
    state["logit_scale"] = torch.tensor(1.0)  # retrieval-head leftovers are ignored
    torch.save({"model": state}, tmp_path / "beit3_tiny.pth")
    model = build_model(get_config("tiny"))
    ignored = load_beit3_pretrained(model, tmp_path / "beit3_tiny.pth")
    assert ignored == ["logit_scale"]
    table = model.vis_enc.beit3.encoder.embed_positions.A.weight
    assert table.shape == (3 + 8 * 8, 64)
    assert torch.equal(table[:3], state["beit3.encoder.embed_positions.A.weight"][:3])
    assert torch.equal(model.vis_enc.beit3.text_embed.weight, state["beit3.text_embed.weight"])
    del state["beit3.encoder.layers.0.ffn.A.fc1.weight"]
    torch.save({"model": state}, tmp_path / "broken.pth")
    with pytest.raises(CheckpointMismatchError, match="missing keys: beit3.encoder.layers.0.ffn.A.fc1.weight"):
        load_beit3_pretrained(model, tmp_path / "broken.pth")


# ---------------------------------------------------------------------------------------- safe loading
class RunsCode:
    """Unpickling this object runs ``exec(source)``: what a malicious checkpoint would do."""

    def __init__(self, source: str):
        self.source = source

    def __reduce__(self):
        return exec, (self.source,)


def malicious_checkpoint(model, path, marker):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "meta": RunsCode(f"open({str(marker)!r}, 'w').write('ran')")}, path)
    return path


def test_a_checkpoint_that_runs_code_is_refused_without_the_opt_in(tiny, tmp_path):
    marker = tmp_path / "code-ran"
    path = malicious_checkpoint(tiny, tmp_path / "evil.pth", marker)
    model = build_model(get_config("tiny"))
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(model, path)
    assert not marker.exists(), "unpickling ran code without the opt-in"
    message = str(info.value)
    assert str(path) in message and "builtins.exec" in message and info.value.types == ["builtins.exec"]
    assert "--trust-checkpoint" in message and "trusted=True" in message
    assert isinstance(info.value, ValueError)
    for loader in (lambda: read_file(path), lambda: load_beit3_pretrained(model, path)):
        with pytest.raises(UnsafeCheckpointError):
            loader()
    assert not marker.exists()
    # the opt-in does unpickle it fully: the payload runs (so the assertions above can fail)
    extra = load_checkpoint(model, path, trusted=True)
    assert marker.read_text() == "ran" and extra["meta"] is None
    assert torch.serialization.get_safe_globals() == [] or all(
        "numpy" not in str(g) for g in torch.serialization.get_safe_globals()), "allowlist leaked out of the load"


def with_numpy1_names(src, dst):
    """Rewrite a torch file as numpy 1.x would have pickled it (numpy.core instead of numpy._core)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray\nscalar" in data
                data = data.replace(b"numpy._core.multiarray\nscalar", b"numpy.core.multiarray\nscalar")
            zout.writestr(item, data)
    return dst


@pytest.mark.parametrize("numpy1", [False, True], ids=["numpy2-names", "numpy1-names"])
def test_official_layout_with_numpy_metrics_loads_safely(tiny, tmp_path, numpy1):
    # the official training loop saves {"state_dict" (DDP prefix), optimizer, scheduler, lr, epoch, metrics,
    # best metrics}; metric values computed from numpy sums are numpy scalars
    model = build_model(get_config("tiny"))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, amsgrad=True)
    for param in model.parameters():
        param.grad = torch.full_like(param, 1e-3)
    optimizer.step()  # optimizer state (exp_avg, max_exp_avg_sq, step) as in a real file
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [7], 0.1)
    metrics = {"F1score": np.float64(54.09), "Nacc_rec": np.float32(99.5), "gIoU": 71.37, "cIoU": np.float64(62.83),
               "best_F1score": np.float64(50.1), "best_gIoU": np.float32(70.0), "best_cIoU": np.int64(0),
               "num": np.int32(7), "flag": np.bool_(True), "half": np.float16(0.5)}
    state = {"module." + k: v for k, v in tiny.state_dict().items()}
    path = tmp_path / "official.pth"
    torch.save({"state_dict": state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "lr": 5e-4, "epoch": 9, **metrics}, path)
    if numpy1:
        path = with_numpy1_names(path, tmp_path / "official_numpy1.pth")
    extra = load_checkpoint(model, path)  # no opt-in needed
    for key, value in metrics.items():
        assert type(extra[key]) is type(value) and extra[key] == value, key
    assert extra["epoch"] == 9 and extra["scheduler"]["milestones"] == {7: 1}
    assert torch.equal(model.head.class_embed[0].weight, state["module.head.class_embed.2.weight"])
    assert all("numpy" not in str(g) for g in torch.serialization.get_safe_globals()), "allowlist leaked"


def test_numpy_arrays_are_not_on_the_allowlist(tmp_path):
    torch.save({"state_dict": {}, "PR_list": np.array([1.0, 2.0])}, tmp_path / "array.pth")
    with pytest.raises(UnsafeCheckpointError, match="numpy.ndarray"):
        read_file(tmp_path / "array.pth")


def bad_files(folder, tiny):
    good = folder / "good.pth"
    save_checkpoint(tiny, good)
    data = good.read_bytes()
    with zipfile.ZipFile(folder / "other.zip", "w") as z:
        z.writestr("readme.txt", "not a checkpoint")
    files = {"empty.pth": b"", "random.pth": np.random.default_rng(0).bytes(4096), "text.pth": b"hello world\n",
             "truncated.pth": data[: len(data) // 2], "cut-tail.pth": data[:-40],
             "zip.pth": (folder / "other.zip").read_bytes()}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    torch.save([1, 2], folder / "list.pth")
    return sorted(files) + ["list.pth"]


def test_files_that_are_not_checkpoints_give_one_clear_error(tiny, tmp_path):
    for name in bad_files(tmp_path, tiny):
        with pytest.raises(CheckpointFormatError) as info:
            read_file(tmp_path / name)
        message = str(info.value)
        assert message.startswith(f"{tmp_path / name}: ") and "expected" in message, message
        assert isinstance(info.value, ValueError) and "\n" not in message


@pytest.mark.parametrize("name", ["empty.pth", "truncated.pth", "zip.pth", "random.pth"])
def test_predict_and_export_refuse_bad_files_with_exit_2(tiny, tmp_path, name, capsys):
    from export.cli import main as export_main
    from instancevg.cli.predict import main as predict_main

    bad_files(tmp_path, tiny)
    bad = tmp_path / name
    assert predict_main(["--checkpoint", str(bad), "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("instancevg-predict: error: ") and str(bad) in err and "Traceback" not in err, err
    assert export_main(["--checkpoint", str(bad), "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("instancevg-export: error: --checkpoint ") and str(bad) in err and "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "p.png").exists()


def test_predict_cli_refuses_code_and_runs_it_only_with_trust_checkpoint(tiny, tmp_path, capsys):
    from instancevg.cli.predict import main as predict_main

    marker = tmp_path / "code-ran"
    path = malicious_checkpoint(tiny, tmp_path / "evil.pth", marker)
    assert predict_main(["--checkpoint", str(path), "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "p.json").exists()
    assert err.startswith("instancevg-predict: error: ") and err.count("\n") == 1, err
    assert "builtins.exec" in err and "--trust-checkpoint" in err and "Traceback" not in err
    assert predict_main(["--checkpoint", str(path), "--trust-checkpoint", "-o", str(tmp_path / "p")]) == 0
    assert marker.read_text() == "ran" and (tmp_path / "p.json").exists()
