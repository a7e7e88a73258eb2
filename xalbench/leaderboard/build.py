"""``build [--check]``: regenerate ``README.md`` (its generated section), ``index.html`` and
``results.csv`` of the board from the accepted submissions and verification records.

Every submission is re-checked first (a failing one fails the build). Output is a pure
function of the inputs: total sort order, fixed float formatting, LF line endings, no
clock, PNGs without metadata — so a rebuild is byte-identical and ``--check`` (rebuild in
memory and compare) fails on any difference.

Escaping: HTML through jinja2 with autoescape on for every template and string
(``select_autoescape(default=True, default_for_string=True)``, ``StrictUndefined``), the
only unescaped inserts being the stylesheet, the sorting script and the CSP built from
their SHA-256; markdown by :func:`md_escape` (``\\ | < > ` * _ [ ]`` and newlines); CSV
cells that a spreadsheet would read as a formula get a leading apostrophe.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xalbench.leaderboard import CANARY_METHOD
from xalbench.leaderboard.adapter import Adapter
from xalbench.leaderboard.check import CheckedSubmission, check_submission
from xalbench.leaderboard.stats import Row, Stat, board_rows

if TYPE_CHECKING:
    from xalbench.harness.runtime import Runtime

__all__ = ["BuildError", "collect", "render", "build", "md_escape", "csv_text", "render_html", "render_markdown",
           "BEGIN", "END", "CSP_TEMPLATE"]

BEGIN = "<!-- BEGIN GENERATED LEADERBOARD (xalbench leaderboard build) -->"
END = "<!-- END GENERATED LEADERBOARD -->"
CSP_TEMPLATE = ("default-src 'none'; img-src data:; style-src '{style}'; script-src '{script}'; "
                "base-uri 'none'; form-action 'none'")
_TEMPLATES = Path(__file__).parent / "templates"


class BuildError(Exception):
    exit_code = 1


def _sha(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


# ---------------------------------------------------------------- formatting
def md_escape(text: str) -> str:
    out = " ".join(str(text).split())  # newlines and runs of whitespace → one space
    out = out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\`*_[]|":
        out = out.replace(ch, "\\" + ch)
    return out


def _fmt(stat: Stat, signed: bool = False) -> str:
    if stat.mean is None:
        return "—"
    mean = f"{stat.mean:+.3f}" if signed else f"{stat.mean:.3f}"
    return mean if stat.ci is None else f"{mean} ± {stat.ci:.3f}"


def _p_text(r: Row, k: str) -> str:
    """The paired test's Holm-corrected p (``n/a (2 seeds)`` below 3 seeds, ``—`` for the canary)."""
    from xalbench.report.tables import MIN_SEEDS_FOR_TEST

    if r.method == CANARY_METHOD or r.note:
        return "—"
    if r.n_seeds < MIN_SEEDS_FOR_TEST:
        return f"n/a ({r.n_seeds} seed{'s' if r.n_seeds != 1 else ''})"
    p = r.p.get(k)
    return "n/a" if p is None else f"{p:.3g}{' *' if p < 0.05 else ''}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _sort(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def _label(key: str) -> str:
    return {"acc": "acc", "dice": "Dice", "auc": "AUC"}.get(key, key)


# ---------------------------------------------------------------- collecting
def collect(board: Path, reference: dict[str, Any], runtime: Runtime,
            data_root: str | None = None) -> list[CheckedSubmission]:
    """Re-check every submission under ``board/submissions``; any rejection fails the build."""
    base = board / "submissions"
    folders = sorted(p for p in base.glob("*/*") if p.is_dir()) if base.is_dir() else []
    subs, failures = [], []
    for folder in folders:
        report = check_submission(folder, reference=reference, runtime=runtime, data_root=data_root)
        if report.ok and report.submission is not None:
            subs.append(report.submission)
        else:
            failures.extend(report.lines())
    if failures:
        raise BuildError("submissions fail `check`:\n" + "\n".join(failures))
    return subs


def verifications(board: Path, subs: Sequence[CheckedSubmission]) -> dict[str, dict[str, Any] | None]:
    """Verification records that match their submission's current manifest hash."""
    from xalbench.leaderboard.verify import record_path

    out: dict[str, dict[str, Any] | None] = {}
    for sub in subs:
        path = record_path(board, sub.manifest)
        record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if record and record.get("manifest_sha256") == sub.manifest_sha256 and \
                record.get("status") in ("verified", "flagged"):
            out[sub.manifest_sha256] = record
        else:
            out[sub.manifest_sha256] = None
    return out


