"""The parity report: any number of labelled candidates against one reference, as JSON, Markdown and one
standalone HTML document (inline CSS and SVG: no script, no external resource). ``instancevg-demo`` and
``instancevg-eval --compare`` both write it.

    report = ParityReport({"onnxruntime fp32": [ParityResult, ...], "onnxruntime fp16": [...]},
                          not_run=[NotRun("tensorrt fp32", "TensorRT's Python package is not installed")])
    paths = report.write("out/parity.json")      # + out/parity.md and out/parity.html
    print(report.console())

Every form has the same sections, in this order: the title; the verdict (PASSED / FAILED, with each
candidate's tolerance); the summary, one row per (candidate, split): the headline metric of each of the
split's metric suites (reference and candidate), the largest metric delta and which metric, the
tolerance, the per-sample agreement rates (selection, no-target decision, points) and the sample count;
the details per candidate (metric deltas: a split whose metrics are all identical is one entry of a
list; the undefined metrics with the counts that make them undefined; sample agreement per split; the
worst samples); the backends and exports that were not run, with the reason; the tool versions. The HTML
draws the summary as one chart per candidate: the largest |delta| of each split as a bar against its
tolerance (a tick; red beyond it) and the agreement rates as coloured cells.

An undefined metric (None) is printed "n/a" (JSON null), never 0.
"""
from __future__ import annotations

import datetime
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from instancevg.io import write_json_atomic, write_text_atomic

from .parity import ParityResult
from .report import HEADLINE_METRIC, format_table, tool_versions

REPORT_FORMAT = "instancevg-parity-report"
WORST_SHOWN = 10  # worst samples listed per candidate in Markdown / HTML (all of them are in the JSON)


@dataclass(frozen=True)
class NotRun:
    """A candidate (backend, export, precision) that could not run here, and why."""

    label: str
    reason: str


# ---------------------------------------------------------------------------------------------- formatting
def fmt_metric(value) -> str:
    """A metric value: 2 decimals, "n/a" when undefined."""
    return "n/a" if value is None else f"{value:.2f}"


def fmt_percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def fmt_delta(largest: dict) -> str:
    """The largest delta of a summary row: "identical", "-0.463 (res mIoU)", "n/a in candidate only (...)"."""
    if largest["metric"] is None:
        return "identical"
    if largest["delta"] is None:
        return f"n/a in {largest['undefined_in']} only ({largest['metric']})"
    return f"{largest['delta']:+.3f} ({largest['metric']})"


def describe_backend(backend: dict) -> str:
    """One line for a backend's ``describe()``: name, then precision, target, config, model file, device."""
    parts = [str(backend.get("name", "?"))]
    for key in ("precision", "target", "config"):
        if backend.get(key):
            parts.append(f"{key} {backend[key]}")
    checkpoint = backend.get("checkpoint")
    if isinstance(checkpoint, dict):
        checkpoint = "random weights" if checkpoint.get("random_weights") else checkpoint.get("path")
    if checkpoint:
        parts.append(f"checkpoint {Path(str(checkpoint)).name}" if checkpoint != "random weights" else checkpoint)
    for key in ("onnx", "engine", "predictions"):
        if backend.get(key):
            parts.append(f"{key} {backend[key]}")
    if backend.get("device"):
        parts.append(f"device {backend['device']}")
    if backend.get("providers"):
        parts.append("providers " + ", ".join(backend["providers"]))
    return parts[0] + (f" ({'; '.join(parts[1:])})" if len(parts) > 1 else "")


def candidate_label(backend: dict) -> str:
    """The label of a candidate from its ``describe()``: backend name, the graph's target, the op
    implementation when it is not the reference one, and precision ("onnxruntime portable fp16",
    "onnxruntime tensorrt-target fp32", "pytorch plugin-ops fp32")."""
    target = {"portable": "portable", "tensorrt": "tensorrt-target"}.get(backend.get("target"))
    ops = f"{backend['ops']}-ops" if backend.get("ops") not in (None, "reference") else None
    return " ".join(str(part) for part in (backend.get("name"), target, ops, backend.get("precision")) if part)


def _where(result: ParityResult) -> str:
    return f"{result.candidate.benchmark}/{result.candidate.split}"


