"""Shared fixtures: tiny suites, fabricated plugin distributions (no network, no installs) and the
session's smoke run — built once even when pytest-xdist spreads the tests over several workers."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from filelock import FileLock

#: The environment the test session started with: a subprocess that stands for a user's own command runs
#: in it, not in whatever a session fixture added since (e.g. a fabricated plugin on ``PYTHONPATH``).
SESSION_ENV = dict(os.environ)


#: The order weight of a file with ``slow`` tests but no ``cost`` mark (seconds).
SLOW_DEFAULT_COST = 15.0


def _file_cost(items: list[pytest.Item]) -> float:
    """A file's estimated seconds: its largest ``cost`` mark, else :data:`SLOW_DEFAULT_COST` if it has
    ``slow`` tests, else 0."""
    marks = [m.args[0] for item in items for m in item.iter_markers("cost")]
    if marks:
        return max(float(m) for m in marks)
    return SLOW_DEFAULT_COST if any(item.get_closest_marker("slow") for item in items) else 0.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files run longest first by their estimated cost (their order within a file kept): pytest-xdist
    hands out whole files in this order (``--dist loadfile --no-loadscope-reorder``), so the long ones
    start early and the many short ones fill the gaps instead of one long file keeping a worker busy at
    the end."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    cost = {name: _file_cost(file_items) for name, file_items in by_file.items()}
    items.sort(key=lambda item: -cost[item.nodeid.split("::", 1)[0]])


TINY_SUITE = """
name = "tiny"
description = "Test-sized suite: synth-lesion-2d at 32 px, 120-image pool, 2 rounds."
seeds = [0, 1]
strategies = {strategies}
losses = ["ce"]

[model]
name = "small-cnn"
options = {{ width = 8, n_blocks = 3 }}

[protocol]
base = "aeig"
initial = 20
rounds = {rounds}
query_size = 10

[training]
epochs = 2
batch_size = 16

[[datasets]]
name = "synth-lesion-2d"
label = "lesions"
options = {{ size = 32, n_train = 120, n_val = 30, n_test = 60 }}
"""


def tiny_suite_text(strategies: list[str] | None = None, rounds: int = 2) -> str:
    strategies = strategies or ["random", "entropy"]
    quoted = "[" + ", ".join(f'"{s}"' for s in strategies) + "]"
    return TINY_SUITE.format(strategies=quoted, rounds=rounds)


@pytest.fixture
def write_suite(tmp_path: Path) -> Callable[..., Path]:
    def _write(strategies: list[str] | None = None, rounds: int = 2, name: str = "tiny.toml") -> Path:
        path = tmp_path / name
        path.write_text(tiny_suite_text(strategies, rounds), encoding="utf-8")
        return path

    return _write


def make_dist(site: Path, dist_name: str, module: str, source: str, version: str = "1.0") -> Path:
    """Fabricate an installed distribution (dist-info + module) under ``site``, as pip would leave it."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[xalbench]\n{module} = {module}\n", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")
    return site


@contextlib.contextmanager
def dist_on_path(site: Path, module: str) -> Iterator[pytest.MonkeyPatch]:
    """A fabricated distribution in ``site`` installed for the block: ``site`` first on ``sys.path`` (the
    sandboxes and cell hosts started meanwhile get it from there), ``module`` forgotten afterwards. Yields the
    block's ``MonkeyPatch`` (for environment variables the distribution reads)."""
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.syspath_prepend(str(site))
            importlib.invalidate_caches()
            try:
                yield mp
            finally:
                sys.modules.pop(module, None)
    finally:
        importlib.invalidate_caches()


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Install a fabricated plugin distribution on sys.path for this test only (every registry
    built afterwards sees it; worker processes get it through PYTHONPATH)."""
    site = tmp_path / "site"
    added: list[str] = []

    def _make(dist_name: str, module: str, source: str, version: str = "1.0") -> Path:
        make_dist(site, dist_name, module, source, version)
        if str(site) not in sys.path:
            monkeypatch.syspath_prepend(str(site))
            added.append(str(site))
        monkeypatch.setenv("PYTHONPATH", str(site))
        return site

    yield _make


@dataclasses.dataclass(frozen=True)
class FinishedRun:
    """A finished run: its folder, exit code and what the command printed."""

    out: Path
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> FinishedRun:
    """``xalbench run --suite smoke --workers 2`` as a user runs it, once per session (16 cells): the
    first pytest-xdist worker that needs it runs it under a file lock in the session's shared temporary
    folder, the others wait and read it (pytest-xdist's documented pattern).

    Read it, never write into it: a test that adds cells copies the folder first (finished cells are then
    resumed, not rerun)."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # the folder every worker of this session shares
    folder = root / "smoke-run"
    finished = folder / "finished.json"
    with FileLock(str(root / "smoke-run.lock")):
        if not finished.is_file():
            folder.mkdir(exist_ok=True)
            proc = subprocess.run([sys.executable, "-m", "xalbench.cli", "run", "--suite", "smoke", "--out",
                                   str(folder / "smoke"), "--workers", "2"], capture_output=True, text=True,
                                  timeout=1200, env=SESSION_ENV)
            finished.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                            "stderr": proc.stderr}), encoding="utf-8")
        done = json.loads(finished.read_text(encoding="utf-8"))
    return FinishedRun(folder / "smoke", done["returncode"], done["stdout"], done["stderr"])
