"""``xalbench new-plugin``: what it writes for each kind, what it refuses (one line, exit 2, nothing
written), and that the shipped template is exactly its output (so the two cannot drift).

Regenerate the shipped template after changing a template: ``python tests/scaffold/test_scaffold.py``.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

from xalbench.cli import main
from xalbench.scaffold import KINDS, plan, render

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "plugins" / "xalbench-plugin-template"
TEMPLATE_ARGS = ("template-least-confident", "strategy", "xalbench-plugin-template")
NOT_GENERATED = {"tox.ini"}  # the template's own fresh-environment runner
IGNORED_PARTS = {"__pycache__", ".tox", ".venv", "build", "dist", ".pytest_cache", ".ruff_cache"}


def _shipped_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not IGNORED_PARTS & set(p.parts) and not any(x.endswith(".egg-info") for x in p.parts)}


def test_the_shipped_template_is_the_scaffold_output() -> None:
    files = render(plan(*TEMPLATE_ARGS))
    differing = [rel for rel, text in files.items()
                 if not (TEMPLATE / rel).is_file() or (TEMPLATE / rel).read_text(encoding="utf-8") != text]
    assert not differing, f"{differing} differ from the scaffold's output; run `python {Path(__file__).relative_to(REPO)}`"
    assert _shipped_files(TEMPLATE) - set(files) == NOT_GENERATED
    strategy = files["src/xalbench_plugin_template/strategy.py"]
    assert "def scores(self, ctx" in strategy and "def query" not in strategy  # the preferred way


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_a_complete_distribution(kind: str) -> None:
    names = plan(f"my-{kind}", kind)
    files = render(names)
    pkg = "xalbench_my_" + kind
    expected = {"pyproject.toml", "README.md", ".gitignore", ".github/workflows/ci.yml", f"src/{pkg}/__init__.py",
                f"src/{pkg}/plugin.py", f"src/{pkg}/{kind}.py", f"tests/test_{pkg}.py"}
    if kind in ("explainer", "metric"):
        expected.add(f"try-my-{kind}.toml")
    assert set(files) == expected
    for rel, text in files.items():
        assert "$" not in text.replace("${{", ""), f"{rel}: an unfilled template field"
        if rel.endswith(".py"):
            ast.parse(text, rel)
        if rel.endswith(".toml"):
            tomllib.loads(text)
    project = tomllib.loads(files["pyproject.toml"])["project"]
    assert project["name"] == f"xalbench-my-{kind}"
    assert project["entry-points"]["xalbench"] == {pkg: pkg}
    assert any(d.startswith("xalbench>=") for d in project["dependencies"])
    assert f'name = "my-{kind}"' in files[f"src/{pkg}/{kind}.py"]
    assert "pip install -e" in files[".github/workflows/ci.yml"] and "python -m pytest" in files[".github/workflows/ci.yml"]
    readme = files["README.md"]
    if kind in ("strategy", "loss"):
        for step in ("xalbench check-plugin", "xalbench run --suite", "leaderboard submit", "leaderboard check"):
            assert step in readme, (kind, step)
    kit = {"strategy": "parametrize_with_checks", "loss": "parametrize_with_loss_checks",
           "explainer": "parametrize_with_explainer_checks", "metric": "def test_values_by_hand"}[kind]
    assert kit in files[f"tests/test_{pkg}.py"]


@pytest.mark.parametrize("kind", KINDS)
def test_code_lines_fit_120_columns_for_the_longest_name(kind: str) -> None:
    longest = "a" * 10 + "-" + "b" * 29  # 40 characters, the limit
    for rel, text in render(plan(longest, kind)).items():
        if rel.endswith((".py", ".toml")):
            too_long = [i for i, line in enumerate(text.splitlines(), 1) if len(line) > 120]
            assert not too_long, (rel, too_long)


def test_new_plugin_writes_the_distribution(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out"
    target.mkdir()  # an existing empty folder is fine
    assert main(["new-plugin", "fresh-idea", "--kind", "loss", "--dir", str(target)]) == 0
    out = capsys.readouterr().out
    assert "src/xalbench_fresh_idea/loss.py" in out and (target / "src/xalbench_fresh_idea/loss.py").is_file()
    assert (target / "tests/test_xalbench_fresh_idea.py").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["My_Strategy"], "is not a slug"),
    (["2d-first"], "is not a slug"),
    (["a--b"], "is not a slug"),
    (["ok-name", "--dist", "Bad Dist"], "--dist 'Bad Dist' is not a slug"),
    (["entropy"], "strategy 'entropy' is already registered by xalbench"),
    (["dice", "--kind", "loss"], "loss 'dice' is already registered"),
    (["gradcam", "--kind", "explainer"], "explainer 'gradcam' is already registered"),
    (["accuracy", "--kind", "metric"], "metric 'accuracy' is already registered"),
    (["soft-dice", "--kind", "metric"], "metric 'soft_dice' is already registered"),
    (["bacc", "--kind", "metric"], "metric key 'bacc' (aulc_bacc) is already used by metric 'balanced_accuracy'"),
    (["ok-name", "--dist", "xalbench-plugin-template"], "'xalbench-plugin-template' is already installed"),
])
def test_refusals_are_one_line_exit_2_and_write_nothing(args: list[str], message: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out"
    assert main(["new-plugin", *args, "--dir", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0, err
    assert not target.exists()


def test_a_non_empty_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["new-plugin", "fresh-idea", "--dir", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_name_is_checked_against_its_own_kind_only(tmp_path: Path) -> None:
    # `dice` is a loss and a metric, not a strategy: as a strategy it is free
    assert main(["new-plugin", "dice", "--kind", "strategy", "--dir", str(tmp_path / "d")]) == 0


def _regenerate_template() -> None:
    for rel, text in render(plan(*TEMPLATE_ARGS)).items():
        path = TEMPLATE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {TEMPLATE}", file=sys.stderr)


if __name__ == "__main__":
    _regenerate_template()
