"""Plan by power: what a run at n seeds can detect, how many seeds a target needs, how long it takes.

Everything comes from the suite's **calibration** — a stored run of the suite summarised per dataset
(``docs/findings.md``): the between-seed SD of the paired Δ of each question's comparisons and of
every method vs ``random+ce``, and the mean cell-seconds. Found, in order: ``--calibration FILE``;
the suite package's ``load_calibration(name)`` (``xalbench.suites.calibration``) when it exists; a
``<suite file stem>.calibration.json`` beside the suite's TOML.

* **Minimum detectable Δ** at n seeds (paired t-test, α 0.05, power 0.8):
  ``MDE = (t_{0.975, n−1} + t_{0.8, n−1}) · SD / √n`` (:func:`~xalbench.report.paired.minimum_detectable`),
  per (dataset, question, quantity) the question compares where its question exists in the plan,
  and per (dataset, metric) for any method vs the baseline.
* **Seeds for a target** (``--n-seeds auto --target-mde M``): the smallest n (3 ≤ n ≤ 50) at which the
  largest MDE over the plan's questions — each on its primary quantity, AULC quantities only — is ≤ M.
* **Wall time**: Σ over datasets of (cells to run × (mean cell-seconds of that dataset + the
  calibration's ``overhead_seconds_per_cell``)) / min(workers, cells) + a start-up constant (the calibration's ``startup_seconds``, else :data:`STARTUP_SECONDS`);
  a dataset's cell-seconds come from this results directory's finished cells of the suite when it has
  some, else from the calibration.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xalbench.errors import ConfigError
from xalbench.report.paired import MIN_SEEDS, minimum_detectable

__all__ = ["STARTUP_SECONDS", "Calibration", "PowerRow", "choose_n_seeds", "find_calibration", "power_rows",
           "wall_seconds"]

STARTUP_SECONDS = 12.0  #: starting and importing the worker processes, once per run
MAX_SEEDS = 50
BASELINE_ROW = "any method vs random+ce"


@dataclasses.dataclass(frozen=True)
class DatasetCalibration:
    n_seeds: int
    cell_seconds: float | None
    questions: dict[str, dict[str, float]]  #: finding name → quantity (metric name) → SD of the paired Δ
    vs_baseline: dict[str, float]  #: metric name → SD of the paired Δ of any method vs the baseline


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A suite's calibration (module docstring), checked and with metric names resolved."""

    source: str
    datasets: dict[str, DatasetCalibration]
    startup_seconds: float = STARTUP_SECONDS
    #: wall × workers − Σ cell-seconds of the calibration run, per cell: starting each cell's process,
    #: building its data and model, sealing — time no round records
    overhead_seconds_per_cell: float = 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str, metric_keys: Mapping[str, str] | None = None
                  ) -> Calibration:
        """Parse the JSON form; quantities may be metric names or summary keys (``aulc_acc``), which
        ``metric_keys`` (summary key → metric name) turns into names."""
        keys = dict(metric_keys or {})

        def fail(what: str) -> ConfigError:
            return ConfigError(f"calibration {source}: {what}; see docs/findings.md for the format, or pass "
                               "--n-seeds N instead of auto")

        def sds(value: Any, where: str) -> dict[str, float]:
            if not isinstance(value, Mapping):
                raise fail(f"{where} must map quantities to between-seed SDs")
            out = {}
            for q, sd in value.items():
                if isinstance(sd, bool) or not isinstance(sd, (int, float)) or not sd >= 0:
                    raise fail(f"{where}.{q} must be a number ≥ 0, not {sd!r}")
                out[keys.get(q, q)] = float(sd)
            return out

        if not isinstance(data, Mapping) or not isinstance(data.get("datasets"), Mapping):
            raise fail("needs a 'datasets' table")
        top_seeds = data.get("n_seeds", data.get("seeds"))
        out = {}
        for ds, entry in data["datasets"].items():
            if not isinstance(entry, Mapping):
                raise fail(f"datasets.{ds} must be a table")
            n = entry.get("n_seeds", entry.get("seeds", top_seeds))
            if isinstance(n, list):
                n = len(n)
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise fail(f"datasets.{ds}: the seed count it came from (n_seeds) must be an integer ≥ 1")
            secs = entry.get("cell_seconds", entry.get("mean_cell_seconds"))
            if secs is not None and (isinstance(secs, bool) or not isinstance(secs, (int, float)) or secs < 0):
                raise fail(f"datasets.{ds}.cell_seconds must be a number ≥ 0")
            questions = entry.get("questions") or {}
            if not isinstance(questions, Mapping):
                raise fail(f"datasets.{ds}.questions must be a table")
            if n < 2 and (questions or entry.get("vs_baseline")):
                raise fail(f"datasets.{ds}: a between-seed SD needs n_seeds ≥ 2")
            out[str(ds)] = DatasetCalibration(
                n, None if secs is None else float(secs),
                {str(k): sds(v, f"datasets.{ds}.questions.{k}") for k, v in questions.items()},
                sds(entry.get("vs_baseline") or {}, f"datasets.{ds}.vs_baseline"))
        startup = data.get("startup_seconds", STARTUP_SECONDS)
        if isinstance(startup, bool) or not isinstance(startup, (int, float)) or startup < 0:
            raise fail("startup_seconds must be a number ≥ 0")
        overhead = data.get("overhead_seconds_per_cell", 0.0)
        if isinstance(overhead, bool) or not isinstance(overhead, (int, float)) or overhead < 0:
            raise fail("overhead_seconds_per_cell must be a number ≥ 0")
        return cls(source, out, float(startup), float(overhead))


