"""Equal tuning budget: spaces, samplers, the val-only objective, the cache, tuned cell identities."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from xalbench.base import Split
from xalbench.errors import ConfigError
from xalbench.harness.runtime import Runtime
from xalbench.planning import plan_suite
from xalbench.plugins import PluginSelection
from xalbench.suite import ComponentSpec, MethodSpec, parse_suite
from xalbench.tuning import choose, method_space
from xalbench.tuning import tuner as tuner_mod
from xalbench.tuning.space import Param, apply_params

pytestmark = pytest.mark.cost(13)  # seconds on 2 cores: files start longest first (tests/conftest.py)

SUITE = """
name = "tune-test"
seeds = [0]
{methods}
[model]
name = "small-cnn"
options = {{ width = 8, n_blocks = 2 }}
[protocol]
base = "aeig"
initial = 16
rounds = 1
query_size = 16
[training]
epochs = 2
batch_size = 16
[[datasets]]
name = "synth-lesion-2d"
label = "lesions"
options = {{ size = 24, n_train = 64, n_val = 32, n_test = 32 }}
[tuning]
{tuning}
"""

GRADIA_CE = """
[[methods]]
strategy = "random"
loss = "gradia"
[[methods]]
strategy = "entropy"
loss = "gradia"
[[methods]]
strategy = "random"
loss = "ce"
[[methods]]
strategy = "random"
loss = "rrr"
"""


@pytest.fixture(scope="module")
def selection() -> PluginSelection:
    return PluginSelection(allow=())  # built-ins only


def _suite(methods: str = GRADIA_CE, tuning: str = "budget = 3") -> Any:
    return parse_suite(SUITE.format(methods=methods, tuning=tuning), where="<test>")


def _plan(suite: Any, out: Path, selection: PluginSelection, **kw: Any) -> Any:
    registry = selection.registry()
    return plan_suite(registry, suite, out_dir=str(out), runtime=Runtime(registry, selection), **kw)


class FakeScore:
    """Counts objective calls per (method, tuning seed); the score prefers small explanation weights."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seeds: list[int] = []

    def __call__(self, registry: Any, suite: Any, dataset: Any, bundle: Any, method: MethodSpec, seed: int,
                 **kw: Any) -> float:
        self.calls[f"{method.strategy.name}+{method.loss.name}"] += 1
        self.seeds.append(seed)
        weight = method.loss.options.get("lam", method.loss.options.get("alpha", 1.0))
        return 1.0 / (1.0 + float(weight))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeScore:
    score = FakeScore()
    monkeypatch.setattr(tuner_mod, "score_candidate", score)
    return score


# ----------------------------------------------------------------------------- suite table
def test_tuning_table_parses_and_round_trips() -> None:
    suite = _suite(tuning='sampler = "tpe"\nbudget = 4\nseeds = [7, 8]\nround = 1\n'
                          '[tuning.spaces.gradia]\nlam = { low = 0.001, high = 1.0, log = true }')
    t = suite.tuning
    assert (t.sampler, t.budget, t.seeds, t.round) == ("tpe", 4, (7, 8), 1)
    assert t.spaces == {"gradia": {"lam": {"low": 0.001, "high": 1.0, "log": True}}}
    from xalbench.suite import SuiteSpec

    assert SuiteSpec.from_dict(dataclasses.asdict(suite)).tuning == t


