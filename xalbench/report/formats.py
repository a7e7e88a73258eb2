"""The built-in report formats: ``md``, ``csv``, ``json`` and ``html`` — four renderings of one table."""

from __future__ import annotations

import base64
import json
import math
from typing import Any, ClassVar

import pandas as pd

from xalbench.report.base import Report, ReportFormat

__all__ = ["BUILTIN_FORMATS", "CsvFormat", "HtmlFormat", "JsonFormat", "MarkdownFormat", "flat_table"]


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _header_lines(report: Report) -> list[str]:
    h = report.header
    versions = "; ".join(f"{d} {v}" for d, v in h["versions"].items()) or "unknown"
    lines = [f"suite **{h['suite']}** (hash {h['suite_hash']}), seeds {', '.join(map(str, h['seeds']))}, "
             f"isolation: {h['isolation']}", f"versions: {versions}"]
    conf = h.get("confinement") or {}
    if conf:
        lines.append("kernel confinement: " + "; ".join(f"{k}: {v}" for k, v in conf.items()))
    per_dataset = h.get("seeds_per_dataset") or {}
    if per_dataset:
        lines.append("seeds per dataset: " + "; ".join(f"{ds} {n}" for ds, n in per_dataset.items()))
    if h.get("stopped_early"):
        lines.append(f"**{h['stopped_early']}**")
    return lines


def flat_table(report: Report) -> pd.DataFrame:
    """The displayed columns (by header) followed by every raw column not already shown."""
    shown = pd.DataFrame([{c.header: row.get(c.key, "") for c in report.columns} for row in report.rows])
    raw = report.raw.reset_index(drop=True)
    extra = [c for c in raw.columns if c not in shown.columns]
    return pd.concat([shown, raw[extra]], axis=1) if not shown.empty else raw


class MarkdownFormat(ReportFormat):
    name: ClassVar[str] = "md"
    summary: ClassVar[str] = "Markdown: a provenance header, one leaderboard per dataset, notes, problems"
    suffix: ClassVar[str] = ".md"

    def render(self, report: Report) -> str:
        lines = ["# xalbench leaderboard", ""] + _header_lines(report) + [""]
        headers = [c.header for c in report.columns]
        for ds in report.datasets:
            lines += [f"## {ds['dataset']} ({ds['synthetic']})", ""]
            rows = report.dataset_rows(ds["dataset"])
            if rows:
                lines.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
                lines.append("|" + "|".join("---" for _ in headers) + "|")
                for row in rows:
                    lines.append("| " + " | ".join(_md_cell(row.get(c.key, "")) for c in report.columns) + " |")
            else:
                lines.append("_no finished cells_")
            lines.append("")
        lines += ["Notes:", ""] + [f"- {_md_cell(n)}" for n in report.notes] + [""]
        if report.findings:
            delta = report.header.get("findings_delta")
            lines += ["## Findings", "", f"Verdicts at the smallest effect of interest δ = {delta:g} "
                      "(reproduced: 95 % interval of Δ above 0; contradicted: below 0; not reproduced: "
                      "not above 0 and below δ; Holm within a block; see docs/findings.md).", ""]
        for block in report.findings:
            lines += [f"### {block['title']}", "", f"**{block['verdict']}** — {block['text']}", ""]
            if block.get("power"):
                lines += [block["power"], ""]
        if not report.problems.empty:
            n_fail = int((report.problems["status"] == "failed").sum())
            n_skip = int((report.problems["status"] == "skipped").sum())
            lines += [f"## Failed ({n_fail}) and not applicable ({n_skip}) cells", "",
                      report.problems.to_markdown(index=False), ""]
        if report.damaged:
            lines += ["## Damaged result files (skipped)", ""] + [f"- {p}" for p in report.damaged] + [""]
        return "\n".join(lines)


class CsvFormat(ReportFormat):
    name: ClassVar[str] = "csv"
    summary: ClassVar[str] = "CSV: the displayed columns plus every raw statistic, one row per dataset and method"
    suffix: ClassVar[str] = ".csv"

    def render(self, report: Report) -> str:
        return flat_table(report).to_csv(index=False)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class JsonFormat(ReportFormat):
    name: ClassVar[str] = "json"
    summary: ClassVar[str] = "JSON: header, leaderboard rows (raw numbers + the displayed strings), problems, notes"
    suffix: ClassVar[str] = ".json"

    def render(self, report: Report) -> str:
        raw = report.raw.reset_index(drop=True)
        rows = []
        for i, row in enumerate(report.rows):
            entry = {k: _json_safe(v) for k, v in (raw.iloc[i].to_dict().items() if i < len(raw) else [])}
            entry["display"] = {c.header: row.get(c.key, "") for c in report.columns}
            rows.append(entry)
        return json.dumps({"header": report.header, "columns": [c.header for c in report.columns],
                           "leaderboard": rows,
                           "problems": json.loads(report.problems.to_json(orient="records")),
                           "datasets": [f"{d['dataset']}: {d['synthetic']}" for d in report.datasets],
                           "notes": report.notes, "findings": report.findings,
                           "damaged": [str(p) for p in report.damaged]}, indent=1, default=str)


class HtmlFormat(ReportFormat):
    name: ClassVar[str] = "html"
    summary: ClassVar[str] = "HTML: self-contained page (jinja2, autoescaped, embedded plots, strict CSP), opens offline"
    suffix: ClassVar[str] = ".html"
    embeds_plots: ClassVar[bool] = True
    wants_findings: ClassVar[bool] = True

    def render(self, report: Report) -> str:
        from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

        env = Environment(loader=PackageLoader("xalbench.report", "templates"),
                          autoescape=select_autoescape(default=True, default_for_string=True),
                          undefined=StrictUndefined, keep_trailing_newline=True)
        plots = [{"name": n, "data": base64.b64encode(png).decode("ascii")} for n, png in sorted(report.plots.items())]
        problems = report.problems.to_dict(orient="records")
        return env.get_template("report.html.j2").render(
            report=report, header_lines=_header_lines(report), plots=plots, problems=problems,
            datasets=report.datasets, columns=report.columns)


BUILTIN_FORMATS = (MarkdownFormat, CsvFormat, JsonFormat, HtmlFormat)
