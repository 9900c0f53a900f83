"""The parity report on hand-made results (no model runs): verdict first, one summary row per candidate
and split, undefined metrics as n/a / null, a FAILED report for an injected delta, the not-run section,
and an HTML page that is one valid document."""
import copy
import json

import pytest

from evaluation.parity import ParityResult
from evaluation.parity_report import NotRun, ParityReport, candidate_label
from evaluation.runner import SplitResult

from .html_check import check_document

REFERENCE = {"name": "pytorch", "device": "cpu", "config": "tiny", "checkpoint": "/x/tiny.pth"}
# gRefCOCO split without no-target samples: N-acc undefined (None) on both sides
GREFCOCO = {"grec": {"F1score": 50.0, "N-acc": None, "T-acc": 75.0, "samples": 4, "target_samples": 4,
                     "no_target_samples": 0},
            "gres": {"gIoU": 62.5, "cIoU": 58.25, "N-acc": None, "T-acc": 75.0, "Pr@0.7": 50.0, "Pr@0.8": 25.0,
                     "Pr@0.9": 0.0, "samples": 4, "target_samples": 4, "no_target_samples": 0}}
# Ref-ZOM split of no-target samples only: oIoU (the headline), mIoU and Pr@t undefined
REFZOM = {"refzom": {"oIoU": None, "mIoU": None, "Acc": 100.0, "Pr@0.5": None, "samples": 3, "target_samples": 0,
                     "no_target_samples": 3}}
REC = {"rec": {"Pr@0.5": 75.0, "Pr@0.9": 25.0, "samples": 4},
       "res": {"mIoU": 61.0, "oIoU": 64.5, "Pr@0.5": 75.0, "samples": 4}}
AGREEMENT = {"samples": 4, "mean_min_box_iou": 1.0, "min_box_iou": 1.0, "mean_mask_iou": 1.0, "min_mask_iou": 1.0,
             "points_identical": 1.0, "no_target_identical": 1.0, "selection_identical": 1.0, "max_score_diff": 0.0}
SPLITS = (("refcoco", "val", REC), ("grefcoco", "val", GREFCOCO), ("refzom", "test", REFZOM))


def parity(benchmark, split, metrics, precision, tolerance, change=None, agreement=None, worst=()):
    """A ParityResult whose candidate equals the reference except for ``change`` {(suite, metric): value}."""
    candidate_metrics = copy.deepcopy(metrics)
    for (suite, key), value in (change or {}).items():
        candidate_metrics[suite][key] = value
    samples = next(iter(metrics.values()))["samples"]
    backend = {"name": "onnxruntime", "precision": precision, "onnx": f"/m/tiny_portable_{precision}.onnx",
               "device": "cpu", "providers": ["CPUExecutionProvider"]}
    return ParityResult(SplitResult(benchmark, split, candidate_metrics, samples, backend=backend),
                        SplitResult(benchmark, split, metrics, samples, backend=REFERENCE), tolerance,
                        dict(AGREEMENT, samples=samples, **(agreement or {})), list(worst))


def two_candidates(fp16_change=None):
    fp32 = [parity(b, s, m, "fp32", 0.5) for b, s, m in SPLITS]
    worst = [{"sample_id": "12:7", "min_box_iou": 0.91, "mask_iou": 0.93, "points_identical": False,
              "no_target_identical": True, "selection_identical": True, "max_score_diff": 2e-3}]
    fp16 = [parity("refcoco", "val", REC, "fp16", 2.0, {("res", "mIoU"): 61.3},
                   {"points_identical": 0.75, "mean_mask_iou": 0.98, "min_mask_iou": 0.93}, worst),
            parity("grefcoco", "val", GREFCOCO, "fp16", 2.0, fp16_change),
            parity("refzom", "test", REFZOM, "fp16", 2.0)]
    return {"onnxruntime fp32": fp32, "onnxruntime fp16": fp16}


NOT_RUN = [NotRun("tensorrt fp32", "TensorRT's Python package is not installed"),
           NotRun("tensorrt fp16", "TensorRT's Python package is not installed")]


@pytest.fixture
def report():
    return ParityReport(two_candidates(), NOT_RUN, title="parity test")


