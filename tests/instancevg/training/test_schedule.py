"""The official MultiStepLRWarmUp schedule, stepped per epoch, and the optimiser's parameter groups."""
import pytest
import torch

from instancevg.training.schedule import OFFICIAL_SCHEDULES, WarmUpStepFactor, multistep_lr_warmup
from instancevg.training.trainer import TrainConfig, build_optimizer

from .conftest import tiny_model


def factors(epochs, warmup, decay):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=1.0)
    scheduler = multistep_lr_warmup(optimizer, warmup, decay)
    out = []
    for _ in range(epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_grefcoco_schedule_is_official():
    epochs, warmup, decay = OFFICIAL_SCHEDULES["grefcoco"]
    assert factors(epochs, warmup, decay) == pytest.approx([0.5, 1, 1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1])


def test_refcoco_schedule_is_official():
    epochs, warmup, decay = OFFICIAL_SCHEDULES["refcoco"]
    assert factors(epochs, warmup, decay) == pytest.approx([0.25, 0.5, 0.75] + [1] * 11 + [0.1] * 6)


def test_several_decay_steps_multiply():
    assert [WarmUpStepFactor(0, (2, 4))(e) for e in range(5)] == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])


def test_scheduler_state_round_trips():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=1.0)
    scheduler = multistep_lr_warmup(optimizer, 1, (3,))
    optimizer.step()
    scheduler.step()
    state = scheduler.state_dict()
    optimizer2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler2 = multistep_lr_warmup(optimizer2, 1, (3,))
    optimizer2.load_state_dict(optimizer.state_dict())
    scheduler2.load_state_dict(state)
    for _ in range(3):
        optimizer.step(), scheduler.step(), optimizer2.step(), scheduler2.step()
        assert optimizer.param_groups[0]["lr"] == optimizer2.param_groups[0]["lr"]


def test_two_learning_rate_groups():
    model = tiny_model()
    optimizer = build_optimizer(model, TrainConfig(lr=5e-4))
    encoder, rest = optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert encoder["lr"] == pytest.approx(5e-5) and rest["lr"] == pytest.approx(5e-4)
    assert all("vis_enc" in names[id(p)] for p in encoder["params"]) and encoder["params"]
    assert all("vis_enc" not in names[id(p)] for p in rest["params"]) and rest["params"]
    assert len(encoder["params"]) + len(rest["params"]) == len(list(model.parameters()))
    assert optimizer.defaults["amsgrad"] and optimizer.defaults["betas"] == (0.9, 0.98)
    assert optimizer.defaults["eps"] == 1e-9 and optimizer.defaults["weight_decay"] == 0
    assert build_optimizer(model, TrainConfig(lr=1e-3, lr_vis_enc=2e-4)).param_groups[0]["lr"] == 2e-4
