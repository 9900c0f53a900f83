"""Checkpoint I/O: round trip, official-style files, BEiT-3 pretrained weights, refusals."""
import pytest
import torch
import torch.nn.functional as F

from instancevg.checkpoint import (CheckpointMismatchError, interpolate_position_table, load_beit3_pretrained,
                                   load_checkpoint, save_checkpoint)
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
