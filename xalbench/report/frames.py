"""A run's cells as tidy pandas frames, and the report's statistics as a function over them.

::

    import xalbench

    res = xalbench.load_results("results/medical")       # Results(rounds=..., cells=..., damaged=...)
    res.rounds.groupby(["method", "n_labelled"])["accuracy"].mean()   # learning curves
    board = xalbench.leaderboard_frame(res.cells, metric="acc")        # what `xalbench report` ranks

:func:`load_results` reads the cell files the way ``xalbench report`` does (sealed files verified,
damaged ones skipped with a :class:`~xalbench.results.DamagedResultWarning` and listed in
``damaged``) and adds nothing the files do not hold. :func:`leaderboard_frame` computes its numbers
with the report's own function (:func:`xalbench.report.tables.leaderboard`), so they are the
numbers ``xalbench report --format json`` prints.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from xalbench.errors import ConfigError
from xalbench.report.model import check_mixed
from xalbench.report.model import load_results as read_cells
from xalbench.report.tables import cells_frame, leaderboard
from xalbench.results import DamagedResultWarning

__all__ = ["Results", "leaderboard_frame", "load_results", "rounds_frame"]

#: the cell's own fields in both frames (the columns a row is identified by)
ID_COLUMNS = ("key", "dataset", "method", "strategy", "loss", "seed")


@dataclasses.dataclass(frozen=True)
class Results:
    """The cells of a results directory as two tidy frames.

    ``rounds``: one row per (cell, round) — :data:`ID_COLUMNS`, ``status``, ``round``, ``n_labelled``,
    ``n_queried``, ``n_masks_revealed``, ``n_masks_generated``, every per-round metric under its name
    (``accuracy``, ``dice``, …; NaN where a metric is undefined), the round's timings
    (``timing_train_s``, …), its training loss terms (``train_ce``, …) and the class histogram of
    its acquisitions (``acquired_class_0``, …).

    ``cells``: one row per cell — the columns ``xalbench report`` tabulates (status, ``aulc_<key>`` and
    ``final_<key>`` of every metric, ``error``, ``reason``, ``config``, ``synthetic``, ``path``), every
    other summary value, and the cell's provenance flattened: ``suite``, ``trainer``, ``mask_source``,
    the components' options (JSON text), ``isolation``, ``identity_sha256``, ``suite_hash``,
    ``split_hash``, ``xalbench_source_sha256``, the environment (``python``, ``torch``, ``numpy``,
    ``platform``, ``device``, ``threads``) and the version of every component's distribution
    (``strategy_distribution``, ``strategy_version``, …) and of every installed plugin
    (``version:<distribution>``).

    ``damaged``: the cell files that were skipped because they are damaged.
    """

    rounds: pd.DataFrame
    cells: pd.DataFrame
    damaged: tuple[Path, ...] = ()


def _ids(r: dict[str, Any]) -> dict[str, Any]:
    c = r["cell"]
    return {"key": c.get("key", ""), "dataset": c["dataset"], "method": c["method"], "strategy": c.get("strategy", ""),
            "loss": c.get("loss", ""), "seed": c["seed"]}


def _float(v: Any) -> float:
    return float("nan") if v is None or isinstance(v, bool) else float(v)


def rounds_frame(results: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (cell, round) of ``results`` (cell dicts as :func:`xalbench.results.iter_results` yields them)."""
    rows = []
    for r in results:
        ids = {**_ids(r), "status": r["status"]}
        for rd in r.get("rounds") or []:
            row: dict[str, Any] = {**ids, "round": rd["round"], "n_labelled": rd["n_labelled"],
                                   "n_queried": len(rd.get("queried") or []),
                                   "n_masks_revealed": rd.get("n_masks_revealed"),
                                   "n_masks_generated": rd.get("n_masks_generated")}
            row.update({k: _float(v) for k, v in (rd.get("metrics") or {}).items()})
            row.update({f"timing_{k}": _float(v) for k, v in (rd.get("timings") or {}).items()})
            row.update({f"train_{k}": _float(v) for k, v in (rd.get("train_terms") or {}).items()})
            row.update({f"acquired_class_{i}": n for i, n in enumerate(rd.get("acquired_class_histogram") or [])})
            rows.append(row)
    return pd.DataFrame(rows)


def _options(value: Any) -> str:
    return json.dumps(value or {}, sort_keys=True, default=str)


def _provenance(r: dict[str, Any]) -> dict[str, Any]:
    c, prov = r["cell"], r.get("provenance") or {}
    env = prov.get("environment") or {}
    row: dict[str, Any] = {
        "suite": c.get("suite", ""), "trainer": c.get("trainer", "standard"), "mask_source": c.get("mask_source", "none"),
        "strategy_options": _options(c.get("strategy_options")), "loss_options": _options(c.get("loss_options")),
        "trainer_options": _options(c.get("trainer_options")),
        "mask_source_options": _options(c.get("mask_source_options")),
        "dataset_name": c.get("dataset_name", c["dataset"]), "dataset_options": _options(c.get("dataset_options")),
        "isolation": prov.get("isolation"), "identity_sha256": r.get("identity_sha256"),
        "suite_hash": r.get("suite_hash") or prov.get("suite_hash"), "split_hash": prov.get("split_hash"),
        "xalbench_source_sha256": env.get("xalbench_source_sha256"),
        "n_rounds": len(r.get("rounds") or []),
        "error_rule": (r.get("error") or {}).get("rule"),
    }
    row.update({k: env.get(k) for k in ("python", "torch", "numpy", "platform", "machine", "device", "threads")})
    for kind, origin in sorted((prov.get("components") or {}).items()):
        row[f"{kind}_distribution"] = origin.get("distribution")
        row[f"{kind}_version"] = origin.get("version")
    row.update({f"version:{dist}": ver for dist, ver in sorted((env.get("plugin_distributions") or {}).items())})
    return row


