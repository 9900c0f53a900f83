"""Reports: metric tables (one per paper table) and the JSON report, written atomically."""
from __future__ import annotations

import datetime

from instancevg.io import write_json_atomic
from instancevg.versions import tool_versions as _tool_versions

# where the paper reports each evaluator's metrics
PAPER_TABLE = {"rec": "Table 1 (REC)", "res": "Table 2 (RES)", "gres": "Table 3 (GRES)", "refzom": "Table 4 (Ref-ZOM)",
               "rrefcoco": "Table 5 (R-RefCOCO)", "grec": "Table 6 (GREC)"}
# the metric each suite is summarised by (parity summaries): the first column of its paper table
HEADLINE_METRIC = {"rec": "Pr@0.5", "res": "mIoU", "gres": "gIoU", "refzom": "oIoU", "rrefcoco": "mIoU",
                   "grec": "F1score"}
_PACKAGES = ("instancevg", "torch", "numpy", "pycocotools", "onnx", "onnxruntime", "sentencepiece", "tensorrt")


def tool_versions() -> dict:
    return _tool_versions(_PACKAGES)


def _cell(value) -> str:
    """A metric as printed: 2 decimals, "n/a" for an undefined metric (None: empty denominator)."""
    if value is None:
        return "n/a"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def format_table(title: str, rows: list[tuple[str, dict]]) -> str:
    """A plain-text table: one row per (label, {metric: value}); columns in first-seen order."""
    columns = []
    for _, values in rows:
        columns += [k for k in values if k not in columns]
    header = ["split"] + columns
    body = [[label] + [_cell(values.get(c, "")) for c in columns] for label, values in rows]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([title, line(header), line(["-" * w for w in widths])] + [line(r) for r in body])


def paper_tables(results) -> str:
    """One table per paper table, rows = benchmark/split, for a list of SplitResult."""
    tables = {}
    for result in results:
        for name, values in result.metrics.items():
            tables.setdefault(PAPER_TABLE.get(name, name), []).append((f"{result.benchmark}/{result.split}", values))
    order = list(PAPER_TABLE.values())
    return "\n\n".join(format_table(t, tables[t]) for t in sorted(tables, key=lambda t: order.index(t)
                                                                   if t in order else len(order)))


def build_report(results, **fields) -> dict:
    """The JSON report: every split's metrics, counts, options, timings and backend, plus tool versions."""
    return {"format": "instancevg-eval-report", "version": 1,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **fields, "results": [r.to_json() for r in results], "tools": tool_versions()}


def write_report(path, report: dict) -> None:
    write_json_atomic(path, report)
