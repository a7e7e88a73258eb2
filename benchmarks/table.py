"""The one table ``python -m pytest benchmarks`` prints at the end: every ratio measured in the run.

Benchmarks add rows in two ways: :func:`record` (the scale benchmarks), or — for the older
ones, unchanged — ``benchmark.extra_info`` keys starting with ``ratio`` (read by the hook in
``conftest.py`` after each test) and the sandbox benchmark's printed ratios (parsed from its
output). Each row: section, what was measured, the measured value, the goal, a note.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import re
from typing import Any

__all__ = ["ROWS", "Row", "from_extra_info", "from_sandbox_output", "record", "render"]


@dataclasses.dataclass(frozen=True)
class Row:
    section: str
    what: str
    value: str
    goal: str = ""
    note: str = ""


ROWS: list[Row] = []

SECTIONS = {
    "test_bench_strategies": "strategy scoring / entropy",
    "test_bench_egal": "strategy scoring / entropy",
    "test_bench_gestalt": "strategy scoring / entropy",
    "test_bench_explain": "explainer (or metric) / forward",
}
GOALS = {  # (section, regex on "what") → goal
    ("strategy scoring / entropy", r"^aeig$"): "≤ 2×",
    ("strategy scoring / entropy", r"^egal"): "≤ 1.3×",
    ("strategy scoring / entropy", r"^gestalt"): "≤ 1.5×",
    ("explainer (or metric) / forward", r"^gradcam predicted class$"): "≤ 1.3×",
    ("explainer (or metric) / forward", r"^gradcam all classes$"): "≤ 1.5×",
}


def record(section: str, what: str, value: str, goal: str = "", note: str = "") -> None:
    ROWS.append(Row(section, what, value, goal, note))


def _goal(section: str, what: str) -> str:
    return next((g for (s, pattern), g in GOALS.items() if s == section and re.search(pattern, what)), "")


def _label(module: str, test: str, key: str, extra: dict[str, Any]) -> str:
    """A readable name for one ``ratio*`` key of one test."""
    params = test.split("[", 1)[1].rstrip("]") if "[" in test else ""
    base = test.split("[", 1)[0].removeprefix("test_").removesuffix("_ratio")
    if module == "test_bench_strategies":
        return params
    if module == "test_bench_egal":
        return f"egal (lam={extra.get('lam')})"
    if module == "test_bench_gestalt":
        return key[len("ratio["):-1] if key.startswith("ratio[") else "gestalt"
    if module == "test_bench_explain":
        names = {"gradcam_predicted_class": "gradcam predicted class", "gradcam_all_classes": "gradcam all classes",
                 "gradcam_generic_autograd_path": "gradcam (autograd path)",
                 "gradcam_generic_autograd_all_classes": "gradcam all classes (autograd path)",
                 "pool_cache_gradcam": "pool-cache gradcam (forward + maps)"}
        return names.get(base, f"{base.replace('_adapter', '').replace('_', ' ')} {params}".strip())
    return f"{base} {params} {key}".strip()


def from_extra_info(module: str, test: str, extra: dict[str, Any]) -> list[Row]:
    """Rows for the ``ratio*`` keys of one test's ``benchmark.extra_info``."""
    section = SECTIONS.get(module, module.removeprefix("test_bench_"))
    rows = []
    for key, value in extra.items():
        if not key.startswith("ratio") or not isinstance(value, int | float):
            continue
        what = _label(module, test, key, extra)
        if module == "test_bench_gestalt" and what == "entropy":
            continue
        rows.append(Row(section, what, f"{value:.2f}×", _goal(section, what)))
    return rows


def from_sandbox_output(text: str) -> list[Row]:
    """The sandbox benchmark prints its ratios (``process … 1.05× direct``, ``ratio 1.012``)."""
    rows = []
    for name in ("process", "inline"):
        m = re.search(rf"^\s*{name}\s+[\d.]+ ms\s+([\d.]+)× direct", text, re.M)
        if m:
            rows.append(Row("sandbox overhead", f"per-round query, {name} / direct", f"{float(m.group(1)):.2f}×",
                            "≤ 1.2×" if name == "process" else ""))
    m = re.search(r"sandbox start-up .* = ([\d.]+)× one direct query", text)
    if m:
        rows.append(Row("sandbox overhead", "sandbox start-up / one direct query", f"{float(m.group(1)):.2f}×",
                        note="overlaps round 0's training"))
    m = re.search(r"whole cell .* ratio ([\d.]+)", text)
    if m:
        rows.append(Row("sandbox overhead", "whole cell, process / inline", f"{float(m.group(1)):.2f}×"))
    return rows


def render(rows: list[Row] | None = None) -> str:
    rows = ROWS if rows is None else rows
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = (f"xalbench benchmarks — {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"load average {load:.1f} at the end (ratios from one run; the machine may be shared)\n\n")
    lines = ["| section | measurement | value | goal | note |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.section} | {r.what} | {r.value} | {r.goal} | {r.note} |")
    return head + "\n".join(lines)