@pytest.mark.parametrize("text, fragment", [
    ("budget = 0", "tuning.budget"),
    ('sampler = "bayes"', "tuning.sampler"),
    ("seeds = [1, 1]", "tuning.seeds"),
    ("round = -1", "tuning.round"),
    ("trials = 3", "unknown key"),
    ("[tuning.spaces.gradia]\nlam = { low = 0.1, high = 1.0 }", "tpe"),
    ("[tuning.spaces.gradia]\nlam = []", "non-empty"),
])
def test_tuning_table_errors_are_one_line(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        _suite(tuning=text)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_tuning_is_part_of_the_suite_hash() -> None:
    suite = _suite()
    assert dataclasses.replace(suite, tuning=None).config_hash() != suite.config_hash()
    assert dataclasses.replace(suite, tuning=dataclasses.replace(suite.tuning, budget=2)).config_hash() != \
        suite.config_hash()


# ----------------------------------------------------------------------------- spaces
def test_spaces_come_from_components_and_the_suite(selection: PluginSelection) -> None:
    registry = selection.registry()
    suite = _suite(tuning="[tuning.spaces.rrr]\nlam = [0.5, 2.0, 8.0]")
    gradia = MethodSpec(ComponentSpec("random"), ComponentSpec("gradia"))
    rrr = MethodSpec(ComponentSpec("random"), ComponentSpec("rrr"))
    ce = MethodSpec(ComponentSpec("random"), ComponentSpec("ce"))
    assert [(p.key, p.values, p.default) for p in method_space(registry, gradia, suite.tuning)] == [
        ("loss.lam", (0.01, 0.1, 1.0), 1.0)]
    assert method_space(registry, rrr, suite.tuning)[0].values == (0.5, 2.0, 8.0)
    assert method_space(registry, ce, suite.tuning) == []
    bad = _suite(tuning="[tuning.spaces.cyborg]\nalpha = [0.5, 1.5, 0.9]")
    with pytest.raises(ConfigError, match="1.5"):
        method_space(registry, MethodSpec(ComponentSpec("random"), ComponentSpec("cyborg")), bad.tuning)
    unknown = _suite(tuning="[tuning.spaces.gradia]\nlamda = [1.0, 2.0, 3.0]")
    with pytest.raises(ConfigError, match="no option 'lamda'"):
        method_space(registry, gradia, unknown.tuning)


def test_strategy_options_are_tuned_only_after_a_query(selection: PluginSelection) -> None:
    registry = selection.registry()
    m = MethodSpec(ComponentSpec("coreset"), ComponentSpec("gradia"))
    spaces = "[tuning.spaces.coreset]\nchunk_size = [64, 128, 256]"
    at0 = method_space(registry, m, _suite(tuning=spaces).tuning)
    at1 = method_space(registry, m, _suite(tuning="round = 1\n" + spaces).tuning)
    assert [p.key for p in at0] == ["loss.lam"]
    assert [p.key for p in at1] == ["loss.lam", "strategy.chunk_size"]


def test_apply_params_and_tie_break() -> None:
    m = MethodSpec(ComponentSpec("random"), ComponentSpec("gradia", {"cam_target": "label"}))
    tuned = apply_params(m, {"loss.lam": 0.1})
    assert tuned.loss.options == {"cam_target": "label", "lam": 0.1} and m.loss.options == {"cam_target": "label"}
    params = [Param("loss", "gradia", "lam", 1.0, values=(0.01, 0.1, 1.0))]
    trials = [{"number": i, "params": {"loss.lam": v}, "value": s}
              for i, (v, s) in enumerate([(0.01, 0.5), (1.0, 0.5), (0.1, 0.4)])]
    assert choose(trials, params, "max")["params"] == {"loss.lam": 1.0}  # tie → nearest the default
    assert choose(trials, params, "min")["params"] == {"loss.lam": 0.1}
    assert choose([{**t, "value": float("nan")} for t in trials], params, "max") is None


# ----------------------------------------------------------------------------- equal budget
def test_every_tuned_method_gets_the_same_budget(tmp_path: Path, selection: PluginSelection, fake: FakeScore) -> None:
    methods = GRADIA_CE + '[[methods]]\nstrategy = "coreset"\nloss = "cyborg"\n'
    tuning = 'budget = 3\nseeds = [5, 6]\nround = 1\n[tuning.spaces.coreset]\nchunk_size = [64, 128, 256]'
    plan = _plan(_suite(methods, tuning), tmp_path, selection)
    # round 1: every method is its own search; ce has nothing to tune; coreset+cyborg has a 9-point grid
    assert dict(fake.calls) == {"random+gradia": 6, "entropy+gradia": 6, "random+rrr": 6, "coreset+cyborg": 6}
    assert set(fake.seeds) == {5, 6}
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "tuning").glob("*.json"))]
    assert [r["n_trials"] for r in records] == [3, 3, 3, 3]
    assert {r["n_trainings"] for r in records} == {12}  # 3 trials x 2 seeds x (round 1 + 1)
    coreset = next(r for r in records if r["method"] == "coreset+cyborg")
    assert coreset["sampler"] == {"name": "grid", "seed": 0, "grid_size": 9}
    labels = sorted({c.method.display for c in plan.cells})
    assert labels == ["coreset+cyborg", "coreset+cyborg[tuned]", "entropy+gradia", "entropy+gradia[tuned]",
                      "random+ce", "random+gradia", "random+gradia[tuned]", "random+rrr", "random+rrr[tuned]"]


