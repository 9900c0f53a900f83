"""Model structure (official key inventories), determinism, input validation."""
import json

import pytest
import torch

from instancevg.config import PRESETS, get_config
from instancevg.model import build_model
from instancevg.structures import RAW_OUTPUT_NAMES

from ..golden import DATA


def meta_state_shapes(name: str) -> dict[str, list[int]]:
    with torch.device("meta"):  # shapes only: no memory for gres-large's 686 M parameters
        model = build_model(get_config(name))
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("config,inventory", [("gres-base", "gres_base"), ("gres-large", "gres_large"),
                                              ("refcoco-base", "refcoco_base")])
def test_state_dict_equals_official_inventory(config, inventory):
    official = json.loads((DATA / "official" / f"state_dict_{inventory}.json").read_text())["keys"]
    ours = meta_state_shapes(config)
    assert [k for k in official if k not in ours] == []
    assert [k for k in ours if k not in official] == []
    assert {k: v for k, v in ours.items() if official[k] != v} == {}
    assert list(ours) == list(official)  # same order as the official model.state_dict()


def test_unique_parameter_count_of_gres_base():
    with torch.device("meta"):
        model = build_model(get_config("gres-base"))
    params = dict(model.named_parameters())  # shared heads counted once
    # inventory notes: 234,606,048 state-dict elements - 266,252 in the .1/.2 head copies - 3,080 in buffers
    assert sum(p.numel() for p in params.values()) == 234_336_716
    assert sum(p.numel() for k, p in params.items() if k.startswith("vis_enc.")) == 221_144_064


def tiny_inputs(cfg, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, cfg.image_size, cfg.image_size, generator=g)
    ids = torch.randint(4, 300, (batch, cfg.max_tokens), generator=g)
    pad = torch.zeros(batch, cfg.max_tokens, dtype=torch.bool)
    pad[0, 4:] = True  # fewer valid tokens than queries: the in-order branch of the text filter
    pad[1, 12:] = True
    ids[pad] = 1
    return image, ids, pad


def test_tiny_forward_shapes_and_determinism():
    cfg = get_config("tiny")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = tiny_inputs(cfg)
    with torch.no_grad():
        a, b = model(*inputs), model(*inputs)
    B, N, m = 2, cfg.num_queries, cfg.mask_size
    expected = {"class_logits": (B, N, 2), "boxes": (B, N, 4), "points": (B, N, 2),
                "instance_mask_logits": (B, N, m, m), "global_mask_logits": (B, 1, m, m), "exist_logits": (B, 2)}
    for name in RAW_OUTPUT_NAMES:
        assert tuple(getattr(a, name).shape) == expected[name], name
        assert torch.equal(getattr(a, name), getattr(b, name)), f"{name} is not deterministic"
    assert ((a.points > 0) & (a.points < 1)).all() and ((a.boxes >= 0) & (a.boxes <= 1)).all()


@pytest.mark.slow
def test_gres_base_forward_runs_on_cpu():
    cfg = get_config("gres-base")
    model = build_model(cfg).eval()
    image = torch.randn(1, 3, 320, 320)
    ids = torch.ones(1, 50, dtype=torch.long)
    ids[0, :5] = torch.tensor([0, 100, 200, 300, 2])
    with torch.no_grad():
        out = model(image, ids, ids == 1)
    assert out.instance_mask_logits.shape == (1, 10, 80, 80) and out.global_mask_logits.shape == (1, 1, 80, 80)
    assert out.class_logits.shape == (1, 10, 2) and out.exist_logits.shape == (1, 2)


@pytest.mark.parametrize("change,message", [
    (lambda i, t, p: (i[:, :, :64], t, p), r"image must be \[B, 3, 128, 128\]"),
    (lambda i, t, p: (i.to(torch.uint8), t, p), "image must be a float tensor"),
    (lambda i, t, p: (i, t[:, :10], p), r"text_ids must be \[2, 16\] \(max_tokens 16"),
    (lambda i, t, p: (i, t.float(), p), "text_ids must be int32 or int64"),
    (lambda i, t, p: (i, t, p.long()), "text_pad_mask must be bool"),
])
def test_bad_inputs_name_the_expected_value(change, message):
    cfg = get_config("tiny")
    model = build_model(cfg).eval()
    with pytest.raises(ValueError, match=message):
        model(*change(*tiny_inputs(cfg)))


def test_presets():
    assert set(PRESETS) == {"gres-base", "gres-large", "refcoco-base", "refcoco-large", "tiny"}
    assert (get_config("gres-large").num_queries, get_config("gres-large").max_tokens) == (10, 50)
    assert (get_config("refcoco-large").num_queries, get_config("refcoco-large").max_tokens) == (1, 20)
    assert get_config("refcoco-base").loss.neg_mask == 0.0 and get_config("gres-base").loss.neg_mask == 0.2
    assert get_config("gres-large").encoder.drop_path_rate == 0.0  # the official large config's typo
    with pytest.raises(ValueError, match="unknown config 'gres'; expected one of"):
        get_config("gres")
