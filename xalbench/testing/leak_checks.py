"""Leak checks of the conformance kit, and how the kit asks a strategy (in a sandbox, with a time limit).

In a real run a strategy queries from its own sandbox process (:mod:`xalbench.sandbox`): hidden
pool labels and masks are not there to find, and changes to the model or the data die with the
sandbox's copies. A strategy that *tries* still has a bug (or a cheat) that would give it an
unfair advantage wherever the data were reachable — so the kit looks for the attempts, in-process,
where they are visible, and tells the author before submitting:

* :func:`check_picks_ignore_hidden_data` — the picks must not change when only data the strategy
  must not see changes: the pool labels and ROIs behind the round (left reachable on purpose
  through the garbage collector, this check's stack frame and a module-level cache, as they were
  before the sandbox existed; the context itself is built as in a run and holds none of them);
* :func:`check_no_side_effects` — a query leaves the model's non-parameter state (module
  attributes such as a dropout probability, hooks, ``requires_grad`` flags) and every byte of the
  pool images and the val split as it found them;
* :func:`check_sandbox_matches_inline` — the sandbox and the in-process twin pick the same indices
  (a strategy that depends on its process — module-level state, the main script — would not).

Every other query of the kit runs in a fresh sandbox (:func:`sandboxed_query`) with
:func:`time_limit` seconds (:data:`TIME_LIMIT` unless :func:`using_time_limit` says otherwise);
a hung strategy is killed at that limit. Regenerating an embedded synthetic dataset from its
public options is out of the kit's reach (the leaderboard verifies on data seeds submitters
never see).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from xalbench.base import DatasetBundle, DatasetMeta, Split, Strategy
from xalbench.errors import StrategyTimeoutError
from xalbench.sandbox.context import StrategyContext
from xalbench.sandbox.guard import call_strategy
from xalbench.sandbox.session import seeded_torch
from xalbench.testing.contexts import KitRound, make_round
from xalbench.testing.kit import SkipCheck, component_class, fresh

__all__ = [
    "LEAK_CHECKS",
    "TIME_LIMIT",
    "check_no_escape_attempts",
    "check_no_side_effects",
    "check_picks_ignore_hidden_data",
    "check_sandbox_matches_inline",
    "direct_query",
    "sandboxed_query",
    "time_limit",
    "using_time_limit",
]

#: Default seconds a single query on a tiny pool may take before the kit calls it hung.
TIME_LIMIT = 60.0
K = 5
_LIMIT: contextvars.ContextVar[float] = contextvars.ContextVar("xalbench_kit_time_limit", default=TIME_LIMIT)

#: A module-level "cache" the hidden-data check fills while it runs (a stand-in for a harness's).
_PLANTED: dict[str, Any] = {}


def time_limit() -> float:
    """Seconds the kit gives one query now."""
    return _LIMIT.get()


@contextlib.contextmanager
def using_time_limit(seconds: float | None) -> Iterator[None]:
    """Run the kit's checks with ``seconds`` per query (``None``: keep the current limit)."""
    if seconds is not None and not seconds > 0:
        raise ValueError(f"the kit's time limit must be > 0 seconds, got {seconds}")
    token = _LIMIT.set(float(seconds)) if seconds is not None else None
    try:
        yield
    finally:
        if token is not None:
            _LIMIT.reset(token)


def _options(strategy: type[Strategy] | Strategy) -> dict[str, Any] | None:
    """An instance's options (what the sandbox builds its fresh instance from); ``None`` for a class."""
    return None if isinstance(strategy, type) else strategy.options.to_dict()


def sandboxed_query(cls: type[Strategy] | Strategy, kit_round: KitRound, k: int = K) -> np.ndarray:
    """A fresh instance's (the class's defaults, or an instance's options) validated picks for
    ``kit_round``, asked in a fresh sandbox within :func:`time_limit`."""
    return kit_round.query(component_class(cls), k, timeout=time_limit(), options=_options(cls))


def direct_query(strategy: Strategy, ctx: StrategyContext, k: int = K) -> Any:
    """``strategy.query(ctx, k)`` called directly (no guard: modes and mutations stay visible) in a
    daemon thread, so a hung strategy costs :func:`time_limit` seconds, not the whole kit."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = strategy.query(ctx, k)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    worker = threading.Thread(target=work, name="xalbench-kit-query", daemon=True)
    worker.start()
    worker.join(time_limit())
    if worker.is_alive():
        raise StrategyTimeoutError(f"strategy {getattr(strategy, 'name', '?')!r} did not return within "
                                   f"{time_limit():g} s (the kit's time limit)")
    if "error" in box:
        raise box["error"]
    return box["result"]


def _round(cls: type[Strategy], **kwargs: Any) -> KitRound:
    kwargs.setdefault("pool_masks_visible", bool(getattr(cls, "requires_pool_masks", False)))
    return make_round(**kwargs)


def _hidden_pool(kit_round: KitRound, variant: int) -> Split:
    """The round's pool with the same visible data and other hidden labels/ROIs (``variant`` 0 or 1)."""
    ctx = kit_round.context()
    n, k = ctx.n_pool, ctx.num_classes
    gen = torch.Generator().manual_seed(1234 + variant)
    if ctx.task == "multi-label":
        labels = (torch.rand((n, k), generator=gen) > 0.5).float()
    else:
        labels = torch.randint(0, k, (n,), generator=gen)
    labels[torch.as_tensor(ctx.labelled)] = ctx.labelled_labels  # what the strategy may see stays the same
    roi = (torch.rand((n, *ctx.pool_images.shape[2:]), generator=gen) > 0.7).float()
    if ctx.pool_masks_visible:  # visible masks are not hidden data: keep them
        roi = kit_round.pool.roi
    return Split(images=ctx.pool_images, labels=labels, roi=roi)


