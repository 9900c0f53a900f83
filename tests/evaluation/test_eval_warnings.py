"""instancevg-eval's token-budget warning: one plain line per run on stderr, without Python's source line."""
import pytest

from evaluation.cli import main


@pytest.fixture
def data_root(synthetic_root):
    return synthetic_root(24, 3)


def test_token_budget_warning_is_printed_once_per_run(data_root, tmp_path, capsys):
    # refcoco has three evaluation splits, all officially evaluated with 20 tokens; tiny encodes 16
    args = ["--dataset", "refcoco", "--data-root", data_root, "--random-weights", "--no-progress",
            "--max-samples", "2", "-o", str(tmp_path / "report.json")]
    assert main(args) == 0
    err = capsys.readouterr().err.splitlines()
    budget = [line for line in err if "token" in line and "budget" in line]
    assert budget == ["warning: config 'tiny' encodes 16 tokens, but the official evaluation uses other budgets: "
                      "refcoco with 20"]
    assert not any("warnings.warn" in line or "cli.py:" in line or "Warning:" in line for line in err), err
    assert main(args + ["--dataset", "grefcoco", "--split", "val"]) == 0  # another run in this process: reported
    assert [line for line in capsys.readouterr().err.splitlines() if "budget" in line] == [
        "warning: config 'tiny' encodes 16 tokens, but the official evaluation uses other budgets: grefcoco with 50"]
