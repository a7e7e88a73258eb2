"""Build the shared :class:`Report` of a results directory (checked, then tabulated once)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from xalbench.confinement.apply import describe
from xalbench.errors import ConfigError
from xalbench.report.base import Column, Report
from xalbench.report.cells import Cell, RunCells
from xalbench.report.paired import DEFAULT_DELTA
from xalbench.report.power import power_notes
from xalbench.report.tables import MIN_SEEDS_FOR_TEST, cells_frame, failures, leaderboard, metric_keys
from xalbench.results import DamagedResultWarning, iter_results, read_json
from xalbench.tuning.report import tuning_notes

__all__ = ["build_report", "check_mixed", "load_results"]


def load_results(run_dir: str | Path, damaged: list[Path] | None = None,
                 reasons: dict[Path, str] | None = None) -> list[dict[str, Any]]:
    """Every finished cell of ``run_dir``; damaged or forged files are skipped (listed in ``damaged``,
    why in ``reasons``)."""
    if not Path(run_dir).is_dir():
        raise ConfigError(f"results directory {run_dir} does not exist; run `xalbench run --suite NAME --out {run_dir}` first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DamagedResultWarning)
        results = list(iter_results(run_dir, damaged=damaged, reasons=reasons))
    if not results:
        raise ConfigError(f"no finished cells under {run_dir}; run `xalbench run --suite NAME --out {run_dir}` first")
    return results


def check_mixed(cells: pd.DataFrame) -> None:
    """Cells of one (dataset, method) must share one configuration (identity minus seed)."""
    for (dataset, method), g in cells[cells["config"] != ""].groupby(["dataset", "method"]):
        configs = g["config"].unique()
        if len(configs) > 1:
            files = ", ".join(sorted(Path(p).name for p in g["path"] if p))
            raise ConfigError(f"{dataset} / {method}: cells ran under {len(configs)} different configurations "
                              f"({files}); rerun them with one configuration, or pass --allow-mixed to rank them "
                              "side by side with a config column")


def _metric_info(keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Display name, format, direction and headline flag of each summary key (from the registry)."""
    info = {k: {"display": k, "fmt": ".3f", "direction": "max", "headline": k in ("acc", "dice"), "name": k}
            for k in keys}
    try:
        from xalbench.plugins import PluginSelection

        registry = PluginSelection.from_env().registry()
        for name in registry.names("metric"):
            cls = registry.get("metric", name)
            k = cls.summary_key()
            if k in info:
                info[k] = {"display": cls.column(), "fmt": cls.fmt, "direction": cls.direction,
                           "headline": bool(cls.headline), "name": name}
    except Exception:  # noqa: BLE001 - a report must render even where plugins do not load
        pass
    return info


