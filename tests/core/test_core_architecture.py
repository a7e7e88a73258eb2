"""The architecture's promises: one explicit registry, registered metrics / report formats /
commands, lifecycle hooks, the allow-list, small harness modules, a torch-free ``--help``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

import xalbench
from tests.conftest import tiny_suite_text
from xalbench.cli import main
from xalbench.plugins import PluginSelection, get_plugin_manager, load_registry


class EchoMetric(xalbench.Metric):
    """Fraction of test samples predicted as class 0 (a metric a third party could add)."""

    name: ClassVar[str] = "class0-share"
    key: ClassVar[str] = "c0"
    display: ClassVar[str] = "class0"
    summary: ClassVar[str] = "share of class-0 predictions"
    default: ClassVar[bool] = False

    def compute(self, ev):
        return float((ev.probs.argmax(1) == 0).mean())


class Recorder:
    """A plugin object listening to every lifecycle hook and adding a command and a report format."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @xalbench.hookimpl
    def register_metrics(self, register):
        register(EchoMetric)

    @xalbench.hookimpl
    def run_started(self, run):
        self.calls.append(f"run_started:{len(run.cells)}")

    @xalbench.hookimpl
    def cell_started(self, cell):
        self.calls.append(f"cell_started:{cell.key}")

    @xalbench.hookimpl
    def round_finished(self, cell, round):
        self.calls.append(f"round_finished:{round['round']}")

    @xalbench.hookimpl
    def cell_finished(self, cell, result):
        self.calls.append(f"cell_finished:{result['status']}")

    @xalbench.hookimpl
    def run_finished(self, run, results):
        self.calls.append(f"run_finished:{len(results)}")


def test_programmatic_run_with_an_extra_plugin_and_lifecycle_hooks(tmp_path) -> None:
    recorder = Recorder()
    registry = load_registry(get_plugin_manager(extra=[recorder]))
    suite = tmp_path / "tiny.toml"
    suite.write_text(tiny_suite_text(["random"], rounds=1).replace("[training]", '[evaluation]\nmetrics = ["class0-share"]\n\n[training]'))
    results = xalbench.run(str(suite), registry=registry, out_dir=str(tmp_path / "out"), seeds=[0], isolation="inline")
    assert [r["status"] for r in results] == ["ok"]
    summary = results[0]["summary"]
    assert 0 <= summary["aulc_c0"] <= 1 and "final_c0" in summary  # the registered metric got an AULC
    assert recorder.calls == ["run_started:1", "cell_started:lesions__random+ce__seed0", "round_finished:0",
                              "round_finished:1", "cell_finished:ok", "run_finished:1"]


def test_a_failing_listener_never_fails_the_run(tmp_path) -> None:
    class Broken:
        @xalbench.hookimpl
        def round_finished(self, cell, round):
            raise RuntimeError("listener bug")

    registry = load_registry(get_plugin_manager(extra=[Broken()]))
    suite = tmp_path / "tiny.toml"
    suite.write_text(tiny_suite_text(["random"], rounds=1))
    with pytest.warns(RuntimeWarning, match="listener bug"):
        results = xalbench.run(str(suite), registry=registry, out_dir=str(tmp_path / "out"), seeds=[0],
                               isolation="inline")
    assert results[0]["status"] == "ok"


PLUGIN = '''
import xalbench
from xalbench.commands import Command

class Shout(xalbench.ReportFormat):
    name = "shout"
    summary = "upper-case markdown"
    def render(self, report):
        return "\\n".join(r["method"].upper() for r in report.rows)

def add_arguments(parser):
    parser.add_argument("word")

def hello(args):
    print("hello " + args.word)
    return 0

@xalbench.hookimpl
def register_report_formats(register):
    register(Shout)

@xalbench.hookimpl
def register_commands(register):
    register(Command("hello", "say hello", add_arguments, hello))
'''


