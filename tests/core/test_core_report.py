"""Reporter: leaderboard numbers, paired tests, formats and plots from result files only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from xalbench.cli import main
from xalbench.report.tables import holm
from xalbench.results import SCHEMA_VERSION, atomic_write_json


def fake_result(method: str, strategy: str, seed: int, accs: list[float], dices: list[float], status: str = "ok"):
    rounds = [{"round": i, "n_labelled": 10 * (i + 1), "metrics": {"accuracy": a, "dice": d, "auc": a},
               "queried": [], "timings": {}} for i, (a, d) in enumerate(zip(accs, dices, strict=True))]
    from xalbench.metrics import aulc

    x = [r["n_labelled"] for r in rounds]
    return {"schema": SCHEMA_VERSION, "status": status,
            "cell": {"dataset": "d", "method": method, "strategy": strategy, "loss": "ce", "seed": seed,
                     "key": f"d__{method}__seed{seed}"},
            "rounds": rounds, "provenance": {"synthetic": True},
            "summary": {"aulc_acc": aulc(x, accs), "aulc_dice": aulc(x, dices), "aulc_auc": aulc(x, accs),
                        "final_acc": accs[-1], "final_auc": accs[-1], "final_dice": dices[-1]}}


@pytest.fixture
def run_dir(tmp_path):
    rng = np.random.default_rng(0)
    for seed in range(4):
        base = rng.uniform(0.4, 0.5)
        atomic_write_json(tmp_path / "cells" / f"r{seed}.json",
                          fake_result("random+ce", "random", seed, [base, base + 0.1], [0.2, 0.3]))
        atomic_write_json(tmp_path / "cells" / f"e{seed}.json",
                          fake_result("entropy+ce", "entropy", seed, [base, base + 0.2 + 0.01 * seed], [0.3, 0.4]))
    failed = fake_result("bad+ce", "bad", 0, [0.1], [0.1], status="failed")
    failed["error"] = {"type": "StrategyContractError", "message": "strategy contract violated [count]: 3 != 2"}
    atomic_write_json(tmp_path / "cells" / "bad.json", failed)
    return tmp_path


def test_holm_by_hand() -> None:
    # sorted p: 0.01, 0.02, 0.04 → ×3, ×2, ×1 = 0.03, 0.04, 0.04 (monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert np.isnan(holm([float("nan"), 0.5])[0])


def test_leaderboard_json_numbers_and_paired_test(run_dir, capsys) -> None:
    assert main(["report", str(run_dir), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in data["leaderboard"]}
    assert rows["entropy+ce"]["rank"] == 1 and rows["random+ce"]["rank"] == 2
    rnd = np.random.default_rng(0)
    bases = [rnd.uniform(0.4, 0.5) for _ in range(4)]
    a_e = [b + (0.2 + 0.01 * s) / 2 for s, b in enumerate(bases)]
    a_r = [b + 0.05 for b in bases]
    assert rows["entropy+ce"]["aulc_acc_mean"] == pytest.approx(np.mean(a_e))
    assert rows["entropy+ce"]["p_vs_random"] == pytest.approx(stats.ttest_rel(a_e, a_r).pvalue)
    assert rows["entropy+ce"]["p_holm"] == pytest.approx(rows["entropy+ce"]["p_vs_random"])  # one comparison
    assert data["problems"][0]["status"] == "failed"
    assert "synthetic" in data["datasets"][0]


def test_markdown_csv_html_and_plots(run_dir, tmp_path, capsys) -> None:
    assert main(["report", str(run_dir)]) == 0
    md = capsys.readouterr().out
    assert "AULC_acc" in md and "AULC_dice" in md and "Failed (1)" in md and "synthetic" in md
    assert main(["report", str(run_dir), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("dataset,method")
    assert main(["report", str(run_dir), "--format", "html", "--plots", str(tmp_path / "p")]) == 0
    assert "<table" in capsys.readouterr().out
    pngs = sorted(p.name for p in (tmp_path / "p").glob("*.png"))
    assert pngs == ["curves_d.png", "plane_d.png"]
    assert (tmp_path / "p" / "curves_d.png").stat().st_size > 5000


def test_report_on_missing_dir_is_one_line_exit_2(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "xalbench run" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a leaderboard that cannot be misread
def _two_seed_dir(tmp_path, identity_epochs=(2, 2)):
    for seed in range(2):
        for method, strategy, gain in (("random+ce", "random", 0.0), ("entropy+ce", "entropy", 0.05)):
            r = fake_result(method, strategy, seed, [0.4 + gain, 0.5 + gain + 0.01 * seed], [0.2, 0.3])
            r["identity"] = {"training": {"epochs": identity_epochs[seed] if method == "entropy+ce" else 2},
                             "seed": seed}
            atomic_write_json(tmp_path / "cells" / f"{method}{seed}.json", r)
    return tmp_path


def test_p_values_need_three_seeds_and_effects_have_intervals(tmp_path, capsys) -> None:
    run = _two_seed_dir(tmp_path)
    assert main(["report", str(run), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in data["leaderboard"]}
    e = rows["entropy+ce"]["display"]
    assert e["p(acc)"] == "n/a (2 seeds)"
    assert e["Δacc vs random+ce"].startswith("+0.0") and "[" in e["Δacc vs random+ce"]
    assert rows["random+ce"]["display"]["Δacc vs random+ce"] == "—"


def test_overlapping_intervals_share_a_rank_range() -> None:
    from xalbench.report.tables import rank_ranges

    # A and B overlap, C is clearly below both
    ranges = rank_ranges([0.80, 0.78, 0.50], [0.75, 0.74, 0.45], [0.85, 0.82, 0.55])
    assert ranges == [(1, 2), (1, 2), (3, 3)]
    # lower is better: negated
    assert rank_ranges([0.1, 0.5], [0.05, 0.45], [0.15, 0.55], higher_is_better=False) == [(1, 1), (2, 2)]


def test_mixed_configurations_are_an_error_unless_allowed(tmp_path, capsys) -> None:
    run = _two_seed_dir(tmp_path, identity_epochs=(2, 3))
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "entropy+ce" in err and "entropy+ce0.json" in err and "--allow-mixed" in err
    assert main(["report", str(run), "--allow-mixed"]) == 0
    assert "| config |" in capsys.readouterr().out


def test_every_format_has_the_displayed_columns(run_dir, capsys) -> None:
    assert main(["report", str(run_dir), "--format", "json"]) == 0
    columns = json.loads(capsys.readouterr().out)["columns"]
    assert main(["report", str(run_dir), "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert all(c in header for c in columns)
    assert main(["report", str(run_dir)]) == 0
    md = capsys.readouterr().out
    assert all(f" {c} " in md for c in columns)
    assert "DESIGN" not in md and ".md" not in md.split("## ")[-1]  # points at nothing the repository lacks


def test_html_report_is_self_contained_with_embedded_plots(run_dir, capsys) -> None:
    assert main(["report", str(run_dir), "--format", "html"]) == 0
    html = capsys.readouterr().out
    assert html.count("data:image/png;base64,") == 2  # learning curves and the accuracy-vs-Dice plane
    assert "Content-Security-Policy" in html and "<script" not in html and "http://" not in html
    assert "suite hash" in html and "synthetic" in html


def test_html_escapes_hostile_method_names(tmp_path, capsys) -> None:
    atomic_write_json(tmp_path / "cells" / "x.json",
                      fake_result("<script>alert(1)</script>", "random", 0, [0.4, 0.5], [0.1, 0.2]))
    assert main(["report", str(tmp_path), "--format", "html"]) == 0
    html = capsys.readouterr().out
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_format_declares_the_plots_and_findings_it_wants(run_dir) -> None:
    """Embedded plots and findings follow the format's declarations, not its name."""
    import xalbench
    from xalbench.plugins import get_plugin_manager, load_registry
    from xalbench.report.render import render_report

    class Inventory(xalbench.ReportFormat):
        name = "inventory"
        summary = "what the report carries"
        embeds_plots = True

        def render(self, report):
            return f"{len(report.plots)} plots"

    class Plugin:
        @xalbench.hookimpl
        def register_report_formats(self, register):
            register(Inventory)

    registry = load_registry(get_plugin_manager(extra=[Plugin()]))
    assert render_report(run_dir, "inventory", registry=registry) == "2 plots"
    assert render_report(run_dir, "md", registry=registry).count("data:image/png") == 0
