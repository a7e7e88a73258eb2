"""The documentation site builds with warnings as errors, and its API reference documents every
public contract under its public name (docs/contributing.md)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: what a plugin author looks up, by the path they import it from (the reference's anchors)
PUBLIC_CONTRACTS = (
    "xalbench.Strategy", "xalbench.StrategyContext", "xalbench.PoolCacheView", "xalbench.stable_topk",
    "xalbench.Loss", "xalbench.Batch", "xalbench.LossOutput", "xalbench.RoundInfo",
    "xalbench.Explainer", "xalbench.ExplainableNet", "xalbench.wrap",
    "xalbench.Dataset", "xalbench.DatasetBundle", "xalbench.DatasetMeta", "xalbench.Split", "xalbench.Model",
    "xalbench.Metric", "xalbench.Evaluation", "xalbench.ReportFormat", "xalbench.Finding",
    "xalbench.Trainer", "xalbench.MaskSource", "xalbench.Executor", "xalbench.Command", "xalbench.SuiteSource",
    "xalbench.Component", "xalbench.Options", "xalbench.run", "xalbench.load_registry", "xalbench.Registry",
    "xalbench.hookspecs.register_strategies", "xalbench.hookspecs.register_commands",
    "xalbench.hookspecs.register_findings",
    "xalbench.hookspecs.round_finished", "xalbench.hookspecs.run_finished",
    "xalbench.testing.check_strategy", "xalbench.testing.parametrize_with_checks", "xalbench.testing.check_loss",
    "xalbench.testing.parametrize_with_loss_checks", "xalbench.testing.check_explainer",
    "xalbench.testing.parametrize_with_explainer_checks",
)
WARNING = re.compile(r"^(WARNING|ERROR)\b", re.MULTILINE)


def test_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`: no broken link or anchor, no page outside the navigation, no missing include,
    no API object that cannot be found, no warning of any kind; every public contract has its anchor."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings_handlers") is None:
        if os.environ.get("CI"):
            pytest.fail("the documentation tools are missing: pip install -e .[docs] (requirements.txt does)")
        pytest.skip("the documentation tools are not installed: pip install -e .[docs]")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # the theme's end-of-life banner is not a build problem
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-6000:]}"
    assert not WARNING.search(log), f"the build logged warnings:\n{log[-6000:]}"

    reference = "".join(p.read_text(encoding="utf-8") for p in (site / "reference").rglob("*.html"))
    missing = [name for name in PUBLIC_CONTRACTS if f'id="{name}"' not in reference]
    assert not missing, f"the API reference does not document {missing}"
    assert not (site / "_ext").exists(), "docs/_ext (build code) was published with the site"