def find_calibration(suite: Any, path: str | None = None, registry: Any = None) -> Calibration | None:
    """The suite's calibration (module docstring), or ``None`` when it ships none; with ``registry``,
    quantities given as summary keys (``aulc_acc`` or ``acc``) become metric names."""
    metric_keys = None
    if registry is not None:
        from xalbench.report.cells import metric_infos

        metric_keys = {k: m.name for m in metric_infos(registry).values() for k in (m.key, m.key.split("_", 1)[1])}
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"--calibration {path} does not exist")
        return Calibration.from_dict(_read(Path(path)), str(path), metric_keys)
    try:
        from xalbench.suites.calibration import load_calibration  # type: ignore[import-not-found]
    except ImportError:
        load_calibration = None
    if load_calibration is not None:
        data = load_calibration(suite.name)
        if data is not None:
            return Calibration.from_dict(data, f"the {suite.name} suite's calibration", metric_keys)
    source = getattr(suite, "source", "")
    beside = Path(source).with_suffix(".calibration.json") if source.endswith(".toml") else None
    if beside is not None and beside.is_file():
        return Calibration.from_dict(_read(beside), str(beside), metric_keys)
    return None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"calibration {path} cannot be read as JSON: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class PowerRow:
    """One line of the power table: ``what`` (a question's name, or :data:`BASELINE_ROW`) on ``dataset``."""

    dataset: str
    what: str
    quantity: str
    label: str
    sd: float  #: NaN: not calibrated
    primary: bool  #: the question's primary quantity, on the AULC scale (counts for a target MDE)

    def mde(self, n: int) -> float:
        return minimum_detectable(self.sd, n)


def power_rows(run: Any, findings: Sequence[Any], calibration: Calibration | None) -> list[PowerRow]:
    """Per planned dataset: each question that exists there and has comparisons in the plan, per
    quantity it compares; then any method vs the baseline per calibrated headline metric (those the
    leaderboard shows)."""
    rows = []
    for ds in run.datasets():
        cal = calibration.datasets.get(ds) if calibration else None
        for f in findings:
            if not any(p.dataset == ds for p in f.pairs(run)):
                continue
            for i, q in enumerate(f.quantities):
                sd = (cal.questions.get(f.name) or {}).get(q, math.nan) if cal else math.nan
                aulc = run.has_metric(q) and run.metric(q).aulc
                rows.append(PowerRow(ds, f.name, q, f.label(run, q), sd, i == 0 and aulc))
        for name, sd in sorted((cal.vs_baseline if cal else {}).items()):
            if run.has_metric(name) and run.metric(name).headline:
                rows.append(PowerRow(ds, BASELINE_ROW, name, run.metric(name).label, sd, False))
    return rows


def choose_n_seeds(rows: Sequence[PowerRow], target: float, max_seeds: int = MAX_SEEDS) -> tuple[int, PowerRow]:
    """The smallest n (:data:`MIN_SEEDS` ≤ n ≤ ``max_seeds``) whose largest MDE over the calibrated
    primary rows is ≤ ``target``, with the row that decides it (the largest MDE at n)."""
    primary = [r for r in rows if r.primary and not math.isnan(r.sd)]
    if not primary:
        raise ConfigError("--n-seeds auto needs a calibration with the between-seed SD of at least one planned "
                          "question; this suite has none (pass --calibration FILE, or --n-seeds N)")
    if not target > 0:
        raise ConfigError(f"--target-mde must be > 0, got {target}")
    for n in range(MIN_SEEDS, max_seeds + 1):
        worst = max(primary, key=lambda r: r.mde(n))
        if worst.mde(n) <= target:
            return n, worst
    worst = max(primary, key=lambda r: r.mde(max_seeds))
    raise ConfigError(f"no seed count up to {max_seeds} reaches a minimum detectable Δ of {target:g}: {worst.what} "
                      f"on {worst.dataset} ({worst.label}, between-seed SD {worst.sd:.3g}) still needs "
                      f"{worst.mde(max_seeds):.3g} at {max_seeds} seeds; raise --target-mde or narrow the plan")


def wall_seconds(cells_per_dataset: Mapping[str, int], seconds_per_cell: Mapping[str, float | None], workers: int,
                 startup: float = STARTUP_SECONDS) -> tuple[float | None, list[str]]:
    """(estimated wall seconds, datasets without a cell-seconds figure): Σ cells × seconds / min(workers,
    cells) + ``startup``; ``None`` when any dataset with cells to run lacks a figure."""
    total_cells = sum(cells_per_dataset.values())
    if total_cells == 0:
        return 0.0, []
    unknown = [ds for ds, n in cells_per_dataset.items() if n and seconds_per_cell.get(ds) is None]
    if unknown:
        return None, unknown
    work = sum(n * float(seconds_per_cell[ds] or 0.0) for ds, n in cells_per_dataset.items())
    return work / max(1, min(workers, total_cells)) + startup, []