def _counts_note(metrics: dict) -> str:
    """Why a metric of this suite can be undefined: its zero counts ("no_target_samples = 0")."""
    zero = [f"{k} = 0" for k, v in metrics.items() if isinstance(v, int) and not isinstance(v, bool) and v == 0]
    return ", ".join(zero) if zero else "empty denominator: no predicted or annotated pixel"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _tolerance_text(tolerances: Sequence[float]) -> str:
    values = sorted(set(tolerances))
    if len(values) > 2:  # reduced precisions: one sample's worth on small splits (parity.default_tolerance)
        return f"{values[0]:g} to {values[-1]:g} points by split size"
    return " / ".join(f"{t:g}" for t in values) + " points"


# ---------------------------------------------------------------------------------------------- the report
class ParityReport:
    """Candidates {label: [ParityResult per split]} against one reference, plus what was not run.

    ``reference``: a description of the reference (default: from the results' reference backend);
    ``fields``: extra JSON fields (data root, graphs, config...). Tolerances are each ParityResult's own
    (per candidate precision and split size: ``parity.default_tolerance``).
    """

    def __init__(self, candidates: Mapping[str, Sequence[ParityResult]], not_run: Sequence[NotRun] = (),
                 reference: str | None = None, title: str | None = None, **fields):
        self.candidates = {label: list(results) for label, results in candidates.items() if results}
        if not self.candidates:
            raise ValueError("a parity report needs at least one candidate with results; not run: "
                             + ("; ".join(f"{n.label} ({n.reason})" for n in not_run) or "nothing"))
        self.not_run = [n if isinstance(n, NotRun) else NotRun(*n) for n in not_run]
        first = next(iter(self.candidates.values()))[0]
        self.reference_backend = first.reference.backend
        self.reference = reference or describe_backend(self.reference_backend)
        self.reference_name = self.reference_backend.get("name", "reference")
        self.title = title or f"Parity report: {', '.join(self.candidates)} vs {self.reference_name}"
        self.fields = fields
        self.rows = [self._summary_row(label, r) for label, results in self.candidates.items() for r in results]

    # -- data --------------------------------------------------------------------------------------------
    @property
    def passed(self) -> bool:
        return all(row["passed"] for row in self.rows)

    @property
    def violations(self) -> list[str]:
        return [f"{label}: {v}" for label, results in self.candidates.items() for r in results for v in r.violations]

    def tolerances(self, label: str) -> list[float]:
        return sorted({r.tolerance for r in self.candidates[label]})

    @staticmethod
    def _summary_row(label: str, result: ParityResult) -> dict:
        size, metric, delta = result.largest_delta()
        undefined_in = None
        if metric is not None and delta is None:
            suite, key = metric.split(" ", 1)
            undefined_in = "candidate" if result.candidate.metrics[suite][key] is None else "reference"
        a = result.agreement
        return {
            "candidate": label, "benchmark": result.candidate.benchmark, "split": result.candidate.split,
            "samples": a["samples"],
            "headline": [{"suite": suite, "metric": HEADLINE_METRIC[suite],
                          "reference": result.reference.metrics[suite].get(HEADLINE_METRIC[suite]),
                          "candidate": result.candidate.metrics[suite].get(HEADLINE_METRIC[suite])}
                         for suite in result.reference.metrics if suite in HEADLINE_METRIC],
            "largest_delta": {"metric": metric, "delta": delta, "abs": None if math.isinf(size) else size,
                              "undefined_in": undefined_in},
            "tolerance": result.tolerance,
            "selection_agreement": a["selection_identical"], "no_target_agreement": a["no_target_identical"],
            "points_identical": a["points_identical"], "mean_mask_iou": a["mean_mask_iou"],
            "undefined": [f"{suite} {k}" for suite, keys in result.undefined.items() for k, side in keys.items()
                          if side == "both"],
            "passed": not result.violations,
        }

    def verdict_text(self) -> str:
        """"PASSED: ..." / "FAILED: ..." with the tolerance of each candidate and what was not run."""
        n = len(self.rows)
        tolerances = "; ".join(f"{label} {_tolerance_text(self.tolerances(label))}" for label in self.candidates)
        if self.passed:
            text = (f"PASSED: every metric within tolerance in {_count(n, 'split comparison')} "
                    f"({_count(len(self.candidates), 'candidate')}; tolerance: {tolerances})")
        else:
            failed = sum(not row["passed"] for row in self.rows)
            text = (f"FAILED: {_count(len(self.violations), 'metric')} beyond tolerance in {failed} of "
                    f"{_count(n, 'split comparison')} (tolerance: {tolerances})")
        if self.not_run:
            text += f"; not run: {', '.join(n.label for n in self.not_run)}"
        return text

    def to_json(self) -> dict:
        return {"format": REPORT_FORMAT, "version": 1,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "title": self.title, "verdict": "PASSED" if self.passed else "FAILED", "passed": self.passed,
                "verdict_text": self.verdict_text(),
                "reference": {"description": self.reference, "backend": self.reference_backend},
                "tolerances": {label: self.tolerances(label) for label in self.candidates},
                "summary": self.rows, "violations": self.violations,
                "candidates": {label: {"backend": results[0].candidate.backend,
                                       "description": describe_backend(results[0].candidate.backend),
                                       "splits": [r.to_json() for r in results]}
                               for label, results in self.candidates.items()},
                "not_run": [{"label": n.label, "reason": n.reason} for n in self.not_run],
                **self.fields, "tools": tool_versions()}

    # -- document blocks, rendered as Markdown or HTML ------------------------------------------------------
    def _blocks(self) -> list[tuple]:
        blocks = [("h1", self.title), ("verdict", self.passed, self.verdict_text()),
                  ("p", f"Reference: {self.reference}. Deltas are candidate - reference in percentage points; "
                        "agreement rates are the share of samples with the same selected queries, the same "
                        "no-target decision and the same selected points; n/a marks a metric undefined on the "
                        "split (an empty denominator)."),
                  ("h2", "Summary")]
        blocks += [("chart", label, [row for row in self.rows if row["candidate"] == label]) for label in self.candidates]
        header = ["candidate", "split", "samples", "headline", "reference", "candidate value", "largest delta",
                  "tolerance", "selection", "no-target", "points", "result"]
        cells = []
        for row in self.rows:
            heads = row["headline"]
            cells.append([row["candidate"], f"{row['benchmark']}/{row['split']}", str(row["samples"]),
                          " / ".join(h["metric"] for h in heads),
                          " / ".join(fmt_metric(h["reference"]) for h in heads),
                          " / ".join(fmt_metric(h["candidate"]) for h in heads), fmt_delta(row["largest_delta"]),
                          f"{row['tolerance']:g}", fmt_percent(row["selection_agreement"]),
                          fmt_percent(row["no_target_agreement"]), fmt_percent(row["points_identical"]),
                          "ok" if row["passed"] else "FAILED"])
        blocks.append(("table", header, cells, "llrlrrlrrrrl", [not row["passed"] for row in self.rows]))
        blocks.append(("h2", "Details"))
        for label, results in self.candidates.items():
            blocks += self._candidate_blocks(label, results)
        blocks.append(("h2", "Not run"))
        if self.not_run:
            blocks.append(("table", ["candidate", "reason"], [[n.label, n.reason] for n in self.not_run], "ll", None))
        else:
            blocks.append(("p", "Every candidate ran."))
        tools = tool_versions()
        blocks += [("h2", "Tools"), ("p", ", ".join(f"{k} {v if v is not None else 'not installed'}"
                                                     for k, v in tools.items()) + ".")]
        return blocks

    def _candidate_blocks(self, label: str, results: list[ParityResult]) -> list[tuple]:
        blocks = [("h3", f"{label} vs {self.reference_name} (tolerance {_tolerance_text(self.tolerances(label))})"),
                  ("p", f"Candidate: {describe_backend(results[0].candidate.backend)}."), ("h4", "Metric deltas")]
        identical, differing = [], []
        for r in results:
            rates = list(r.rates())
            changed = [(s, k, ref, cand) for s, k, ref, cand in rates if ref != cand]
            (differing if changed else identical).append((r, rates, changed))
        if identical:
            names = ", ".join(f"{_where(r)} ({len(rates)})" for r, rates, _ in identical)
            blocks.append(("p", f"Identical on every metric in {len(identical)} of {len(results)} splits "
                                f"(metrics per split): {names}."))
        for r, rates, changed in differing:
            rows, bad = [], []
            for suite, k, ref, cand in changed:
                delta = None if ref is None or cand is None else float(cand) - float(ref)
                rows.append([f"{suite} {k}", fmt_metric(ref), fmt_metric(cand),
                             "n/a" if delta is None else f"{delta:+.3f}"])
                bad.append(delta is None or abs(delta) > r.tolerance)
            blocks.append(("p", f"{_where(r)}: {len(changed)} of {len(rates)} metrics differ "
                                f"({len(rates) - len(changed)} identical)."))
            blocks.append(("table", ["metric", "reference", "candidate", "delta"], rows, "lrrr", bad))
        undefined = [f"{_where(r)} {suite} {k} (n/a on both: {_counts_note(r.reference.metrics[suite])})"
                     for r in results for suite, keys in r.undefined.items() for k, side in keys.items()
                     if side == "both"]
        if undefined:
            blocks += [("h4", "Undefined metrics"), ("list", undefined)]
        blocks.append(("h4", "Sample agreement"))
        rows = []
        for r in results:
            a = r.agreement
            rows.append([_where(r), str(a["samples"]), f"{a['mean_mask_iou']:.4f}", f"{a['min_mask_iou']:.4f}",
                         f"{a['min_box_iou']:.4f}", f"{a['max_score_diff']:.2e}", fmt_percent(a["selection_identical"]),
                         fmt_percent(a["no_target_identical"]), fmt_percent(a["points_identical"])])
        blocks.append(("table", ["split", "samples", "mean mask IoU", "min mask IoU", "min box IoU", "max score diff",
                                 "selection", "no-target", "points"], rows, "lrrrrrrrr", None))
        blocks.append(("h4", "Worst samples"))
        same = lambda w: w["selection_identical"] and w["points_identical"] and w["no_target_identical"]
        worst = sorted(((r, w) for r in results for w in r.worst if w["sample_id"] in r.disagreeing_samples),
                       key=lambda rw: (same(rw[1]), rw[1]["mask_iou"], rw[1]["min_box_iou"]))
        if worst:
            rows = [[_where(r), repr(w["sample_id"]), f"{w['mask_iou']:.4f}", f"{w['min_box_iou']:.4f}",
                     f"{w['max_score_diff']:.2e}", str(w["selection_identical"]), str(w["no_target_identical"]),
                     str(w["points_identical"])] for r, w in worst[:WORST_SHOWN]]
            more = f" ({len(worst) - WORST_SHOWN} more in the JSON report)" if len(worst) > WORST_SHOWN else ""
            blocks.append(("p", "Samples whose mask, selection or points differ: different selections, points "
                                f"or no-target decisions first, then the lowest mask IoU{more}."))
            blocks.append(("table", ["split", "sample", "mask IoU", "min box IoU", "max score diff",
                                     "selection identical", "no-target identical", "points identical"],
                           rows, "llrrrlll", None))
        else:
            blocks.append(("p", "No sample differs: every mask, selection and point is identical."))
        return blocks

    # -- Markdown ----------------------------------------------------------------------------------------
    def markdown(self) -> str:
        out = []
        for block in self._blocks():
            kind = block[0]
            if kind in ("h1", "h2", "h3", "h4"):
                out.append("#" * int(kind[1]) + " " + block[1])
            elif kind == "verdict":
                verdict, rest = block[2].split(": ", 1)
                out.append(f"**{verdict}**: {rest}")
            elif kind == "p":
                out.append(block[1])
            elif kind == "list":
                out.append("\n".join(f"- {item}" for item in block[1]))
            elif kind == "table":
                _, header, rows, align, _ = block
                cell = lambda text: str(text).replace("|", "\\|")
                lines = ["| " + " | ".join(map(cell, header)) + " |",
                         "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
                lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
                out.append("\n".join(lines))
            # "chart": HTML only (the summary table carries the same numbers)
        return "\n\n".join(out) + "\n"

    # -- HTML --------------------------------------------------------------------------------------------
    def html(self) -> str:
        e = html.escape
        body = []
        for block in self._blocks():
            kind = block[0]
            if kind in ("h1", "h2", "h3", "h4"):
                body.append(f"<{kind}>{e(block[1])}</{kind}>")
            elif kind == "verdict":
                verdict, rest = block[2].split(": ", 1)
                body.append(f'<p class="verdict {"pass" if block[1] else "fail"}"><strong>{e(verdict)}</strong>: '
                            f"{e(rest)}</p>")
            elif kind == "p":
                body.append(f"<p>{e(block[1])}</p>")
            elif kind == "list":
                body.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in block[1]) + "</ul>")
            elif kind == "table":
                _, header, rows, align, bad = block
                head = "".join(f'<th class="{a}">{e(h)}</th>' for h, a in zip(header, align))
                lines = []
                for i, row in enumerate(rows):
                    cls = ' class="fail"' if bad and bad[i] else ""
                    lines.append(f"<tr{cls}>" + "".join(f'<td class="{a}">{e(c)}</td>' for c, a in zip(row, align))
                                 + "</tr>")
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>")
            elif kind == "chart":
                body.append(_chart(block[1], block[2], self.reference_name))
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<title>{e(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
                + "\n".join(body) + "\n</body>\n</html>\n")

    # -- terminal ----------------------------------------------------------------------------------------
    def console(self, table: bool = False, max_violations: int = 10) -> str:
        """A short summary for the terminal: the verdict, then per candidate one line (or, with ``table``,
        one compact row per split), the not-run candidates and the first violations."""
        lines = [f"parity {self.verdict_text()}", f"reference: {self.reference}"]
        for label, results in self.candidates.items():
            rows = [row for row in self.rows if row["candidate"] == label]
            if table:
                body = [(f"{row['benchmark']}/{row['split']}", {
                    "samples": str(row["samples"]),
                    "headline ref/cand": ", ".join(f"{h['metric']} {fmt_metric(h['reference'])}/"
                                                   f"{fmt_metric(h['candidate'])}" for h in row["headline"]),
                    "largest delta": fmt_delta(row["largest_delta"]),
                    "sel/nt/pts %": "/".join(f"{100 * row[k]:.1f}" for k in
                                             ("selection_agreement", "no_target_agreement", "points_identical")),
                    "": "ok" if row["passed"] else "FAILED"}) for row in rows]
                lines.append(format_table(f"{label} vs {self.reference_name} (tolerance "
                                          f"{_tolerance_text(self.tolerances(label))})", body))
                continue
            worst = max(rows, key=lambda row: math.inf if row["largest_delta"]["abs"] is None
                        else row["largest_delta"]["abs"])
            largest = ("0 (every metric identical)" if worst["largest_delta"]["metric"] is None else
                       f"{fmt_delta(worst['largest_delta'])} on {worst['benchmark']}/{worst['split']}")
            samples = sum(row["samples"] for row in rows)
            rate = lambda key: fmt_percent(sum(row[key] * row["samples"] for row in rows) / samples)
            lines.append(f"  {label}: {'ok' if all(row['passed'] for row in rows) else 'FAILED'}, {len(rows)} "
                         f"splits, {samples} samples, largest delta {largest}; agreement: selection "
                         f"{rate('selection_agreement')}, no-target {rate('no_target_agreement')}, points "
                         f"{rate('points_identical')}")
        lines += [f"  not run: {n.label}: {n.reason}" for n in self.not_run]
        violations = self.violations
        lines += [f"  ! {v}" for v in violations[:max_violations]]
        if len(violations) > max_violations:
            lines.append(f"  ! ... {len(violations) - max_violations} more in the report")
        return "\n".join(lines)

    # -- files -------------------------------------------------------------------------------------------
    def write(self, json_path: str | Path) -> list[Path]:
        """Write ``json_path`` and the .md and .html next to it (same stem), each atomically; every text is
        rendered before the first file is written. Returns the three paths."""
        stem = Path(json_path).with_suffix("")
        paths = [Path(json_path), stem.with_suffix(".md"), stem.with_suffix(".html")]
        report, markdown, page = self.to_json(), self.markdown(), self.html()
        write_json_atomic(paths[0], report)
        write_text_atomic(paths[1], markdown)
        write_text_atomic(paths[2], page)
        return paths


# ---------------------------------------------------------------------------------------------- HTML chart
_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}"
        "h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}h4{margin-bottom:.3em}"
        ".verdict{font-size:1.2em;padding:.5em .8em;border-radius:4px}.verdict.pass{background:#e3f4e4}"
        ".verdict.fail{background:#fbe3e3}table{border-collapse:collapse;margin:.5em 0;font-size:.9em}"
        "th,td{padding:2px 8px;border-bottom:1px solid #e4e4e4}th{background:#f4f4f4}.r{text-align:right;"
        "font-variant-numeric:tabular-nums}.l{text-align:left}tr.fail td{background:#fbe3e3}"
        "figure{margin:1em 0}figcaption{margin-bottom:.3em;font-size:.9em}svg text{font-size:12px}")
