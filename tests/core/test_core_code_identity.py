"""A cell's code identity covers the code the cell runs, not every file of the package."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import xalbench
from tests.conftest import tiny_suite_text
from xalbench.harness.sources import HARNESS_MODULE, SourceHashes, import_closure
from xalbench.planning import load_suite, plan_suite
from xalbench.plugins import load_registry


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def _copy_package(tmp_path: Path) -> Path:
    root = tmp_path / "xalbench"
    shutil.copytree(Path(xalbench.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _identities(registry, tmp_path: Path, root: Path) -> dict[tuple[str, str], str]:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_suite_text(["random", "entropy"], rounds=1))
    plan = plan_suite(registry, load_suite(registry, str(path)), out_dir=str(tmp_path / "out"),
                      losses=["ce", "dice"], seeds=[0], sources=SourceHashes({"xalbench": root}))
    return {(c.method.strategy.name, c.method.loss.name): c.identity_sha256 for c in plan.cells}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_help_text_edit_redoes_nothing_and_a_loss_edit_redoes_exactly_its_cells(registry, tmp_path):
    root = _copy_package(tmp_path / "copy")
    before = _identities(registry, tmp_path, root)
    assert len(before) == 4 and len(set(before.values())) == 4
    _edit(root / "cli" / "run.py", '"--profile"', '"--profile"  ')  # a CLI edit: not code a cell runs
    _edit(root / "leaderboard" / "build.py", '"""', '"""An edited docstring. ', )
    assert _identities(registry, tmp_path, root) == before
    _edit(root / "losses" / "ce.py", '"""', '"""Edited. ')  # the ce loss's own module
    after = _identities(registry, tmp_path, root)
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {("random", "ce"), ("entropy", "ce")}
    _edit(root / "losses" / "explanation.py", '"""', '"""Edited. ')  # where dice lives
    again = _identities(registry, tmp_path, root)
    assert {key for key in after if after[key] != again[key]} == {("random", "dice"), ("entropy", "dice")}
    _edit(root / "sandbox" / "guard.py", '"""', '"""Edited. ')  # harness code: every cell
    last = _identities(registry, tmp_path, root)
    assert all(last[key] != again[key] for key in again)


def test_harness_closure_holds_no_command_leaderboard_report_or_builtin_component():
    closure = import_closure(HARNESS_MODULE)
    assert "xalbench.harness.loop" in closure and "xalbench.sandbox.guard" in closure
    banned = ("xalbench.cli", "xalbench.leaderboard", "xalbench.report", "xalbench.losses.", "xalbench.strategies.",
              "xalbench.explain.", "xalbench.models.", "xalbench.data.synth")
    assert not [m for m in closure if m.startswith(banned)]


def test_closure_follows_lazy_imports_but_not_type_checking_blocks(tmp_path):
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkgx import c\n"
                              "def f():\n    from pkgx.b import g\n    return g\n")
    (pkg / "b.py").write_text("def g():\n    return 1\n")
    (pkg / "c.py").write_text("X = 1\n")
    hashes = SourceHashes({"pkgx": pkg})
    assert hashes.closure("pkgx.a", frozenset({"pkgx"})) == ("pkgx", "pkgx.a", "pkgx.b")
    first = SourceHashes({"pkgx": pkg}).of_module("pkgx.a")
    (pkg / "c.py").write_text("X = 2\n")
    assert SourceHashes({"pkgx": pkg}).of_module("pkgx.a") == first
    (pkg / "b.py").write_text("def g():\n    return 2\n")
    assert SourceHashes({"pkgx": pkg}).of_module("pkgx.a") != first
