"""On 2D data DUE's three losses are one loss: declared (``Loss.equivalent_on``) and checked bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import xalbench
from xalbench.base import DatasetMeta
from xalbench.plugins import load_registry

DUE_LOSSES = ("due", "due-paper", "due-baseline-plus")

SUITE = """
name = "due-2d-equivalence"
description = "random with DUE's three losses on a tiny 2D set"
seeds = [0]
strategy_timeout = 120.0

[[grids]]
strategies = ["random"]
losses = ["due", "due-paper", "due-baseline-plus"]

[model]
name = "small-cnn"
options = { width = 4, n_blocks = 2 }

[explainer]
name = "gradcam"

[protocol]
base = "aeig"
initial = 0.2
rounds = 1
query_size = 0.2

[training]
epochs = 1
batch_size = 8
lr = 0.003

[[datasets]]
name = "synth-lesion-2d"
options = { size = 24, n_train = 40, n_val = 10, n_test = 12, rho = 0.85 }
"""


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def _meta(dims: int) -> DatasetMeta:
    return DatasetMeta("d", "multi-class", ("a", "b"), 1, dims, (1,) + (8,) * dims)


@pytest.mark.parametrize("name", ["due", "due-paper"])
def test_due_losses_declare_baseline_plus_on_2d_data(registry, name):
    loss = registry.create("loss", name, {"lam": 0.1, "eta": 0.2, "n_samples": 2})
    eq = loss.equivalent_on(_meta(2))
    assert eq is not None and eq.name == "due-baseline-plus" and "2D" in eq.reason
    assert dict(eq.options) == registry.create("loss", "due-baseline-plus", {"lam": 0.1, "eta": 0.2}).options.to_dict()
    assert loss.equivalent_on(_meta(3)) is None


def test_baseline_plus_is_the_base_and_other_losses_declare_nothing(registry):
    assert registry.create("loss", "due-baseline-plus").equivalent_on(_meta(2)) is None
    spatial = registry.create("loss", "due-baseline-plus", {"weight_pool": "spatial"}).equivalent_on(_meta(2))
    assert spatial is not None and spatial.options["weight_pool"] == "hw"  # per-depth pooling has no depth on 2D
    assert all(registry.create("loss", n).equivalent_on(_meta(2)) is None for n in ("ce", "dice", "res"))


def test_random_with_due_losses_trains_bitwise_equal_models_on_2d(registry, tmp_path, monkeypatch):
    """Same queries (the strategy's RNG does not depend on the loss) and the same weights after round 1."""
    import xalbench.harness.cell as cell

    weights: dict[str, dict[str, torch.Tensor]] = {}
    original = cell.run_rounds

    def spy(run, querier, store, **kwargs):
        out = original(run, querier, store, **kwargs)
        weights[run.config.method.loss.name] = {k: v.clone() for k, v in run.trained.main.state_dict().items()}
        return out

    monkeypatch.setattr(cell, "run_rounds", spy)
    suite = Path(tmp_path / "suite.toml")
    suite.write_text(SUITE)
    results = [r for name in DUE_LOSSES  # one run each: in one run the planner lists two of them as n/a
               for r in xalbench.run(str(suite), registry=registry, out_dir=str(tmp_path / name), losses=[name],
                                     isolation="inline")]
    assert {r["status"] for r in results} == {"ok"} and set(weights) == set(DUE_LOSSES)
    queried = {r["cell"]["loss"]: [q["queried"] for q in r["rounds"]] for r in results}
    assert queried["due"] == queried["due-paper"] == queried["due-baseline-plus"] and queried["due"][0]
    ref = weights["due-baseline-plus"]
    for name in ("due", "due-paper"):
        assert all(torch.equal(weights[name][k], v) for k, v in ref.items()), name


def test_planner_lists_equal_methods_as_na_only_when_their_equal_runs(registry, tmp_path):
    """On 2D data ``random+due`` and ``random+due-paper`` are n/a beside ``random+due-baseline-plus`` (named in
    the reason); without it in the run they run."""
    from xalbench.planning import load_suite, plan_suite

    suite = Path(tmp_path / "suite.toml")
    suite.write_text(SUITE)
    plan = plan_suite(registry, load_suite(registry, str(suite)), out_dir=str(tmp_path / "out"))
    reasons = {c.method.loss.name: c.skip_reason for c in plan.cells}
    assert reasons["due-baseline-plus"] is None
    for name in ("due", "due-paper"):
        assert "equal by construction to random+due-baseline-plus" in reasons[name], reasons[name]
    alone = plan_suite(registry, load_suite(registry, str(suite)), out_dir=str(tmp_path / "out2"), losses=["due"])
    assert [c.skip_reason for c in alone.cells] == [None]