def headline_keys(runtime: Runtime) -> list[str]:
    """The keys of the registered headline AULC metrics (``acc`` first; ``acc`` alone if none)."""
    keys = [m.key for m in Adapter(runtime).metrics.values() if m.aulc and m.headline]
    return sorted(keys, key=lambda k: (k != "acc", k)) or ["acc"]


def _groups(rows: Sequence[Row]) -> list[tuple[str, str, list[Row]]]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.suite, r.dataset), []).append(r)
    return [(s, d, rs) for (s, d), rs in groups.items()]


# ---------------------------------------------------------------- renderers
def _columns(keys: Sequence[str]) -> list[str]:
    cols = ["#", "status", "method", "submitter", "plugin"]
    for k in keys:
        cols += [f"AULC {_label(k)}", f"Δ {_label(k)} vs {CANARY_METHOD}", f"p {_label(k)}"]
    return cols + [f"held-out AULC {_label(keys[0])}", "seeds"]


def _cell(text: str, sort: str, cls: str = "", main: str | None = None, sub: str = "") -> dict[str, str]:
    """One table cell: ``text`` (markdown, one line); on the page ``main`` with ``sub`` as a small second line."""
    return {"text": text, "sort": sort, "cls": cls, "main": text if main is None else main, "sub": sub}


def _cells(i: int, r: Row, keys: Sequence[str]) -> list[dict[str, str]]:
    """A ranked row's cells (rows with a ``note`` are n/a: :func:`_na_item`, below the table)."""
    out = [_cell(str(i), str(i), "n"), _cell(r.status, r.status, r.status),
           _cell(r.method + (" †" if r.pool_masks_visible else ""), r.method, "t"), _cell(r.submitter, r.submitter, "t"),
           _cell(f"{r.plugin} {r.version}", f"{r.plugin} {r.version}", "t", r.plugin, r.version)]
    for k in keys:
        out.append(_cell(_fmt(r.aulc[k]), _sort(r.aulc[k].mean), "n"))
        out.append(_cell(_fmt(r.delta[k], signed=True), _sort(r.delta[k].mean), "n"))
        p = _p_text(r, k)
        short = p.startswith("n/a (")  # "n/a (2 seeds)" → "n/a" over "2 seeds"
        out.append(_cell(p, _sort(r.p.get(k)), "n", "n/a" if short else p, p[5:-1] if short else ""))
    held, sub = r.held_out.get(keys[0]), r.held_out_submitted.get(keys[0])
    text = "—" if held is None else f"{held:.3f} (submitted {_num(sub)})"
    out.append(_cell(text, _sort(held), "n", "—" if held is None else f"{held:.3f}",
                     "" if held is None else f"submitted {_num(sub)}"))
    out.append(_cell(str(r.n_seeds), str(r.n_seeds), "n"))
    return out


def _na_item(r: Row) -> dict[str, str]:
    """A method the harness does not run on the dataset: listed under the table with the harness's reason."""
    return {"method": r.method, "entry": f"{r.plugin} {r.version}", "submitter": r.submitter, "reason": r.note}


def render_html(rows: Sequence[Row], keys: Sequence[str]) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    from xalbench.leaderboard.plots import entry_plot

    env = Environment(loader=FileSystemLoader(str(_TEMPLATES)), undefined=StrictUndefined,
                      autoescape=select_autoescape(default=True, default_for_string=True), keep_trailing_newline=True)
    js = (_TEMPLATES / "sort.js").read_text(encoding="utf-8")
    css = (_TEMPLATES / "board.css").read_text(encoding="utf-8")
    tables = []
    for n, (suite, dataset, group) in enumerate(_groups(rows)):
        png = entry_plot(group, keys[0], f"{suite} · {dataset}")
        ranked = [r for r in group if not r.note]
        tables.append({"id": f"t{n}", "suite": suite, "dataset": dataset, "key": keys[0],
                       "rows": [_cells(i, r, keys) for i, r in enumerate(ranked, 1)],
                       "na": [_na_item(r) for r in group if r.note],
                       "png": base64.b64encode(png).decode("ascii")})
    csp = CSP_TEMPLATE.format(style=_sha(css), script=_sha(js))
    return env.get_template("index.html.j2").render(tables=tables, columns=_columns(keys), js=js, css=css, csp=csp,
                                                    dagger=any(r.pool_masks_visible for r in rows))