def test_passed_report_opens_with_the_verdict_and_one_row_per_candidate_and_split(report):
    assert report.passed
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))  # strict JSON: no NaN / Infinity
    assert data["verdict"] == "PASSED" and data["tolerances"] == {"onnxruntime fp32": [0.5], "onnxruntime fp16": [2.0]}
    assert [(r["candidate"], r["benchmark"], r["split"]) for r in data["summary"]] == \
        [(c, b, s) for c in ("onnxruntime fp32", "onnxruntime fp16") for b, s, _ in SPLITS]
    markdown = report.markdown()
    lines = markdown.splitlines()
    assert lines[0] == "# parity test"
    assert lines[2].startswith("**PASSED**: every metric within tolerance in 6 split comparisons (2 candidates;") and "onnxruntime fp32 0.5 points" in \
        lines[2] and "onnxruntime fp16 2 points" in lines[2] and "not run: tensorrt fp32, tensorrt fp16" in lines[2]
    summary = markdown.split("## Summary")[1].split("## Details")[0]
    for label in ("onnxruntime fp32", "onnxruntime fp16"):
        for benchmark, split, _ in SPLITS:
            assert summary.count(f"| {label} | {benchmark}/{split} |") == 1
    # headline metrics (one per suite), largest delta with its metric, agreement
    fp16_refcoco = next(line for line in summary.splitlines() if line.startswith("| onnxruntime fp16 | refcoco/val"))
    assert "| Pr@0.5 / mIoU | 75.00 / 61.00 | 75.00 / 61.30 | +0.300 (res mIoU) | 2 |" in fp16_refcoco
    assert "| 75.0% |" in fp16_refcoco and fp16_refcoco.endswith("| ok |")
    assert data["summary"][3]["largest_delta"]["metric"] == "res mIoU"
    assert data["summary"][3]["largest_delta"]["delta"] == pytest.approx(0.3)
    # details with headings: identical splits in one line, the differing one in a table, worst samples
    details = markdown.split("## Details")[1]
    assert "### onnxruntime fp32 vs pytorch (tolerance 0.5 points)" in details
    assert "Identical on every metric in 3 of 3 splits" in details
    assert "refcoco/val: 1 of 5 metrics differ (4 identical)." in details and "| res mIoU | 61.00 | 61.30 | +0.300 |" in details
    assert "| refcoco/val | '12:7' | 0.9300 |" in details
    assert "#### Worst samples" in details and "No sample differs" in details  # fp32 has none
    # not run, with the reason
    not_run = markdown.split("## Not run")[1]
    assert "| tensorrt fp32 | TensorRT's Python package is not installed |" in not_run
    assert data["not_run"][0] == {"label": "tensorrt fp32", "reason": "TensorRT's Python package is not installed"}


def test_undefined_metrics_are_na_and_null_never_zero(report):
    data = json.loads(json.dumps(report.to_json()))
    grefcoco = data["candidates"]["onnxruntime fp32"]["splits"][1]
    assert grefcoco["candidate"]["metrics"]["gres"]["N-acc"] is None and grefcoco["deltas"]["gres"]["N-acc"] is None
    assert grefcoco["undefined"] == {"grec": {"N-acc": "both"}, "gres": {"N-acc": "both"}}
    assert data["summary"][1]["undefined"] == ["grec N-acc", "gres N-acc"]
    refzom_row = data["summary"][2]
    assert refzom_row["headline"] == [{"suite": "refzom", "metric": "oIoU", "reference": None, "candidate": None}]
    markdown = report.markdown()
    assert "| onnxruntime fp32 | refzom/test | 3 | oIoU | n/a | n/a | identical |" in markdown
    assert "- grefcoco/val gres N-acc (n/a on both: no_target_samples = 0)" in markdown
    assert "- refzom/test refzom oIoU (n/a on both: target_samples = 0)" in markdown
    assert "N-acc | 0.00" not in markdown and "oIoU | 0.00" not in markdown