_ROW_H, _LABEL_W, _BAR_W, _CELL_W = 20, 150, 260, 80
_GREEN, _RED, _GREY = "#2e7d32", "#c62828", "#9e9e9e"


def _agreement_fill(fraction: float) -> str:
    return "#c8e6c9" if fraction >= 1.0 else "#fff3c4" if fraction >= 0.9 else "#ffcdd2"


def _chart(label: str, rows: list[dict], reference_name: str) -> str:
    """An inline SVG: per split, the largest |delta| as a bar on a scale of twice the tolerance (the
    tolerance is the dark tick in the middle; a bar beyond it is red, one beyond the scale ends in an
    arrow), then the agreement rates as cells (green 100 %, amber >= 90 %, red below)."""
    e = html.escape
    positive = [row["tolerance"] for row in rows if row["tolerance"] > 0]
    finite = [row["largest_delta"]["abs"] for row in rows if row["largest_delta"]["abs"] is not None]
    scale = 2 * max(positive) if positive else max(finite + [1.0])
    value_x = _LABEL_W + _BAR_W + 8
    cells_x = value_x + 200
    width, height = cells_x + 3 * _CELL_W, 28 + _ROW_H * len(rows)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{e(label)}: largest metric delta per split against the tolerance, and agreement rates">',
             '<text x="0" y="14" font-weight="bold">split</text>',
             f'<text x="{_LABEL_W}" y="14" font-weight="bold">largest |delta| (0 to {scale:g} points; tick = '
             f'tolerance)</text>']
    for i, name in enumerate(("selection", "no-target", "points")):
        parts.append(f'<text x="{cells_x + i * _CELL_W + _CELL_W / 2:.0f}" y="14" text-anchor="middle" '
                     f'font-weight="bold">{name}</text>')
    for i, row in enumerate(rows):
        y = 24 + i * _ROW_H
        largest, tol = row["largest_delta"], row["tolerance"]
        parts.append(f'<text x="0" y="{y + 13}">{e(row["benchmark"])}/{e(row["split"])}</text>')
        parts.append(f'<rect x="{_LABEL_W}" y="{y + 2}" width="{_BAR_W}" height="{_ROW_H - 4}" fill="#f2f2f2"/>')
        if largest["abs"] is None:  # undefined on one side only: a failure, drawn full width
            bar_w, colour, text = _BAR_W, _RED, f"n/a in {largest['undefined_in']}"
        else:
            bar_w = min(largest["abs"] / scale, 1.0) * _BAR_W
            colour = _RED if largest["abs"] > tol else _GREEN
            text = "0" if largest["metric"] is None else f"{largest['abs']:.3f} ({largest['metric']})"
        if bar_w > 0:
            parts.append(f'<rect x="{_LABEL_W}" y="{y + 5}" width="{max(bar_w, 1.5):.1f}" height="{_ROW_H - 10}" '
                         f'fill="{colour}"/>')
        if largest["abs"] is not None and largest["abs"] > scale:  # off the scale: an arrow head
            end = _LABEL_W + _BAR_W
            parts.append(f'<path d="M{end - 6} {y + 3}L{end + 4} {y + 10}L{end - 6} {y + 17}Z" fill="{_RED}"/>')
        if 0 < tol <= scale:
            tx = _LABEL_W + tol / scale * _BAR_W
            parts.append(f'<line x1="{tx:.1f}" y1="{y + 1}" x2="{tx:.1f}" y2="{y + _ROW_H - 1}" stroke="#333" '
                         f'stroke-width="2"/>')
        ink = _RED if not row["passed"] else _GREEN if largest["metric"] else _GREY
        parts.append(f'<text x="{value_x}" y="{y + 13}" fill="{ink}">{e(text)}</text>')
        for k, key in enumerate(("selection_agreement", "no_target_agreement", "points_identical")):
            x = cells_x + k * _CELL_W
            parts.append(f'<rect x="{x + 2}" y="{y + 2}" width="{_CELL_W - 4}" height="{_ROW_H - 4}" '
                         f'fill="{_agreement_fill(row[key])}"/>')
            parts.append(f'<text x="{x + _CELL_W / 2:.0f}" y="{y + 13}" text-anchor="middle">'
                         f'{fmt_percent(row[key])}</text>')
    parts.append("</svg>")
    legend = ("bars: the largest |metric delta| of each split, green within the tolerance (black tick), red "
              "beyond it; cells: share of samples with the same selection, no-target decision and points "
              "(green 100 %, amber at least 90 %, red below)")
    return (f"<figure><figcaption><strong>{e(label)} vs {e(reference_name)}</strong>: {legend}</figcaption>"
            + "".join(parts) + "</figure>")
