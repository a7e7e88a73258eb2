"""Proposers: which parameter values each of a method's ``budget`` trials evaluates.

* ``grid`` — the product of the values, in an order shuffled with ``sampler_seed`` (as Optuna's
  ``GridSampler`` does); the first ``budget`` points are evaluated. A grid smaller than the
  budget is an error: every method must get the same number of trials.
* ``tpe`` / ``random`` — Optuna's ``TPESampler`` / ``RandomSampler`` seeded with
  ``sampler_seed`` through the ask-and-tell interface, sequentially, in memory, for exactly
  ``budget`` trials: the conditions under which a seeded Optuna study repeats bit for bit (no
  parallel trials, no resumed study, no time limit). The sampler's settings and Optuna's
  version are recorded with the result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xalbench.errors import ConfigError
from xalbench.suite import TuningSpec
from xalbench.tuning.space import Param, grid_points

__all__ = ["GridProposer", "OptunaProposer", "make_proposer"]


class GridProposer:
    """The first ``budget`` points of the shuffled grid."""

    def __init__(self, params: list[Param], tuning: TuningSpec, where: str) -> None:
        points = grid_points(params)
        if len(points) < tuning.budget:
            raise ConfigError(f"[tuning] {where}: its grid has {len(points)} point(s), fewer than the budget of "
                              f"{tuning.budget} trials every method gets; give it more values ([tuning.spaces]) or "
                              "lower [tuning] budget")
        order = np.random.default_rng(tuning.sampler_seed).permutation(len(points))
        self.points = [points[i] for i in order[: tuning.budget]]
        self.config = {"name": "grid", "seed": tuning.sampler_seed, "grid_size": len(points)}
        self._next = 0

    def ask(self) -> dict[str, Any]:
        point = self.points[self._next]
        self._next += 1
        return dict(point)

    def tell(self, value: float) -> None:
        """Grid points do not depend on earlier scores."""


class OptunaProposer:
    """Optuna's seeded TPE or random sampler, one trial at a time (ask, evaluate, tell)."""

    def __init__(self, params: list[Param], tuning: TuningSpec, direction: str, where: str) -> None:
        try:
            import optuna
        except ImportError as exc:
            raise ConfigError(f"[tuning] sampler = {tuning.sampler!r} needs Optuna: pip install 'xalbench[tuning]'; "
                              'or use sampler = "grid"') from exc
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if tuning.sampler == "tpe":
            sampler: Any = optuna.samplers.TPESampler(seed=tuning.sampler_seed)
            extra = {"n_startup_trials": 10, "n_ei_candidates": 24}
        else:
            sampler = optuna.samplers.RandomSampler(seed=tuning.sampler_seed)
            extra = {}
        self.study = optuna.create_study(direction="maximize" if direction == "max" else "minimize", sampler=sampler)
        self.distributions: dict[str, Any] = {}
        for p in params:
            if p.values:
                bad = [v for v in p.values if v is not None and not isinstance(v, (bool, int, float, str))]
                if bad:
                    raise ConfigError(f"[tuning] {where}: {p.key} values {bad} are not scalars; Optuna needs "
                                      "numbers, strings or booleans")
                self.distributions[p.key] = optuna.distributions.CategoricalDistribution(list(p.values))
            else:
                assert p.low is not None and p.high is not None
                integer = isinstance(p.default, int) and not isinstance(p.default, bool)
                cls = optuna.distributions.IntDistribution if integer else optuna.distributions.FloatDistribution
                low, high = (int(p.low), int(p.high)) if integer else (p.low, p.high)
                self.distributions[p.key] = cls(low, high, log=p.log)
        self.config = {"name": tuning.sampler, "seed": tuning.sampler_seed, "optuna": optuna.__version__,
                       "n_jobs": 1, "storage": "in-memory", **extra}
        self._trial: Any = None

    def ask(self) -> dict[str, Any]:
        self._trial = self.study.ask(self.distributions)
        return dict(self._trial.params)

    def tell(self, value: float) -> None:
        if value != value:  # NaN: a failed trial (Optuna rejects NaN objective values)
            import optuna

            self.study.tell(self._trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(self._trial, value)


def make_proposer(params: list[Param], tuning: TuningSpec, direction: str, where: str) -> GridProposer | OptunaProposer:
    if tuning.sampler == "grid":
        return GridProposer(params, tuning, where)
    return OptunaProposer(params, tuning, direction, where)
