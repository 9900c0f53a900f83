"""One problem a graph check found: which node, which rule, which TensorRT versions it concerns."""
from __future__ import annotations

from dataclasses import asdict, dataclass

ERROR, WARNING = "error", "warning"
ALL_VERSIONS = ("10", "11")


@dataclass(frozen=True)
class Finding:
    """``node``/``op_type`` are None for findings about the whole graph (opset, inputs). ``versions``:
    the TensorRT majors the finding applies to. ``severity``: "error" (the parser or the build fails, or
    the engine computes something else) or "warning" (works, with a caveat)."""

    rule: str
    message: str
    node: str | None = None
    op_type: str | None = None
    versions: tuple[str, ...] = ALL_VERSIONS
    severity: str = ERROR

    @property
    def where(self) -> str:
        if self.node is None and self.op_type is None:
            return "graph"
        return f"node {self.node!r} ({self.op_type})"

    def line(self) -> str:
        versions = ", ".join(f"{v}.x" for v in self.versions)
        return f"{self.severity.upper():<7} [{self.rule}] {self.where}: {self.message} (TensorRT {versions})"

    def as_dict(self) -> dict:
        return {**asdict(self), "versions": list(self.versions)}
