"""Named budget protocols (the papers' settings), their resolution to counts, and the initial set.

* ``egal`` — EG-AL: 150 class-balanced initial samples, 7 rounds × 60 (→ 570).
* ``sal``  — SAL: 5 % random initial, 20 rounds × 5 % of the pool, human masks
  until 20 % of the pool is labelled (the change point C).
* ``aeig`` — AEIG: 10 % random initial, 6 rounds × 6 %.

A suite starts from one of them and may override any field (CPU-scaled variants); the
suite's description must say what was scaled. Integers are counts, floats in (0, 1) are
fractions of the train pool. Rounds stop early when the pool is exhausted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from xalbench.errors import ConfigError
from xalbench.hookspecs import Register, hookimpl

if TYPE_CHECKING:
    from xalbench.base import Split
    from xalbench.registry import Registry
    from xalbench.suite import SuiteSpec

__all__ = ["Protocol", "BUILTIN_PROTOCOLS", "initial_set", "resolve_count", "resolve_protocol"]


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str
    initial: int | float
    rounds: int
    query_size: int | float
    initial_sampling: Literal["random", "class-balanced"] = "random"
    mask_budget: float | None = None
    summary: str = ""
    paper: str = ""

    def with_overrides(self, overrides: Mapping[str, Any], *, where: str) -> Protocol:
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise ConfigError(f"{where}: unknown protocol key(s) {unknown}; valid keys: {', '.join(sorted(valid))}")
        out = dataclasses.replace(self, **dict(overrides))
        if out.initial_sampling not in ("random", "class-balanced"):
            raise ConfigError(f"{where}: initial_sampling must be 'random' or 'class-balanced'")
        if out.rounds < 0:
            raise ConfigError(f"{where}: rounds must be ≥ 0")
        return out

    def counts(self, n_pool: int) -> tuple[int, int]:
        """(initial count, query size) for a pool of ``n_pool`` samples."""
        return resolve_count(self.initial, n_pool), resolve_count(self.query_size, n_pool)

    def mask_limit(self, n_pool: int) -> int | None:
        """Max number of labelled samples whose human mask is revealed (``None`` = all)."""
        return None if self.mask_budget is None else resolve_count(self.mask_budget, n_pool)


def resolve_count(value: int | float, n_pool: int) -> int:
    """Integers are counts; floats in (0, 1] are fractions of the pool (rounded, ≥ 1)."""
    if isinstance(value, bool):
        raise ConfigError(f"budget value {value!r} must be a count or a fraction")
    if isinstance(value, int):
        return max(0, min(value, n_pool))
    if 0 < value <= 1:
        return max(1, int(round(value * n_pool)))
    raise ConfigError(f"budget fraction {value!r} must lie in (0, 1]; use an integer for a count")


BUILTIN_PROTOCOLS = (
    Protocol("egal", 150, 7, 60, "class-balanced", None,
             "EG-AL: 150 class-balanced + 7 rounds × 60 = 570 labelled",
             "Uddin et al., Learning to Select Like Humans (EG-AL)"),
    Protocol("sal", 0.05, 20, 0.05, "random", 0.20,
             "SAL: 5 % initial + 20 rounds × 5 %, human masks until 20 % labelled",
             "Boyd et al., Increasing Interpretability of Neural Networks by Approximating Human Visual Saliency (SAL)"),
    Protocol("aeig", 0.10, 6, 0.06, "random", None,
             "AEIG: 10 % initial + 6 rounds × 6 %",
             "Mehta et al., Information Gain Sampling for Active Learning in Medical Image Classification (AEIG)"),
)


def resolve_protocol(registry: Registry, suite: SuiteSpec) -> Protocol:
    """The suite's protocol: its registered base with the suite's overrides applied."""
    base = registry.get("protocol", suite.protocol_base)
    return base.with_overrides(suite.protocol_overrides, where=f"suite {suite.name!r} [protocol]")


def initial_set(pool: Split, n: int, how: str, rng: np.random.Generator, task: str) -> np.ndarray:
    """Initial labelled pool indices; ``class-balanced`` takes ⌊n/K⌋ per class, rest at random."""
    n_pool = len(pool)
    if how == "class-balanced" and task == "multi-class":
        labels = pool.labels.numpy()
        classes = np.unique(labels)
        per = n // len(classes)
        chosen: list[int] = []
        for c in classes:
            members = np.flatnonzero(labels == c)
            take = min(per, members.size)
            chosen.extend(rng.choice(members, size=take, replace=False).tolist())
        rest = np.setdiff1d(np.arange(n_pool), np.asarray(chosen, dtype=np.int64))
        extra = n - len(chosen)
        if extra > 0:
            chosen.extend(rng.choice(rest, size=min(extra, rest.size), replace=False).tolist())
        return np.asarray(chosen, dtype=np.int64)
    return rng.choice(n_pool, size=min(n, n_pool), replace=False).astype(np.int64)


@hookimpl
def register_protocols(register: Register) -> None:
    for protocol in BUILTIN_PROTOCOLS:
        register(protocol)
