"""Registry and plugin discovery: provenance, duplicates, did-you-mean, blocking, entry points."""

from __future__ import annotations

import json

import pytest

import xalbench
from xalbench.cli import main
from xalbench.errors import DuplicateComponentError, UnknownComponentError
from xalbench.plugins import get_plugin_manager, load_registry

THIRD_PARTY = """
from dataclasses import dataclass
import xalbench
from xalbench import hookimpl

class Oldest(xalbench.Strategy):
    '''Query the lowest pool indices (a deliberately simple third-party strategy).'''
    name = "oldest-first"
    summary = "Lowest unlabelled pool indices first"
    paper = "Doe et al. 2026"

    def query(self, ctx, k):
        return ctx.unlabelled[:k]

@hookimpl
def register_strategies(register):
    register(Oldest)
"""

DUPLICATE = """
import xalbench
from xalbench import hookimpl

class MyRandom(xalbench.Strategy):
    name = "random"
    def query(self, ctx, k):
        return ctx.unlabelled[:k]

@hookimpl
def register_strategies(register):
    register(MyRandom)
"""


def test_builtins_register_through_entry_points_with_distribution() -> None:
    reg = load_registry()
    rec = reg.record("strategy", "random")
    assert rec.distribution == "xalbench"
    assert rec.plugin.startswith("builtin_")
    kinds = {r.kind for r in reg}
    assert {"strategy", "explainer", "loss", "dataset", "model", "suite", "protocol"} <= kinds


def test_separately_installed_distribution_is_discovered(fake_dist) -> None:
    fake_dist("xalbench-oldest", "xalbench_oldest", THIRD_PARTY, "2.3")
    rec = load_registry().record("strategy", "oldest-first")
    assert (rec.distribution, rec.version, rec.paper) == ("xalbench-oldest", "2.3", "Doe et al. 2026")


def test_duplicate_names_both_distributions(fake_dist) -> None:
    fake_dist("xalbench-dupe", "xalbench_dupe", DUPLICATE, "0.9")
    with pytest.raises(DuplicateComponentError) as err:
        load_registry()
    msg = str(err.value)
    assert "xalbench-dupe 0.9" in msg and f"xalbench {xalbench.__version__}" in msg and "XALBENCH_DISABLE_PLUGINS" in msg


def test_disable_plugins_blocks_by_plugin_or_distribution(fake_dist, monkeypatch) -> None:
    fake_dist("xalbench-dupe", "xalbench_dupe", DUPLICATE, "0.9")
    monkeypatch.setenv("XALBENCH_DISABLE_PLUGINS", "xalbench_dupe")
    assert load_registry().record("strategy", "random").distribution == "xalbench"
    monkeypatch.setenv("XALBENCH_DISABLE_PLUGINS", "xalbench-dupe")
    assert load_registry().record("strategy", "random").distribution == "xalbench"


def test_selection_reads_metadata_only_of_distributions_with_plugins(fake_dist, monkeypatch) -> None:
    """Blocking by distribution name reads the ``Name`` of the distributions that register xalbench plugins
    only (parsing every installed distribution's metadata made each registry cost 3x as much)."""
    import importlib.metadata

    from xalbench.plugins import PluginSelection

    fake_dist("xalbench-dupe", "xalbench_dupe", DUPLICATE, "0.9")
    installed = list(importlib.metadata.distributions())
    read: list[int] = []

    class Watched:
        def __init__(self, index: int, dist: importlib.metadata.Distribution) -> None:
            self.index, self.dist = index, dist

        @property
        def entry_points(self):
            return self.dist.entry_points

        @property
        def metadata(self):
            read.append(self.index)
            return self.dist.metadata

    monkeypatch.setattr(importlib.metadata, "distributions",
                        lambda: [Watched(i, d) for i, d in enumerate(installed)])
    assert PluginSelection(block=("xalbench-dupe",)).blocked_entry_points() == {"xalbench-dupe", "xalbench_dupe"}
    assert PluginSelection(allow=("xalbench-dupe",)).blocked_entry_points().isdisjoint({"xalbench_dupe", "xalbench"})
    assert PluginSelection().blocked_entry_points() == set()
    with_plugins = {i for i, d in enumerate(installed) if any(ep.group == "xalbench" for ep in d.entry_points)}
    assert len(with_plugins) < len(installed) / 2  # most installed distributions have none
    assert read and set(read) <= with_plugins


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(UnknownComponentError) as err:
        load_registry().record("strategy", "entropi")
    assert "did you mean 'entropy'" in str(err.value)
    assert "random" in str(err.value)  # lists the known names


def test_manager_is_fresh_per_call() -> None:
    assert get_plugin_manager() is not get_plugin_manager()


def test_plugins_json_lists_components_with_distribution(capsys) -> None:
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all({"kind", "name", "distribution", "version"} <= set(r) for r in rows)
    count = {k: sum(r["kind"] == k for r in rows) for k in ("strategy", "loss", "explainer", "dataset", "suite", "model")}
    assert count["strategy"] >= 4 and count["model"] >= 2
    assert min(count.values()) >= 1
    explainers = [r for r in rows if r["kind"] == "explainer"]
    assert all("differentiable" in r for r in explainers)


def test_declarations_are_one_list_per_contract(capsys) -> None:
    """Each contract names its capability declarations once: the kits check them, `xalbench plugins`
    lists them (JSON fields and the notes column)."""
    from xalbench.metrics.base import Metric
    from xalbench.testing.component_checks import check_declarations

    for contract in (xalbench.Strategy, xalbench.Loss, xalbench.Explainer, Metric):
        assert contract.declarations and all(hasattr(contract, a) for a in contract.declarations)
    assert "supports_2d" in xalbench.Loss.declarations
    assert main(["plugins", "--json"]) == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(capsys.readouterr().out)}
    entropy, gradcam = rows[("strategy", "entropy")], rows[("explainer", "gradcam")]
    assert (entropy["supports_multilabel"], entropy["requires_pool_masks"]) == (True, False)
    assert entropy["notes"] == "supports_multilabel, supports_3d"
    assert gradcam["differentiable"] is True and rows[("metric", "accuracy")]["notes"].startswith("cheap, default")

    class Vague(xalbench.Strategy):
        name = "vague"
        supports_3d = "yes"

    with pytest.raises(AssertionError, match="supports_3d must be True or False"):
        check_declarations(Vague)
