"""The stages' dependencies point one way: instancevg imports no later stage; engines imports neither export
nor evaluation; export imports no evaluation. (The Triton model templates under engines/triton/model_templates
are files the generator copies into a model repository: they run inside Triton's Python backend, where they
use every stage, and are not part of the engines package.)"""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {"instancevg": {"export", "engines", "evaluation"},
             "engines": {"export", "evaluation"},
             "export": {"evaluation"}}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_stage_imports_no_later_stage(stage):
    offenders = {str(path.relative_to(REPO)): sorted(imported_packages(path) & FORBIDDEN[stage])
                 for path in sorted((REPO / stage).rglob("*.py")) if "model_templates" not in path.parts}
    assert {k: v for k, v in offenders.items() if v} == {}