def render_markdown(rows: Sequence[Row], keys: Sequence[str]) -> str:
    lines = [BEGIN, "", "## Results", ""]
    if not rows:
        lines += ["No accepted submissions yet.", ""]
    cols = _columns(keys)
    for suite, dataset, group in _groups(rows):
        lines += [f"### {md_escape(suite)} · {md_escape(dataset)}", "",
                  "| " + " | ".join(md_escape(c) for c in cols) + " |",
                  "|" + "|".join("---" for _ in cols) + "|"]
        for i, r in enumerate([r for r in group if not r.note], 1):
            lines.append("| " + " | ".join(md_escape(c["text"]) for c in _cells(i, r, keys)) + " |")
        lines.append("")
        na = [_na_item(r) for r in group if r.note]
        if na:
            lines += [f"Not run on {md_escape(dataset)} (the harness's reason):", ""]
            lines += [f"* {md_escape(x['method'])} ({md_escape(x['entry'])}, {md_escape(x['submitter'])}): "
                      f"n/a: {md_escape(x['reason'])}" for x in na]
            lines.append("")
    if any(r.pool_masks_visible for r in rows):
        lines += ["† the strategy saw the pool's ROI masks (a suite track that shows them only to strategies that "
                  "need them).", ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _csv_safe(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_text(rows: Sequence[Row], keys: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["suite", "dataset", "status", "submitter", "plugin", "version", "method", "pool_masks_visible",
              "n_seeds"]
    for k in keys:
        header += [f"aulc_{k}_mean", f"aulc_{k}_ci95", f"delta_{k}_mean", f"delta_{k}_ci95", f"p_{k}_holm", f"held_out_{k}",
                   f"held_out_submitted_{k}"]
    writer.writerow(header + ["note", "manifest_sha256"])
    for r in rows:
        line = [_csv_safe(x) for x in (r.suite, r.dataset, r.status, r.submitter, r.plugin, r.version, r.method)]
        line += ["true" if r.pool_masks_visible else "false", str(r.n_seeds)]
        for k in keys:
            a, d = r.aulc[k], r.delta[k]
            line += [_sort(a.mean), _sort(a.ci), _sort(d.mean), _sort(d.ci), _sort(r.p.get(k)), _sort(r.held_out.get(k)),
                     _sort(r.held_out_submitted.get(k))]
        writer.writerow(line + [_csv_safe(r.note), r.manifest_sha256])
    return buf.getvalue()


def _all_keys(subs: Sequence[CheckedSubmission]) -> list[str]:
    keys = {k for s in subs for c in s.cells for k in c.aulc}
    return sorted(keys, key=lambda k: (k != "acc", k != "dice", k))


def render(board: Path, subs: Sequence[CheckedSubmission], readme: str, runtime: Runtime) -> dict[str, bytes]:
    """The three generated files' bytes (README keeps everything outside its generated section)."""
    if BEGIN not in readme or END not in readme:
        raise BuildError(f"{board / 'README.md'} lacks the generated-section markers {BEGIN!r} … {END!r}")
    records = verifications(board, subs)
    keys = headline_keys(runtime)
    rows = board_rows(subs, records, keys)
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    all_keys = _all_keys(subs) or keys
    csv_rows = board_rows(subs, records, all_keys)
    return {
        "README.md": (head + render_markdown(rows, keys).rstrip("\n") + tail).encode("utf-8"),
        "index.html": render_html(rows, keys).encode("utf-8"),
        "results.csv": csv_text(csv_rows, all_keys).encode("utf-8"),
    }


def build(board: str | Path, *, reference: dict[str, Any], runtime: Runtime, check: bool = False,
          data_root: str | None = None) -> list[str]:
    """Write (or with ``check`` compare) the generated files, every submission re-checked against the
    components installed in ``runtime``; returns the names that changed/differ."""
    board = Path(board)
    readme_path = board / "README.md"
    readme = readme_path.read_text(encoding="utf-8") if readme_path.is_file() else ""
    outputs = render(board, collect(board, reference, runtime, data_root), readme, runtime)
    changed = [name for name, data in outputs.items()
               if not (board / name).is_file() or (board / name).read_bytes() != data]
    if not check:
        for name in changed:
            (board / name).write_bytes(outputs[name])
    return changed