def test_plugins_add_report_formats_and_commands(fake_dist, tmp_path, capsys) -> None:
    fake_dist("xalbench-shout", "xalbench_shout", PLUGIN)
    assert main(["hello", "world"]) == 0
    assert capsys.readouterr().out.strip() == "hello world"
    from tests.core.test_core_report import fake_result
    from xalbench.results import atomic_write_json

    atomic_write_json(tmp_path / "cells" / "a.json", fake_result("random+ce", "random", 0, [0.4, 0.5], [0.1, 0.2]))
    assert main(["report", str(tmp_path), "--format", "shout"]) == 0
    assert capsys.readouterr().out.strip() == "RANDOM+CE"
    assert main(["report", str(tmp_path), "--format", "shuot"]) == 2
    assert "did you mean 'shout'" in capsys.readouterr().err


def test_allow_list_loads_exactly_the_named_plugins(fake_dist) -> None:
    fake_dist("xalbench-shout", "xalbench_shout", PLUGIN)
    everything = PluginSelection().registry()
    assert "shout" in everything.names("report_format")
    only_core = PluginSelection(allow=("xalbench-egal",)).registry()
    assert "shout" not in only_core.names("report_format")
    assert "md" in only_core.names("report_format")  # built-ins always load
    assert "egal" in only_core.names("strategy") and "aeig" not in only_core.names("strategy")
    from_env = PluginSelection.from_env({"XALBENCH_PLUGINS": "xalbench-shout"})
    assert from_env.allow == ("xalbench-shout",) and "shout" in from_env.registry().names("report_format")


