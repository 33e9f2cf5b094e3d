"""The layering rule: cores (`blending`, `landmarks`, `shards`) know nothing of Beam, the
pipelines or the trainers."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORES = ("blending", "landmarks", "shards")
FORBIDDEN = ("apache_beam", "pipelines", "trainers")


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("core", CORES)
def test_core_imports_neither_beam_nor_pipelines_nor_trainers(core):
    files = sorted((ROOT / core).rglob("*.py"))
    assert files
    offending = {str(f.relative_to(ROOT)): sorted(imported_modules(f) & set(FORBIDDEN)) for f in files}
    assert {f: names for f, names in offending.items() if names} == {}


def test_the_rule_catches_a_violation(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from apache_beam.io import filesystems\n    import pipelines.cli\n")
    assert imported_modules(probe) >= {"apache_beam", "pipelines"}