def test_round0_searches_are_shared_by_strategies(tmp_path: Path, selection: PluginSelection,
                                                  fake: FakeScore) -> None:
    _plan(_suite(), tmp_path, selection)
    # random+gradia and entropy+gradia train the same round-0 model: one search of 3 trials
    assert sum(fake.calls.values()) == 6 and sorted(p.name for p in (tmp_path / "tuning").glob("*.json")) == [
        "lesions__gradia.json", "lesions__rrr.json"]


def test_a_grid_smaller_than_the_budget_is_refused(tmp_path: Path, selection: PluginSelection,
                                                    fake: FakeScore) -> None:
    with pytest.raises(ConfigError, match="fewer than the budget"):
        _plan(_suite(tuning="budget = 4"), tmp_path, selection)


def test_optuna_samplers_spend_exactly_the_budget_and_repeat(tmp_path: Path, selection: PluginSelection,
                                                             fake: FakeScore) -> None:
    pytest.importorskip("optuna")
    tuning = 'sampler = "tpe"\nbudget = 5\n[tuning.spaces.gradia]\nlam = { low = 0.001, high = 10.0, log = true }'
    _plan(_suite(tuning=tuning), tmp_path / "a", selection)
    _plan(_suite(tuning=tuning), tmp_path / "b", selection)
    assert fake.calls["random+gradia"] == 10 and fake.calls["random+rrr"] == 10
    a, b = (json.loads((tmp_path / d / "tuning" / "lesions__gradia.json").read_text()) for d in "ab")
    assert [t["params"] for t in a["trials"]] == [t["params"] for t in b["trials"]]  # seeded, sequential
    assert a["sampler"]["name"] == "tpe" and a["sampler"]["n_jobs"] == 1 and "optuna" in a["sampler"]
    assert a["chosen"] == min((t["params"] for t in a["trials"]), key=lambda p: p["loss.lam"])


# ----------------------------------------------------------------------------- cache and identities
def test_searches_are_cached_and_redone_when_their_identity_changes(tmp_path: Path, selection: PluginSelection,
                                                                    fake: FakeScore) -> None:
    first = _plan(_suite(), tmp_path, selection)
    assert sum(fake.calls.values()) == 6
    again = _plan(_suite(), tmp_path, selection)
    assert sum(fake.calls.values()) == 6  # reused
    assert [c.identity for c in again.cells] == [c.identity for c in first.cells]
    changed = _plan(_suite(tuning="budget = 3\nseeds = [3]"), tmp_path, selection)
    assert sum(fake.calls.values()) == 12  # redone, old records kept aside
    assert len(list((tmp_path / "tuning" / ".superseded").glob("*.json"))) == 2
    tuned = {c.method.display: c for c in changed.cells}
    assert tuned["random+gradia[tuned]"].identity_sha256 != {c.method.display: c for c in first.cells}[
        "random+gradia[tuned]"].identity_sha256