def _cells(results: list[dict[str, Any]]) -> pd.DataFrame:
    frame = cells_frame(results)  # the report's own columns
    extra = []
    for r in results:
        row = _provenance(r)
        row.update({k: _float(v) for k, v in (r.get("summary") or {}).items() if k not in frame.columns})
        extra.append(row)
    more = pd.DataFrame(extra, index=frame.index)
    return pd.concat([frame, more[[c for c in more.columns if c not in frame.columns]]], axis=1)


def load_results(run_dir: str | Path) -> Results:
    """The finished cells under ``run_dir`` as :class:`Results` (``.rounds``, ``.cells``, ``.damaged``).

    Raises :class:`~xalbench.errors.ConfigError` when the folder does not exist or holds no finished
    cell; damaged files are skipped with one :class:`~xalbench.results.DamagedResultWarning`."""
    damaged: list[Path] = []
    results = read_cells(run_dir, damaged)
    if damaged:
        warnings.warn(f"{len(damaged)} damaged cell file(s) skipped: {', '.join(str(p) for p in damaged)}",
                      DamagedResultWarning, stacklevel=2)
    return Results(rounds=rounds_frame(results), cells=_cells(results), damaged=tuple(damaged))


def _key(metric: str, cells: pd.DataFrame) -> str:
    """``"acc"``, ``"aulc_acc"`` or a registered metric's name (``"accuracy"``) → the summary key ``"acc"``."""
    keys = [c[5:] for c in cells.columns if c.startswith("aulc_")]
    key = metric[5:] if metric.startswith("aulc_") else metric
    if key in keys:
        return key
    from xalbench.report.model import _metric_info

    by_name = {v["name"]: k for k, v in _metric_info(keys).items()}
    if metric in by_name:
        return by_name[metric]
    raise ConfigError(f"metric {metric!r} has no AULC in these cells; choose one of: {', '.join(sorted(keys))}")


def leaderboard_frame(cells: pd.DataFrame, metric: str = "acc", *, baseline: str | None = None,
                      test: Literal["ttest", "wilcoxon"] = "ttest", allow_mixed: bool = False) -> pd.DataFrame:
    """One row per (dataset, method) of ``cells`` (:attr:`Results.cells`, filtered as you like): the report's
    statistics of ``metric``'s AULC, computed by the report's own code.

    Columns: ``dataset``, ``method``, ``strategy``, ``loss``, ``n_seeds``, ``mean``, ``half_width`` and
    ``ci_low``/``ci_high`` (95 % Student-t interval over seeds), ``std``, ``baseline``, ``delta`` with
    ``delta_ci_low``/``delta_ci_high`` (mean paired difference to the baseline over the seeds both ran,
    95 % interval), ``n_pairs``, ``p`` (paired t-test or Wilcoxon; NaN below 3 pairs), ``p_holm``
    (Holm-corrected over the dataset's methods), ``rank``, ``rank_best``, ``rank_worst`` (by this
    metric; a range where intervals overlap). ``metric``: a summary key (``"acc"``, ``"dice"``), its
    ``aulc_`` column or a registered metric's name. ``baseline``: default ``random + ce`` (else any
    ``random`` method), as the report."""
    if test not in ("ttest", "wilcoxon"):
        raise ConfigError(f"test must be 'ttest' or 'wilcoxon', got {test!r}")
    if cells.empty:
        raise ConfigError("no cells to rank; pass load_results(run_dir).cells")
    key = _key(metric, cells)
    if baseline is not None and baseline not in set(cells["method"]):
        raise ConfigError(f"baseline {baseline!r} is not a method of these cells; methods: "
                          f"{', '.join(sorted(set(cells['method'])))}")
    if not allow_mixed:
        check_mixed(cells)
    from xalbench.report.model import _metric_info

    keys = [c[5:] for c in cells.columns if c.startswith("aulc_")]  # every key, as the report (ties use dice)
    directions = {k: v["direction"] for k, v in _metric_info(keys).items()}
    group = ("dataset", "method", "config") if allow_mixed else ("dataset", "method")
    board = leaderboard(cells, test=test, keys=keys, directions=directions, group=group, baseline=baseline,
                        primary=key)
    if board.empty:
        return board
    names = {f"aulc_{key}_mean": "mean", f"aulc_{key}_ci_low": "ci_low", f"aulc_{key}_ci_high": "ci_high",
             f"aulc_{key}_std": "std", f"delta_{key}": "delta", f"delta_{key}_ci_low": "delta_ci_low",
             f"delta_{key}_ci_high": "delta_ci_high", f"n_pairs_{key}": "n_pairs", f"p_{key}": "p",
             f"p_{key}_holm": "p_holm"}
    out = board.drop(columns=["p_vs_random", "p_holm"], errors="ignore").rename(columns=names)
    out["half_width"] = (out["ci_high"] - out["ci_low"]) / 2
    out["metric"] = key
    order = ["dataset", "method", *(["config"] if allow_mixed else []), "strategy", "loss", "metric", "n_seeds",
             "mean", "half_width", "ci_low", "ci_high", "std", "baseline", "delta", "delta_ci_low", "delta_ci_high",
             "n_pairs", "p", "p_holm", "rank", "rank_best", "rank_worst", "synthetic", "pool_rois_visible"]
    return out[order].reset_index(drop=True)
