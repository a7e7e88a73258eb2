"""Render a run directory's leaderboard: markdown (pandas + tabulate), CSV, JSON, HTML."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from xalbench.errors import ConfigError
from xalbench.report.tables import cells_frame, failures, fmt_pm, leaderboard
from xalbench.results import iter_results

__all__ = ["load_results", "render_report", "display_table"]


def load_results(run_dir: str | Path) -> list[dict[str, Any]]:
    if not Path(run_dir).is_dir():
        raise ConfigError(f"results directory {run_dir} does not exist; run `xalbench run --suite NAME --out {run_dir}` first")
    results = list(iter_results(run_dir))
    if not results:
        raise ConfigError(f"no finished cells under {run_dir}; run `xalbench run --suite NAME --out {run_dir}` first")
    return results


def _p(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    star = " *" if p < 0.05 else ""
    return f"{p:.3g}{star}"


def _budget95(frac: float, reached: int, n: int, has_reference: bool) -> str:
    if not has_reference:
        return "n/a"
    if reached == 0:
        return "not reached"
    return f"{100 * frac:.0f} % ({reached}/{n})"


def display_table(board: pd.DataFrame, references: set[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Human columns: mean ± std strings, p-values with '*' at 0.05; a budget-to-95 % column
    when the suite computed full-data references."""
    if board.empty:
        return board
    table = pd.DataFrame({
        "dataset": board["dataset"],
        "rank": board["rank"],
        "method": board["method"],
        "AULC_acc": [fmt_pm(m, s) for m, s in zip(board["aulc_acc_mean"], board["aulc_acc_std"], strict=True)],
        "AULC_dice": [fmt_pm(m, s) for m, s in zip(board["aulc_dice_mean"], board["aulc_dice_std"], strict=True)],
        "final_acc": [fmt_pm(m, s) for m, s in zip(board["final_acc_mean"], board["final_acc_std"], strict=True)],
        "final_AUC": [fmt_pm(m, s) for m, s in zip(board["final_auc_mean"], board["final_auc_std"], strict=True)],
        "p_vs_random (Holm)": [_p(p) for p in board["p_holm"]],
        "seeds": board["n_seeds"],
    })
    if references:
        table.insert(7, "to 95 % of full data (acc)", [
            _budget95(f, r, n, (d, m) in references)
            for d, m, f, r, n in zip(board["dataset"], board["method"], board["budget95_acc_frac_mean"],
                                     board["budget95_reached"], board["n_seeds"], strict=True)])
    return table


def _dataset_notes(cells: pd.DataFrame) -> list[str]:
    notes = []
    for ds, g in cells.groupby("dataset"):
        syn = g["synthetic"].dropna()
        kind = "synthetic (embedded)" if len(syn) and bool(syn.all()) else ("real" if len(syn) else "unknown")
        notes.append(f"{ds}: {kind}")
    return notes


def render_report(run_dir: str | Path, fmt: str = "md", *, test: str = "ttest") -> str:
    results = load_results(run_dir)
    cells = cells_frame(results)
    board = leaderboard(cells, test=test)  # type: ignore[arg-type]
    bad = failures(cells)
    if fmt == "csv":
        return board.to_csv(index=False)
    if fmt == "json":
        return json.dumps({"leaderboard": json.loads(board.to_json(orient="records")),
                           "problems": json.loads(bad.to_json(orient="records")),
                           "datasets": _dataset_notes(cells)}, indent=1)
    refs = {(r["cell"]["dataset"], r["cell"]["method"]) for r in results
            if r["status"] == "ok" and "reference_acc" in r.get("summary", {})}
    table = display_table(board, refs)
    if fmt == "html":
        body = table.to_html(index=False, escape=True, border=0, classes="leaderboard")
        probs = bad.to_html(index=False, escape=True, border=0) if not bad.empty else "<p>none</p>"
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in _dataset_notes(cells))
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>xalbench report</title>"
                "<style>body{font-family:sans-serif}td,th{padding:2px 8px}</style></head><body>"
                f"<h1>xalbench leaderboard</h1>{body}<h2>Datasets</h2><ul>{notes}</ul>"
                f"<h2>Failed and skipped cells</h2>{probs}</body></html>")
    if fmt != "md":
        raise ConfigError(f"unknown report format {fmt!r}; use md, csv, json or html")
    lines = ["# xalbench leaderboard", ""]
    lines.append(table.to_markdown(index=False) if not table.empty else "_no finished cells_")
    lines += ["", "AULC: normalised trapezoid over labelled-set size (DESIGN.md). p: paired "
              f"{'Wilcoxon signed-rank' if test == 'wilcoxon' else 't-test'} over seeds on AULC_acc against the "
              "random baseline, Holm-corrected per dataset; * = p < 0.05; n/a = not testable.", ""]
    lines += ["Datasets: " + "; ".join(_dataset_notes(cells)), ""]
    if not bad.empty:
        n_fail = int((bad["status"] == "failed").sum())
        n_skip = int((bad["status"] == "skipped").sum())
        lines += [f"## Failed ({n_fail}) and skipped ({n_skip}) cells", "", bad.to_markdown(index=False), ""]
    return "\n".join(lines)