def _fmt(value: float, fmt: str, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = format(value, fmt)
    return ("+" + text) if signed and value >= 0 else text


def _ci(mean: float, lo: float, hi: float, fmt: str) -> str:
    if math.isnan(mean):
        return "n/a"
    if math.isnan(lo):
        return _fmt(mean, fmt)
    return f"{_fmt(mean, fmt)} ± {format((hi - lo) / 2, fmt)}"


def _delta(row: pd.Series, k: str, fmt: str) -> str:
    d = row.get(f"delta_{k}", float("nan"))
    if math.isnan(d):
        return "—" if row["method"] == row.get("baseline") else "n/a"
    lo, hi = row[f"delta_{k}_ci_low"], row[f"delta_{k}_ci_high"]
    if math.isnan(lo):
        return _fmt(d, fmt, signed=True)
    return f"{_fmt(d, fmt, signed=True)} [{_fmt(lo, fmt, signed=True)}, {_fmt(hi, fmt, signed=True)}]"


def _p(row: pd.Series, k: str) -> str:
    if row["method"] == row.get("baseline"):
        return "—"
    n = int(row.get(f"n_pairs_{k}", 0) or 0)
    if n < MIN_SEEDS_FOR_TEST:
        return f"n/a ({n} seed{'s' if n != 1 else ''})"
    p = row.get(f"p_{k}_holm", float("nan"))
    if math.isnan(p):
        return "n/a"
    return f"{p:.3g}{' *' if p < 0.05 else ''}"


def _rank(row: pd.Series) -> str:
    best, worst = int(row.get("rank_best", row["rank"])), int(row.get("rank_worst", row["rank"]))
    return str(best) if best == worst else f"{best}–{worst}"


def _run_json(run_dir: Path) -> dict[str, Any]:
    if (run_dir / "run.json").exists():
        try:
            run = read_json(run_dir / "run.json")
        except ValueError:
            return {}
        return run if isinstance(run, dict) else {}
    return {}


def _seed_counts(results: list[dict[str, Any]], run: dict[str, Any]) -> tuple[dict[str, str], str]:
    """Per dataset: finished seeds (of the planned ones, and the range over methods when they differ);
    and, for a run that stopped early, what it could and could not reach."""
    seeds: dict[str, dict[str, set[int]]] = {}
    for r in results:
        if r.get("status") == "ok":
            c = r["cell"]
            seeds.setdefault(c["dataset"], {}).setdefault(c["method"], set()).add(int(c["seed"]))
    planned = len(run.get("suite", {}).get("seeds") or []) if isinstance(run.get("suite"), dict) else 0
    out = {}
    for ds, by_method in sorted(seeds.items()):
        n = len(set().union(*by_method.values()))
        counts = sorted({len(v) for v in by_method.values()})
        spread = f" ({counts[0]}–{counts[-1]} per method)" if len(counts) > 1 else ""
        out[ds] = f"{n}{f' of {planned} planned' if planned and n != planned else ''}{spread}"
    status = run.get("status") if isinstance(run.get("status"), dict) else {}
    done = {r["cell"]["key"] for r in results}
    missing = [k for k in status if k not in done]
    declared = _declared_seeds(run.get("suite") if isinstance(run.get("suite"), dict) else {})
    reasons = []
    if missing:
        reasons.append(f"{len(missing)} of {len(status)} planned cells have no result (rerun the same command "
                       "to finish)")
    if declared and planned and planned < declared:
        reasons.append(f"it planned {planned} of the {declared} seeds its suite declares (--seeds / --n-seeds)")
    early = ""
    if reasons:
        early = ("the run stopped early: " + "; ".join(reasons) + ". A question whose comparisons lack seeds stays "
                 "inconclusive, and its power note says how many seeds would decide it")
    return out, early


def _declared_seeds(suite: dict[str, Any]) -> int | None:
    """How many seeds the run's suite file declares (``None`` if the file is not readable here)."""
    source = str(suite.get("source") or "")
    if not source.endswith(".toml") or not Path(source).is_file():
        return None
    from xalbench.errors import XalbenchError
    from xalbench.suite import parse_suite

    try:
        return len(parse_suite(Path(source).read_text(encoding="utf-8"), where=source).seeds)
    except (OSError, XalbenchError):
        return None


def _header(results: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    run = _run_json(run_dir)
    suite = run.get("suite", {}) if isinstance(run, dict) else {}
    versions: dict[str, set[str]] = {}
    isolation: set[str] = set()
    confinement: dict[str, set[str]] = {"cells": set(), "strategies": set()}
    suite_hashes: set[str] = set()
    for r in results:
        prov = r.get("provenance", {})
        for dist, ver in prov.get("environment", {}).get("plugin_distributions", {}).items():
            versions.setdefault(dist, set()).add(ver)
        if prov.get("isolation"):
            isolation.add(prov["isolation"])
        if "confinement" in prov:
            conf = prov["confinement"] or {}
            confinement["cells"].add(describe(conf.get("cell")))
            confinement["strategies"].add(describe(conf.get("strategy")))
        if r.get("suite_hash"):
            suite_hashes.add(r["suite_hash"])
    per_dataset, early = _seed_counts(results, run)
    return {
        "suite": suite.get("name") or ", ".join(sorted({r["cell"].get("suite", "") for r in results} - {""})) or "?",
        "suite_hash": ", ".join(sorted(suite_hashes)) or "?",
        "seeds": sorted({r["cell"]["seed"] for r in results}),
        "seeds_per_dataset": per_dataset,
        "stopped_early": early,
        "versions": {d: ", ".join(sorted(v)) for d, v in sorted(versions.items())},
        "isolation": ", ".join(sorted(isolation)) or "unknown",
        "confinement": {k: " | ".join(sorted(v)) for k, v in confinement.items() if v},
        "metrics_requested": list(suite.get("metrics", [])),
        "findings_delta": (suite.get("findings") or {}).get("delta"),
    }


def build_report(run_dir: str | Path, *, test: str = "ttest", allow_mixed: bool = False,
                 plots_dir: str | Path | None = None, embed_plots: bool = False, findings: bool = False,
                 delta: float | None = None) -> Report:
    """Read, check and tabulate ``run_dir`` (damaged files are skipped and listed in ``damaged``);
    ``findings`` answers the registered papers' questions from the cells (:mod:`xalbench.report.findings`)
    at the smallest effect of interest ``delta`` (default: the suite's ``[findings] delta``, else
    :data:`~xalbench.report.paired.DEFAULT_DELTA`)."""
    damaged: list[Path] = []
    reasons: dict[Path, str] = {}
    results = load_results(run_dir, damaged, reasons)
    cells = cells_frame(results)
    if not allow_mixed:
        check_mixed(cells)
    keys = metric_keys(results)
    info = _metric_info(keys)
    header = _header(results, Path(run_dir))
    shown = [k for k in keys if info[k]["headline"] or info[k]["name"] in header["metrics_requested"]]
    group = ("dataset", "method", "config") if allow_mixed else ("dataset", "method")
    board = leaderboard(cells, test=test, keys=keys, directions={k: v["direction"] for k, v in info.items()},  # type: ignore[arg-type]
                        group=group)
    columns = [Column("dataset", "dataset"), Column("method", "method"),
               Column("rank", "rank", "by AULC accuracy; a range where 95 % intervals overlap")]
    if allow_mixed:
        columns.append(Column("config", "config", "configuration hash (identity without the seed)"))
    for k in shown:
        d = info[k]["display"]
        columns += [Column(f"aulc_{k}", f"AULC_{d}", "mean ± 95 % interval half-width over seeds"),
                    Column(f"delta_{k}", f"Δ{d} vs random+ce", "paired mean difference [95 % interval]"),
                    Column(f"p_{k}", f"p({d})", f"paired test, Holm-corrected per dataset; needs ≥ {MIN_SEEDS_FOR_TEST} seeds")]
    columns += [Column("final_acc", "final_acc", "test accuracy after the last round"),
                Column("seeds", "seeds", "seeds per method")]
    has_budget = not board.empty and "budget95_reached" in board and board["budget95_acc_frac_mean"].notna().any()
    if has_budget:
        columns.append(Column("budget95", "to 95 % of full data", "labelled fraction reaching 95 % of full-data accuracy"))
    rows: list[dict[str, str]] = []
    for _, row in board.iterrows():
        disp = {"dataset": row["dataset"], "method": row["method"] + (" †" if row.get("pool_rois_visible") else ""),
                "rank": _rank(row), "final_acc": _fmt(row.get("final_acc_mean", float("nan")), ".3f"),
                "seeds": str(int(row["n_seeds"]))}
        if allow_mixed:
            disp["config"] = str(row.get("config", ""))
        for k in shown:
            fmt = info[k]["fmt"]
            disp[f"aulc_{k}"] = _ci(row[f"aulc_{k}_mean"], row[f"aulc_{k}_ci_low"], row[f"aulc_{k}_ci_high"], fmt)
            disp[f"delta_{k}"] = _delta(row, k, fmt)
            disp[f"p_{k}"] = _p(row, k)
        if has_budget:
            reached = int(row["budget95_reached"])
            disp["budget95"] = ("not reached" if reached == 0 else
                                f"{100 * row['budget95_acc_frac_mean']:.0f} % ({reached}/{int(row['n_seeds'])})")
        rows.append(disp)
    datasets = []
    for ds, g in cells.groupby("dataset"):
        syn = g["synthetic"].dropna()
        kind = "synthetic (embedded)" if len(syn) and bool(syn.all()) else ("real" if len(syn) else "unknown")
        datasets.append({"dataset": ds, "synthetic": kind, "cells": int(len(g)),
                         "not_applicable": int((g["status"] == "skipped").sum()),
                         "failed": int((g["status"] == "failed").sum())})
    notes = [f"{c.header}: {c.note}" for c in columns if c.note]
    notes.append("n/a (k seeds): a p-value needs at least "
                 f"{MIN_SEEDS_FOR_TEST} paired seeds; effect sizes (Δ with its interval) are always shown.")
    if any(r.get("pool_rois_visible") for _, r in board.iterrows()):
        notes.append("†: the strategy saw the pool's expert ROIs (a visible-mask track); compare with care.")
    if delta is None:
        delta = header["findings_delta"] if header["findings_delta"] is not None else DEFAULT_DELTA
    header["findings_delta"] = delta
    ok = RunCells([Cell.from_result(r) for r in results if r.get("status") == "ok"], {}, {}, delta)
    notes += power_notes(ok, "aulc_acc") + tuning_notes(results)
    blocks = []
    if findings:
        from xalbench.report.findings import findings as paper_findings

        blocks = paper_findings(results, delta=delta)
    report = Report(run_dir=str(run_dir), header=header, datasets=datasets, columns=columns, rows=rows, raw=board,
                    problems=failures(cells), notes=notes, methods=_methods(results), damaged=damaged,
                    damaged_reasons=reasons, findings=blocks)
    if plots_dir is not None or embed_plots:
        from xalbench.report.plots import make_plots

        figures = make_plots(results, board, keys=keys, info=info)
        report.plots = figures
        if plots_dir is not None:
            out = Path(plots_dir)
            out.mkdir(parents=True, exist_ok=True)
            for name, png in figures.items():
                (out / name).write_bytes(png)
                report.plot_paths.append(out / name)
    return report


def _methods(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for r in results:
        c = r["cell"]
        if c["method"] in seen:
            continue
        comps = r.get("provenance", {}).get("components", {})
        seen[c["method"]] = {"method": c["method"], "strategy": c.get("strategy", ""), "loss": c.get("loss", ""),
                             "trainer": c.get("trainer", "standard"), "mask_source": c.get("mask_source", "none"),
                             "distributions": sorted({f"{v['distribution']} {v['version']}" for v in comps.values()})}
    return [seen[k] for k in sorted(seen)]
