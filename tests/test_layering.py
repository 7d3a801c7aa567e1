"""The layering is enforced, not hoped for: `lint-imports` (run by `make lint`) passes on the tree and fails as soon as
a service imports another service, or contracts import the platform."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = {  # package → its source folder
    "povguard_contracts": "libs/contracts/src", "povguard_platform": "libs/platform/src",
    "povguard_rules": "libs/rules/src", "povguard_tools": "tools/src",
    **{f"povguard_{s}": f"services/{s}/src"
       for s in ("intake", "assessment", "review", "support", "audit", "reporting")},
}


def _lint(src_root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts over the packages found under `src_root` (first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(src_root)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every package of the workspace copied side by side, so that an import can be added without touching the tree."""
    root = tmp_path_factory.mktemp("layering")
    for package, src in PACKAGES.items():
        shutil.copytree(ROOT / src / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _with_import(root: Path, module: str, line: str) -> Path:
    path = root / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + f"\n{line}\n", encoding="utf-8")
    return path


def test_the_tree_keeps_every_contract(tree_copy: Path) -> None:
    result = _lint(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 6 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("povguard_audit/dispute.py", "import povguard_assessment.handlers  # noqa", "no service imports another service"),
    ("povguard_contracts/vocab.py", "import povguard_platform.envelope  # noqa", "the published language"),
    ("povguard_review/api/cases.py", "import povguard_tools.demo.state  # noqa", "no service imports the tooling"),
    ("povguard_support/domain/plan.py", "import sqlalchemy  # noqa", "domains are pure"),
])
def test_a_violating_import_fails_the_build(tree_copy: Path, module: str, line: str, broken: str) -> None:
    path = tree_copy / module
    original = path.read_text(encoding="utf-8")
    try:
        _with_import(tree_copy, module, line)
        result = _lint(tree_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout, result.stdout