def test_tuned_cells_carry_their_chosen_values(tmp_path: Path, selection: PluginSelection, fake: FakeScore) -> None:
    plan = _plan(_suite(), tmp_path, selection)
    cells = {c.method.display: c for c in plan.cells}
    tuned, default = cells["random+gradia[tuned]"], cells["random+gradia"]
    assert tuned.method.loss.options == {"lam": 0.01}  # FakeScore prefers the smallest weight
    assert tuned.identity["tuning"]["chosen"] == {"loss.lam": 0.01}
    assert tuned.identity["method"]["loss"]["options"] == {"lam": 0.01}
    assert "tuning" not in default.identity and tuned.identity_sha256 != default.identity_sha256
    only = _plan(_suite(tuning="budget = 3\nkeep_default = false"), tmp_path / "only", selection)
    assert sorted(c.method.display for c in only.cells) == [
        "entropy+gradia[tuned]", "random+ce", "random+gradia[tuned]", "random+rrr[tuned]"]


def test_a_dry_run_never_searches(tmp_path: Path, selection: PluginSelection, fake: FakeScore) -> None:
    plan = _plan(_suite(), tmp_path, selection, tune=False)
    assert not fake.calls and not (tmp_path / "tuning").exists()
    assert "pending" in {c.method.display: c for c in plan.cells}["random+gradia[tuned]"].identity["tuning"]


# ----------------------------------------------------------------------------- never the test split
def _poison(split: Split) -> Split:
    g = torch.Generator().manual_seed(0)
    return dataclasses.replace(split, images=torch.rand(split.images.shape, generator=g),
                               labels=torch.randint(0, 3, split.labels.shape, generator=g),
                               roi=torch.zeros_like(split.roi))


def test_tuning_never_reads_the_test_split(tmp_path: Path, selection: PluginSelection) -> None:
    """Real searches (tiny data): poisoned test images/labels/ROIs leave every trial's score and the
    chosen values unchanged; poisoned *val* labels change them (the objective reads val)."""
    suite = _suite(GRADIA_CE.split("[[methods]]\nstrategy = \"entropy\"")[0], "budget = 3")
    registry = selection.registry()
    spec = suite.datasets[0]

    def search(poison: str, out: Path) -> dict[str, Any]:
        runtime = Runtime(registry, selection)
        bundle = runtime.dataset(spec, None)
        if poison:
            runtime._datasets[next(iter(runtime._datasets))] = dataclasses.replace(
                bundle, **{poison: _poison(getattr(bundle, poison))})
        plan_suite(registry, suite, out_dir=str(out), runtime=runtime)
        return json.loads((out / "tuning" / "lesions__gradia.json").read_text())

    clean, test_poisoned, val_poisoned = search("", tmp_path / "a"), search("test", tmp_path / "b"), \
        search("val", tmp_path / "c")
    assert [t["scores"] for t in test_poisoned["trials"]] == [t["scores"] for t in clean["trials"]]
    assert test_poisoned["chosen"] == clean["chosen"]
    assert [t["scores"] for t in val_poisoned["trials"]] != [t["scores"] for t in clean["trials"]]


@pytest.mark.slow
def test_searches_in_worker_processes_give_the_same_records(tmp_path: Path, selection: PluginSelection) -> None:
    """Two searches (gradia, rrr) in 2 loky workers vs in this process: identical trials and choices."""
    suite = _suite(GRADIA_CE.replace('strategy = "entropy"', 'strategy = "random"\nlabel = "dup"'), "budget = 3")
    registry = selection.registry()
    for workers, out in ((1, tmp_path / "one"), (2, tmp_path / "two")):
        plan_suite(registry, suite, out_dir=str(out), runtime=Runtime(registry, selection), tuning_workers=workers)

    def records(out: Path) -> list[tuple[Any, ...]]:
        data = [json.loads(p.read_text()) for p in sorted((out / "tuning").glob("*.json"))]
        return [(r["identity_sha256"], r["trials"], r["chosen"]) for r in data]

    assert len(records(tmp_path / "one")) == 2
    assert records(tmp_path / "one") == records(tmp_path / "two")
