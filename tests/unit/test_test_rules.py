"""The test suite's own house rules that a program can check."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports (absolute names; relative ones with their dots)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def is_test_module_or_conftest(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


def test_no_test_imports_another_test_module_or_a_conftest() -> None:
    """Shared helpers live in tests/support/, so a test never runs another's module."""
    offenders = [
        f"{path.relative_to(TESTS)} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        if "node_modules" not in path.parts
        for module in imported_modules(path)
        if is_test_module_or_conftest(module)
    ]
    assert offenders == []


def test_the_rule_sees_an_offending_import(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "from tests.api.conftest import x\nimport tests.unit.test_keys\nfrom . import y\n"
    )
    found = [module for module in imported_modules(sample) if is_test_module_or_conftest(module)]
    assert found == ["tests.api.conftest", "tests.unit.test_keys"]