def test_help_imports_no_torch() -> None:
    code = ("import sys\nfrom xalbench.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "for cmd in ('run', 'report', 'plugins', 'suites', 'data', 'check-plugin', 'leaderboard'):\n"
            "    try:\n        main([cmd, '--help'])\n    except SystemExit:\n        pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "NO-TORCH", proc.stderr


def test_builtin_commands_register_as_a_plugin_does() -> None:
    """xalbench's own commands come through its ``register_commands`` (entry point ``builtin_commands``);
    the CLI lists them without loading the registry."""
    import tomllib

    import xalbench.cli.plugin
    from xalbench.cli import builtin_commands

    names = [c.name for c in builtin_commands()]
    assert names == ["run", "report", "suites", "plugins", "data", "check-plugin", "leaderboard", "new-plugin"]
    project = tomllib.loads((Path(xalbench.__file__).parents[1] / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["xalbench"]["builtin_commands"] == "xalbench.cli.plugin"
    registry = load_registry(get_plugin_manager(load_entrypoints=False, extra=[xalbench.cli.plugin]))
    assert registry.names("command") == sorted(names)


def test_every_option_has_help_text() -> None:
    from xalbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"`xalbench {name} {action.option_strings[0]}` has no help text"


def test_a_kind_is_one_hookspec_plus_one_line(capsys) -> None:
    """Every registration hookspec has its kind in ``HOOK_KINDS``; the registry's kinds and the
    ``--kind`` choices of ``xalbench plugins`` are derived from it, so they cannot drift."""
    from xalbench import hookspecs, registry
    from xalbench.cli import build_parser
    from xalbench.plugins import HOOK_KINDS

    assert set(HOOK_KINDS) == {n for n in dir(hookspecs) if n.startswith("register_")}
    assert registry.KINDS == tuple(HOOK_KINDS.values()) and "finding" in registry.KINDS
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    kind = next(a for a in sub.choices["plugins"]._actions if a.dest == "kind")
    assert tuple(kind.choices) == registry.KINDS and all(k in kind.help for k in registry.KINDS)
    assert main(["plugins", "--kind", "finding", "--json"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert {"sal-rq1", "egal", "aeig", "due", "gestalt"} <= names


def test_harness_modules_are_small() -> None:
    root = Path(xalbench.__file__).parent / "harness"
    sizes = {p.name: len(p.read_text().splitlines()) for p in root.glob("*.py")}
    assert max(sizes.values()) <= 260, sizes


def test_plugins_listing_fits_100_columns_and_show_prints_options(capsys) -> None:
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert main(["plugins", "show", "dice"]) == 0
    shown = capsys.readouterr().out
    assert "alpha: float = 0.1" in shown and "EG-AL" in shown
    assert main(["plugins", "show", "entrpy"]) == 2
    assert "did you mean 'entropy'" in capsys.readouterr().err


def test_suites_listing_shows_cells_json(capsys) -> None:
    assert main(["suites", "--json"]) == 0
    rows = {r["suite"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["smoke"]["cells"] == 16 and rows["smoke"]["seeds"] == 2


LAZY_LOSS = '''
import torch
import xalbench
from xalbench import hookimpl

class Lazy(xalbench.Loss):
    name = "lazy-loss"
    summary = "claims to need masks and ignores them"
    needs_masks = True

    def __call__(self, model, batch):
        return xalbench.LossOutput(torch.nn.functional.cross_entropy(model(batch.images), batch.labels))

@hookimpl
def register_losses(register):
    register(Lazy)
'''


def test_check_plugin_runs_the_loss_kit_on_third_party_losses(fake_dist, capsys) -> None:
    fake_dist("xalbench-lazy", "xalbench_lazy", LAZY_LOSS)
    assert main(["check-plugin", "xalbench-lazy"]) == 1
    out = capsys.readouterr().out
    assert "lazy-loss" in out and "failed" in out
    assert main(["check-plugin", "no-such-component"]) == 2


#: Layers from the top (a higher number may import a lower one, never the reverse); the longest prefix
#: names a module's layer. docs/architecture.md draws the same table.
LAYERS = {
    "xalbench": 20, "xalbench.cli": 16, "xalbench.leaderboard": 15, "xalbench.scaffold": 15, "xalbench.api": 14,
    "xalbench.runner": 13, "xalbench.progress": 13, "xalbench.planning": 12, "xalbench.execution": 12,
    "xalbench.testing": 11, "xalbench.report": 10, "xalbench.power": 10, "xalbench.tuning": 9, "xalbench.harness": 7,
    "xalbench.sandbox": 6, "xalbench.confinement": 5,
    "xalbench.strategies": 4, "xalbench.explain": 4, "xalbench.losses": 4, "xalbench.data": 4, "xalbench.models": 4,
    "xalbench.metrics": 4, "xalbench.training": 4, "xalbench.suites": 4, "xalbench.harness.budget": 4,
    "xalbench.base": 3, "xalbench.selection": 3, "xalbench.metrics.base": 3, "xalbench.training.base": 3,
    "xalbench.execution.base": 3, "xalbench.commands": 3, "xalbench.suite": 3,
    "xalbench.hookspecs": 2, "xalbench.plugins": 2, "xalbench.registry": 2,
    "xalbench.results": 1, "xalbench.sealing": 1, "xalbench.seeding": 1, "xalbench.lifecycle": 1, "xalbench.utils": 1,
    "xalbench.errors": 0, "xalbench.options": 0,
}


def _layer(module: str) -> int:
    return LAYERS[max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)]


def test_no_import_points_up_a_layer() -> None:
    """Every import (module level or inside a function; not under TYPE_CHECKING) of every xalbench module
    goes to its own layer or one below — e.g. the harness never imports planning, the sandbox never the
    harness, a component never the harness, a contract never a built-in."""
    from xalbench.harness.sources import SourceHashes

    hashes = SourceHashes()
    root = Path(xalbench.__file__).parent
    up = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for imported in sorted(hashes.imports(module)):
            if (imported.startswith("xalbench") and hashes.file(imported) is not None
                    and not module.startswith(imported + ".") and _layer(imported) > _layer(module)):
                up.append(f"{module} -> {imported}")
    assert up == []
