"""``build``: byte-identical rebuilds, ``--check`` catches any difference, escaping in every output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.leaderboard.conftest import reference


def _build(board: Path, runtime: Any, **kw):
    from xalbench.leaderboard.build import build

    return build(board, reference=reference(), runtime=runtime, **kw)


def test_build_is_byte_identical_and_check_detects_changes(board: Path, runtime: Any) -> None:
    assert sorted(_build(board, runtime)) == ["README.md", "index.html", "results.csv"]
    first = {n: (board / n).read_bytes() for n in ("README.md", "index.html", "results.csv")}
    assert _build(board, runtime) == []  # nothing changed
    assert _build(board, runtime, check=True) == []
    assert {n: (board / n).read_bytes() for n in first} == first
    readme = first["README.md"].decode()
    assert readme.startswith("# Board\n\nHand-written text.") and readme.endswith("More text.\n")
    assert "lbtest-confident+ce" in readme and "self-reported" in readme
    assert "| p acc |" in readme and "n/a (2 seeds)" in readme  # the paired test, as in every report
    html = first["index.html"].decode()
    assert "data:image/png;base64," in html and "sha256-" in html
    rows = list(csv.DictReader(io.StringIO(first["results.csv"].decode())))
    assert [r["method"] for r in rows] == ["lbtest-confident+ce"] and rows[0]["aulc_acc_mean"]

    (board / "index.html").write_bytes(first["index.html"].replace(b"</body>", b"<p>x</p></body>"))
    assert _build(board, runtime, check=True) == ["index.html"]
    (board / "index.html").write_bytes(first["index.html"])


def test_page_shows_only_recomputed_values(board: Path, runtime: Any) -> None:
    """A verification record with a matching manifest hash makes the entry verified and puts the
    held-out score beside the submitted one; a stale record is ignored."""
    from xalbench.leaderboard.check import check_submission
    from xalbench.leaderboard.verify import record_path

    sub = next((board / "submissions").glob("*/*"))
    checked = check_submission(sub, reference=reference(), runtime=runtime).submission
    assert checked is not None
    path = record_path(board, checked.manifest)
    path.parent.mkdir(parents=True)
    held = {"lesions": {"lbtest-confident+ce": {"submitted": {"acc": 0.5}, "held_out": {"acc": 0.4321}}}}
    path.write_text(json.dumps({"manifest_sha256": checked.manifest_sha256, "status": "verified",
                                "held_out": held}), encoding="utf-8")
    _build(board, runtime)
    readme = (board / "README.md").read_text(encoding="utf-8")
    assert "| verified |" in readme and "0.432" in readme
    path.write_text(json.dumps({"manifest_sha256": "0" * 64, "status": "verified", "held_out": held}),
                    encoding="utf-8")
    _build(board, runtime)
    assert "| self-reported |" in (board / "README.md").read_text(encoding="utf-8")


def test_build_fails_on_a_rejected_submission(board: Path, runtime: Any) -> None:
    from xalbench.leaderboard.build import BuildError

    sub = next((board / "submissions").glob("*/*"))
    (sub / "extra.txt").write_text("x", encoding="utf-8")
    with pytest.raises(BuildError, match="path-unexpected-file"):
        _build(board, runtime)


@pytest.mark.parametrize(("text", "escaped"), [
    ("a|b", "a\\|b"), ("<script>", "&lt;script&gt;"), ("`x`", "\\`x\\`"), ("a\nb\r\nc", "a b c"),
    ("[x](javascript:y)", "\\[x\\](javascript:y)"), ("a & b", "a &amp; b"), ("*_", "\\*\\_"),
])
def test_markdown_escaping(text: str, escaped: str) -> None:
    from xalbench.leaderboard.build import md_escape

    assert md_escape(text) == escaped


def test_renderers_escape_hostile_names() -> None:
    from xalbench.leaderboard.build import csv_text, render_markdown
    from xalbench.leaderboard.stats import Row, Stat

    name = "=HYPERLINK(\"x\")|<b>\n`y`"
    row = Row(suite="s", status="self-reported", submitter=name, plugin="p", version="1", dataset="d", method=name,
              n_seeds=2, aulc={"acc": Stat(0.5, 0.1, 2)}, delta={"acc": Stat(0.1, None, 2)}, held_out={"acc": None},
              held_out_submitted={"acc": None}, manifest_sha256="0" * 64)
    md = render_markdown([row], ["acc"])
    table = [line for line in md.splitlines() if line.startswith("| 1 ")]
    assert len(table) == 1 and table[0].count(" | ") == 9  # the pipe did not add a column
    assert "<b>" not in md and "\n`y`" not in md
    parsed = list(csv.reader(io.StringIO(csv_text([row], ["acc"]))))
    assert parsed[1][3].startswith("'=")  # no spreadsheet formula


def test_confidence_interval() -> None:
    from xalbench.leaderboard.stats import mean_ci

    stat = mean_ci([0.4, 0.5, 0.6])
    assert stat.mean == pytest.approx(0.5) and stat.ci == pytest.approx(4.302653 * 0.1 / 3 ** 0.5, rel=1e-5)
    assert mean_ci([0.5]).ci is None and mean_ci([0.5, None]).mean is None


def test_na_rows_and_dagger() -> None:
    """A method the harness skips on a dataset is listed as n/a with its reason; a strategy that saw the
    pool's ROI masks is marked †."""
    from pathlib import Path as P

    from xalbench.leaderboard.build import csv_text, render_markdown
    from xalbench.leaderboard.check import CheckedCell, CheckedSubmission
    from xalbench.leaderboard.stats import board_rows

    manifest = {"submitter": "lab", "plugin": {"name": "xalbench-x", "version": "1.0"}, "suite": {"name": "s"}}
    cells = [CheckedCell("d1", m, s, {"acc": 0.5 + 0.1 * s}, {}, [], m == "x+ce") for m in ("x+ce", "random+ce")
             for s in (0, 1)]
    sub = CheckedSubmission(P("."), manifest, "f" * 64, cells, ["x+ce"], None,
                            [("d2", "x+ce", "strategy 'x' is 2D only")])
    rows = board_rows([sub], {}, ["acc"])
    assert [(r.dataset, r.note, r.pool_masks_visible) for r in rows] == [("d1", "", True),
                                                                          ("d2", "strategy 'x' is 2D only", False)]
    md = render_markdown(rows, ["acc"])
    assert "x+ce †" in md and "n/a: strategy 'x' is 2D only" in md and "† the strategy saw" in md
    assert rows[0].delta["acc"].mean == pytest.approx(0.0)
    assert "strategy 'x' is 2D only" in csv_text(rows, ["acc"])