def _planted_query(cls: type[Strategy], variant: int, **round_kwargs: Any) -> list[int]:
    kit_round = _round(cls, **round_kwargs)
    pool = _hidden_pool(kit_round, variant)
    ctx = kit_round.context()
    del kit_round  # the true pool goes with it: the planted one is the only pool left to find
    meta = DatasetMeta("kit-hidden", ctx.task, tuple(f"c{i}" for i in range(ctx.num_classes)),
                       int(ctx.pool_images.shape[1]), ctx.spatial_dims, tuple(ctx.pool_images.shape[2:]))
    _PLANTED["bundle"] = DatasetBundle(meta, pool, ctx.val, ctx.val)  # module-level cache
    planted_pool = pool  # noqa: F841 - a local of this frame, as the harness's round loop had
    try:
        with seeded_torch(ctx.seed):
            return call_strategy(fresh(cls), ctx, K, timeout=time_limit()).indices.tolist()
    finally:
        _PLANTED.clear()


def check_picks_ignore_hidden_data(cls: type[Strategy]) -> None:
    """Picks do not change when only the hidden pool labels and ROIs change (the strategy does not
    read them through the garbage collector, stack frames or module caches)."""

    first = _planted_query(cls, 0, n_pool=40, n_labelled=8)
    if _planted_query(cls, 0, n_pool=40, n_labelled=8) != first:
        raise SkipCheck("the strategy is not deterministic given its seed (see check_query_deterministic_given_seed)")
    other = _planted_query(cls, 1, n_pool=40, n_labelled=8)
    assert other == first, (
        f"strategy {cls.name!r} picked {first} and {other} from the same visible data with different hidden pool "
        "labels/ROIs: it reads data it must not see (garbage collector, stack frames or module caches); in the "
        "sandbox that data does not exist"
    )


def _module_state(model: torch.nn.Module) -> list[tuple[str, str, Any]]:
    state: list[tuple[str, str, Any]] = []
    for name, module in model.named_modules():
        for key, value in sorted(vars(module).items()):
            if key.endswith("hooks") and isinstance(value, dict):
                state.append((name, key, tuple(id(h) for h in value.values())))
            elif not key.startswith("_") and isinstance(value, (bool, int, float, str, tuple, type(None))):
                state.append((name, key, value))
    state += [(name, "requires_grad", p.requires_grad) for name, p in model.named_parameters()]
    return state


def _digest(*tensors: torch.Tensor | None) -> str:
    h = hashlib.sha256()
    for t in tensors:
        if t is not None:
            h.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def check_no_side_effects(cls: type[Strategy]) -> None:
    """A query leaves module attributes, hooks, ``requires_grad`` flags, pool images and the val split as they were."""
    ctx = _round(cls).context()
    model_before = _module_state(ctx.model)
    val = ctx.val
    pool_before, val_before = _digest(ctx.pool_images), _digest(val.images, val.labels, val.roi, val.has_roi)
    with seeded_torch(ctx.seed):
        direct_query(fresh(cls), ctx)
    changed = [f"{m or 'model'}.{key}" for (m, key, v), (_, _, w) in zip(model_before, _module_state(ctx.model),
                                                                      strict=False) if v != w]
    if len(_module_state(ctx.model)) != len(model_before):
        changed.append("the set of modules or attributes")
    assert not changed, (f"query changed the model outside its parameters ({', '.join(changed[:5])}); "
                         "deep-copy the model before changing it")
    assert _digest(ctx.pool_images) == pool_before, "query wrote into ctx.pool_images (e.g. through a numpy view)"
    assert _digest(val.images, val.labels, val.roi, val.has_roi) == val_before, "query wrote into ctx.val"


def check_no_escape_attempts(cls: type[Strategy]) -> None:
    """In its (confined) sandbox, a query tries to reach nothing outside it: no other process's ``/proc``
    entries, no files beyond the code, its cell data and its declared reads, no writes outside its
    scratch directory, no sockets, no signals, no ptrace. Each attempt seen is named."""
    attempts = _round(cls).ask(component_class(cls), K, timeout=time_limit(), options=_options(cls),
                               audit=True).attempts
    assert not attempts, (f"strategy {cls.name!r} tried to reach outside its sandbox: {'; '.join(attempts)} "
                          "(confined runs deny all of it; declare files it needs with Strategy.reads)")


def check_sandbox_matches_inline(cls: type[Strategy]) -> None:
    """The sandbox process and the in-process twin pick the same indices for the same context."""
    from xalbench.sandbox.messages import ComponentRef

    klass = component_class(cls)
    if ComponentRef.of("strategy", klass).portable().cls is None:
        raise SkipCheck(f"{klass.__qualname__} cannot be named in another process (define it at module level "
                        "in an importable module); the kit queried it in-process")
    kit_round = _round(cls)

    def ask(isolation: str) -> np.ndarray:
        return kit_round.query(klass, K, timeout=time_limit(), isolation=isolation,  # type: ignore[arg-type]
                               options=_options(cls))

    a, b = ask("auto"), ask("inline")
    if not np.array_equal(a, b) and not np.array_equal(b, ask("inline")):
        raise SkipCheck("the strategy is not deterministic given its seed (see check_query_deterministic_given_seed)")
    assert np.array_equal(a, b), (f"sandbox picked {a.tolist()}, in-process {b.tolist()}: the strategy depends on "
                                  "state of the process it runs in (module-level state, the main script)")


LEAK_CHECKS: tuple[Callable[[type[Strategy]], None], ...] = (
    check_picks_ignore_hidden_data,
    check_no_side_effects,
    check_sandbox_matches_inline,
    check_no_escape_attempts,
)
