"""The trainer: optimisation lowers the loss on a fixed batch, exact resume, checkpoints and logs, and
clear errors for bad input before any training starts."""
import json

import pytest
import torch

from instancevg.checkpoint import load_checkpoint, read_file
from evaluation.train_cli import main as train_main
from instancevg.training.data import collate
from instancevg.training.losses import InstanceVGCriterion
from instancevg.training.trainer import TrainConfig, Trainer, flatten_metrics, seed_everything

from .conftest import tiny_model


def eval_loss(model, batch):
    """Total loss in eval mode (no dropout, BatchNorm running statistics): deterministic."""
    model.eval()
    with torch.no_grad():
        out = model.forward_all(batch["image"], batch["text_ids"], batch["text_pad_mask"])
        return InstanceVGCriterion(model.cfg.loss)(out, batch["targets"]).total.item()


def optimise_fixed_batch(train_set, steps=6, seed=0):
    seed_everything(seed)
    model = tiny_model(seed)
    batch = collate([train_set[i] for i in range(4)])
    trainer = Trainer(model, train_set, TrainConfig(lr=1e-3, lr_vis_enc=1e-3, progress=False), "unused", "cpu")
    before = eval_loss(model, batch)
    model.train()
    for _ in range(steps):
        trainer.train_step(batch)
    return before, eval_loss(model, batch)


def test_steps_on_a_fixed_batch_lower_the_loss(make_train_set, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_set = make_train_set(8)
    before, after = optimise_fixed_batch(train_set)
    assert after < before * 0.9, (before, after)
    assert optimise_fixed_batch(train_set) == (before, after)  # deterministic with the seed


def run_epochs(train_set, work_dir, epochs, resume=None, evaluate_fn=None):
    seed_everything(6666)
    cfg = TrainConfig(epochs=epochs, batch_size=2, lr=1e-3, warmup_epochs=1, decay_steps=(2,), progress=False,
                      log_interval=1, best_metrics=(("det_best.pth", "grec/F1score"),))
    trainer = Trainer(tiny_model(6666), train_set, cfg, work_dir, "cpu", evaluate_fn)
    if resume:
        trainer.resume(resume)
    trainer.fit()
    return trainer


def fake_evaluate(scores):
    """An evaluation callback returning the next of ``scores`` as grec/F1score."""
    scores = list(scores)

    def evaluate(model):
        assert not model.training
        return {"grec": {"F1score": scores.pop(0), "N-acc": 0.0}}
    return evaluate


def test_resume_equals_an_uninterrupted_run(make_train_set, tmp_path):
    train_set = make_train_set(4)  # 2 steps per epoch
    straight = run_epochs(train_set, tmp_path / "straight", 3, evaluate_fn=fake_evaluate([10, 30, 20]))
    run_epochs(train_set, tmp_path / "split", 2, evaluate_fn=fake_evaluate([10, 30]))
    resumed = run_epochs(train_set, tmp_path / "split", 3, resume=tmp_path / "split" / "latest.pth",
                         evaluate_fn=fake_evaluate([20]))
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    assert straight.global_step == resumed.global_step == 6
    assert straight.optimizer.param_groups[1]["lr"] == resumed.optimizer.param_groups[1]["lr"]
    for run in (straight, resumed):
        assert run.best == {"grec/F1score": 30.0}


def test_checkpoints_and_log(make_train_set, tmp_path):
    work = tmp_path / "run"
    run_epochs(make_train_set(4), work, 2, evaluate_fn=fake_evaluate([10, 5]))
    assert sorted(p.name for p in work.iterdir()) == ["det_best.pth", "latest.pth", "metrics.jsonl",
                                                       "train_config.json"]
    latest, best = read_file(work / "latest.pth"), read_file(work / "det_best.pth")
    for key in ("state_dict", "optimizer", "scheduler", "lr", "epoch"):  # official format
        assert key in latest
    assert latest["epoch"] == 1 and best["epoch"] == 0 and best["grec/F1score"] == 10.0
    assert latest["best_grec/F1score"] == 10.0
    load_checkpoint(tiny_model(), work / "latest.pth")  # loads strictly into a fresh model
    records = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["event"] == "train"]
    epochs = [r for r in records if r["event"] == "epoch"]
    assert len(train) == 4 and len(epochs) == 2
    for name in ("loss", "loss_det", "loss_mask", "loss_label_nt", "loss_class", "loss_bbox_0", "part_neg_dice",
                 "attn_bce", "exist_ce"):
        assert name in train[0]
    assert epochs[1]["eval"]["grec"]["F1score"] == 5


def test_undefined_metrics_never_become_best_values():
    # an undefined metric (None: N-acc of a split without no-target samples) is left out of the flat
    # metrics, so ``save`` neither compares it nor writes it as a checkpoint key
    flat = flatten_metrics({"grec": {"F1score": 40.0, "N-acc": None, "samples": 3}, "loss": 0.5})
    assert flat == {"grec/F1score": 40.0, "grec/samples": 3.0, "loss": 0.5}


# ------------------------------------------------------------------ CLI: clear errors before training
def cli(train_root, work_dir, *extra):
    return ["--config", "tiny", "--data-root", train_root, "--dataset", "grefcoco", "--work-dir", str(work_dir),
            "--epochs", "1", "--batch-size", "2", "--train-limit", "2", "--workers", "0", "--eval-split", "none",
            "--no-progress", *extra]


def test_cli_trains_and_writes_latest(train_root, tmp_path):
    assert train_main(cli(train_root, tmp_path / "w")) == 0
    assert (tmp_path / "w" / "latest.pth").is_file()


def test_unknown_dataset_is_refused(train_root, tmp_path, capsys):
    args = cli(train_root, tmp_path / "w")
    args[args.index("grefcoco")] = "nosuchset"
    assert train_main(args) == 2
    assert "unknown benchmark 'nosuchset'" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_unwritable_work_dir_is_refused(train_root, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert train_main(cli(train_root, blocker / "run")) == 2
    err = capsys.readouterr().err
    assert err == f"instancevg-train: error: --work-dir {blocker / 'run'}: cannot write in {blocker}: not a folder\n"


def test_pretrained_file_that_does_not_fit_is_refused(train_root, tmp_path, capsys):
    model = tiny_model()
    weights = {k.removeprefix("vis_enc."): v for k, v in model.state_dict().items() if k.startswith("vis_enc.")}
    weights["beit3.text_embed.weight"] = torch.zeros(7, 3)  # wrong shape
    path = tmp_path / "beit3.pth"
    torch.save({"model": weights}, path)
    assert train_main(cli(train_root, tmp_path / "w", "--pretrained-beit3", str(path))) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "beit3.text_embed.weight" in err
    assert not (tmp_path / "w" / "metrics.jsonl").exists()  # nothing trained


def test_missing_files_are_refused(train_root, tmp_path, capsys):
    assert train_main(cli(train_root, tmp_path / "w", "--resume", str(tmp_path / "none.pth"))) == 2
    assert "--resume" in capsys.readouterr().err
    assert train_main(cli(train_root, tmp_path / "w", "--tokenizer", str(tmp_path / "no.spm"))) == 2
    assert "tokenizer file not found" in capsys.readouterr().err


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
