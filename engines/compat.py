"""TensorRT compatibility check without TensorRT: does TensorRT's ONNX parser (10.x, 11.x) accept this graph,
and does a strongly typed build of it compute what the graph says?

    from engines.compat import check_tensorrt_compatibility
    report = check_tensorrt_compatibility("model.onnx")          # or an onnx.ModelProto
    print(report.format()); report.passed                       # findings: report.findings

Every node is checked against the support table ``engines/data/tensorrt_onnx_support.json`` (operator,
element types, attribute values, constant inputs, outputs, ranks; read from onnx-tensorrt's
operators.md and parser sources, see its "sources"), the strongly typed rules, the plugin node contract
(engines/plugin_contract.py) and what the engine build can give dynamic shapes. The rules are functions
(engines/compat_rules.py); explicitly quantized graphs also get TensorRT's Q/DQ placement rules
(engines/qdq_rules.py); ``extra_rules`` adds more, any ``check(model) -> [problems]`` adapted with

    from engines.compat_rules import rule_from_messages
    check_tensorrt_compatibility(m, extra_rules=[rule_from_messages("my-rule", check)])

Pure ``onnx``: runs where TensorRT is not installed.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import onnx

from .compat_rules import DEFAULT_RULES, CheckContext, Rule, rule_from_messages
from .qdq_rules import check_qdq_placement, has_qdq
from .findings import ALL_VERSIONS, ERROR, WARNING, Finding
from .onnx_info import infer_types
from .plugin_contract import is_our_plugin, plugin_output_types

SUPPORT_TABLE = Path(__file__).with_name("data") / "tensorrt_onnx_support.json"


@lru_cache(maxsize=4)
def load_support_table(path: str | os.PathLike = SUPPORT_TABLE) -> dict:
    """The support table (see its "about"); raises ValueError naming the file if it is not one."""
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the TensorRT support table {path}: {exc}") from None
    if table.get("format") != "instancevg-tensorrt-onnx-support" or "operators" not in table:
        raise ValueError(f"{path} is not an instancevg TensorRT support table")
    return table


@dataclass
class CompatReport:
    """The findings of one check; ``passed`` when none is an error (warnings do not fail)."""

    source: str
    versions: tuple[str, ...]
    table: dict
    nodes: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def passed(self) -> bool:
        return not self.errors

    def checked_against(self) -> str:
        parts = []
        for version in self.versions:
            info = self.table["tensorrt"][version]
            lo, hi = info["opset"]
            parts.append(f"TensorRT {version}.x (parser table {info['table_version']}, opsets {lo}..{hi}, "
                         f"strongly typed {info['strongly_typed'].split(' (')[0]})")
        return "; ".join(parts)

    def format(self) -> str:
        """The readable report: verdict, versions, then each finding (errors first)."""
        verdict = "passed" if self.passed else "FAILED"
        lines = [f"TensorRT compatibility of {self.source} ({self.nodes} nodes): {verdict}",
                 f"  checked against {self.checked_against()}"]
        lines += ["  " + f.line() for f in self.errors + self.warnings]
        if self.findings:
            lines.append(f"  {len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        else:
            lines.append("  no problems found")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"source": self.source, "passed": self.passed, "nodes": self.nodes,
                "checked_against": {v: self.table["tensorrt"][v] for v in self.versions},
                "findings": [f.as_dict() for f in self.findings]}


def _load(model: onnx.ModelProto | str | os.PathLike) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, model.graph.name or "<model>"
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX graph not found: {path}")
    try:
        return onnx.load(os.fspath(path)), str(path)
    except Exception as exc:  # protobuf's DecodeError and friends: the file is not a graph
        raise ValueError(f"{path} is not an ONNX model: {exc}") from None


def _output_types(node, types):
    return plugin_output_types(node, types) if is_our_plugin(node) else [None] * len(node.output)


def check_tensorrt_compatibility(model: onnx.ModelProto | str | os.PathLike,
                                 versions: Sequence[str] = ALL_VERSIONS,
                                 rules: Iterable[Rule] = DEFAULT_RULES, extra_rules: Iterable[Rule] = (),
                                 table: dict | None = None) -> CompatReport:
    """Check ``model`` (a ModelProto or a path) for TensorRT majors ``versions``; returns the report.

    Raises FileNotFoundError / ValueError for a missing or unreadable graph or an unknown version."""
    table = table or load_support_table()
    unknown = [v for v in versions if v not in table["tensorrt"]]
    if unknown:
        raise ValueError(f"unknown TensorRT major(s) {unknown}; the table covers {', '.join(table['tensorrt'])}")
    proto, source = _load(model)
    typed = infer_types(proto, _output_types)
    ctx = CheckContext(typed, table, tuple(versions))
    findings: list[Finding] = []
    if has_qdq(proto):
        extra_rules = [*extra_rules, rule_from_messages("qdq-placement", check_qdq_placement)]
    for rule in list(rules) + list(extra_rules):
        findings.extend(rule(ctx))
    return CompatReport(source, tuple(versions), table, len(proto.graph.node), findings)