def test_delta_beyond_tolerance_fails(capsys):
    report = ParityReport(two_candidates({("gres", "cIoU"): 61.0}), NOT_RUN)  # +2.75 > 2.0
    assert not report.passed
    data = report.to_json()
    assert data["verdict"] == "FAILED" and len(data["violations"]) == 1
    assert data["violations"][0].startswith("onnxruntime fp16: grefcoco/val gres cIoU: delta +2.750 exceeds 2.0")
    assert report.markdown().splitlines()[2].startswith("**FAILED**: 1 metric beyond tolerance in 1 of 6 split comparisons")
    row = next(line for line in report.markdown().splitlines() if line.startswith("| onnxruntime fp16 | grefcoco/val"))
    assert "+2.750 (gres cIoU)" in row and row.endswith("| FAILED |")
    page = report.html()
    assert '<p class="verdict fail"><strong>FAILED</strong>' in page and '<tr class="fail">' in page
    assert 'fill="#c62828"' in page  # the bar beyond the tolerance is red
    console = report.console()
    assert console.startswith("parity FAILED") and "  ! onnxruntime fp16: grefcoco/val gres cIoU" in console


def test_metric_undefined_on_one_side_only_fails():
    report = ParityReport(two_candidates({("gres", "cIoU"): None}))
    assert not report.passed
    row = report.to_json()["summary"][4]
    assert row["largest_delta"] == {"metric": "gres cIoU", "delta": None, "abs": None, "undefined_in": "candidate"}
    assert "n/a in candidate only (gres cIoU)" in report.markdown()
    assert "undefined in the candidate only (the other gives 58.25)" in report.violations[0]


def test_html_is_one_valid_document_with_a_chart_per_candidate(report):
    page = report.html()
    parsed = check_document(page)
    assert parsed.title == "parity test"
    assert parsed.counts["svg"] == 2 and parsed.counts["figure"] == 2 and parsed.counts["h1"] == 1
    assert '<p class="verdict pass"><strong>PASSED</strong>' in page
    assert page.index("verdict pass") < page.index("<svg") < page.index("<h2>Not run</h2>")
    # the fp16 refcoco bar: 0.3 of a scale of 4 points (twice the tolerance) on 260 px, green; tolerance tick
    assert '<rect x="150" y="29" width="19.5" height="10" fill="#2e7d32"/>' in page
    assert '<line x1="280.0"' in page
    assert "TensorRT&#x27;s Python package is not installed" in page


def test_console_summary_is_short(report):
    lines = report.console().splitlines()
    assert lines[0].startswith("parity PASSED") and len(lines) == 6
    assert lines[2].startswith("  onnxruntime fp32: ok, 3 splits, 11 samples, largest delta 0 (every metric identical)")
    assert "largest delta +0.300 (res mIoU) on refcoco/val" in lines[3] and "points 90.9%" in lines[3]
    assert lines[4] == "  not run: tensorrt fp32: TensorRT's Python package is not installed"
    table = report.console(table=True)
    assert "onnxruntime fp16 vs pytorch (tolerance 2 points)" in table and "refzom/test" in table


def test_write_puts_three_files_next_to_each_other(report, tmp_path):
    paths = report.write(tmp_path / "out" / "parity.json")
    assert [p.name for p in paths] == ["parity.json", "parity.md", "parity.html"]
    assert json.loads(paths[0].read_text())["title"] == "parity test"
    assert paths[1].read_text() == report.markdown() and paths[2].read_text() == report.html()


def test_labels_and_refusals():
    assert candidate_label({"name": "tensorrt", "precision": "fp16"}) == "tensorrt fp16"
    assert candidate_label({"name": "pytorch"}) == "pytorch"
    with pytest.raises(ValueError, match="at least one candidate.*tensorrt fp32 \\(no GPU\\)"):
        ParityReport({"tensorrt fp32": []}, [NotRun("tensorrt fp32", "no GPU")])


def test_paper_tables_print_undefined_metrics_as_na():
    from evaluation.report import paper_tables

    table = paper_tables([SplitResult("grefcoco", "val", copy.deepcopy(GREFCOCO), 4)])
    gres = table.split("Table 3 (GRES)")[1].splitlines()
    header, row = gres[1].split(), gres[3].split()
    assert row[header.index("N-acc")] == "n/a" and row[header.index("T-acc")] == "75.00"
    assert row[header.index("no_target_samples")] == "0"
