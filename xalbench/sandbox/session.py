"""One cell's strategy session: the code that answers a round, shared by the sandbox process
(:mod:`xalbench.sandbox.child`) and its in-process twin (:mod:`xalbench.sandbox.inline`).

Per cell the session creates the strategy **once** (it lives for the whole cell, like in the
harness) and keeps private copies of the pool images and the val split — or, for a pool larger
than RAM, :class:`~xalbench.sandbox.messages.MappedRef` s to the prepared cache, which it maps
read-only (a fresh view each round). Per round it

1. builds a **fresh** model from the model class, the spec's build arguments and the round's
   state dict (attribute, hook or ``requires_grad`` changes a strategy makes cannot reach the
   next round), with the per-module train/eval flags the harness had;
2. builds the concrete :class:`~xalbench.sandbox.context.StrategyContext` from what the
   contract allows (:func:`~xalbench.sandbox.context.build_context`: pool ROIs only on a
   visible-mask track) with ``ctx.rng`` seeded by the request's ``rng_seed`` and ``ctx.seed`` =
   ``torch_seed``;
3. seeds torch's global CPU generator with ``torch_seed`` (restored afterwards), so a strategy
   that draws from it (dropout in train mode) gives the same picks in both isolation modes;
4. runs the strategy through :func:`~xalbench.sandbox.guard.call_strategy` (the same gate as
   always: forbidden reads, parameter changes, NaN scores, the index rules);
5. checks a full SHA-256 of its pool and val copies (a strategy that writes into them through a
   numpy view fails with ``pool-mutated`` / ``val-mutated`` instead of corrupting its later rounds);
   a mapped pool cannot be written through its map, so there the check is the cache file's
   identity (path, size, mtime, stored content hash): a strategy that rewrites the file on disk
   fails the same way, and gigabytes are never hashed again.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import torch

from xalbench.errors import (
    InformationAccessError,
    ModelMutationError,
    StrategyContractError,
    StrategyTimeoutError,
)
from xalbench.sandbox.context import StrategyContext, build_context, build_model
from xalbench.sandbox.guard import call_strategy
from xalbench.sandbox.messages import CellData, ErrorReply, QueryReply, RoundRequest, SandboxSpec

__all__ = ["QuerySession", "error_from_reply", "failure_of", "seeded_torch"]

#: Lines of the strategy's traceback kept in a cell's error.
TAIL_LINES = 6
_PREFIX = "strategy contract violated [{}]: "


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Seed torch's global CPU generator for the block and restore the previous state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed % (2**63))
        yield


class QuerySession:
    """Answers :class:`RoundRequest` s for one cell (see the module docstring)."""

    def __init__(self, spec: SandboxSpec, data: CellData, registry: Any = None, *,
                 classes: tuple[type, type, type | None] | None = None, attempts: Any = None) -> None:
        self.spec = spec
        self.attempts = attempts  #: an :class:`~xalbench.sandbox.audit.AttemptLog` (the kit), or None
        self.data = data
        if data.pool_masks_visible != spec.pool_masks_visible:
            raise ValueError("the cell data's pool-mask visibility differs from the sandbox spec's")
        self._registry = registry
        self.device = torch.device(spec.device)
        strategy_cls, self.model_cls, self.explainer_cls = classes or self.classes(spec, self.registry)
        self.strategy = strategy_cls(dict(spec.strategy.options))
        data.check_refs()
        self.digests = data.digests()

    @staticmethod
    def classes(spec: SandboxSpec, registry: Any = None) -> tuple[type, type, type | None]:
        """The strategy's, model's and explainer's classes (importing their code; a name that is not a
        portable class is looked up in the registry of the spec's plugin selection)."""
        def lookup() -> Any:
            if callable(registry):
                return registry()
            from xalbench.plugins import PluginSelection

            return (spec.selection if spec.selection is not None else PluginSelection()).registry()

        return (spec.strategy.resolve(lookup), spec.model.resolve(lookup),
                None if spec.explainer is None else spec.explainer.resolve(lookup))

    def registry(self) -> Any:
        """The plugin registry of :attr:`SandboxSpec.selection`, built on first use only."""
        if self._registry is None:
            from xalbench.plugins import PluginSelection

            selection = self.spec.selection if self.spec.selection is not None else PluginSelection()
            self._registry = selection.registry()
        return self._registry

    def context_for(self, request: RoundRequest) -> StrategyContext:
        """The strategy's view of ``request``: a fresh model and context (:func:`build_context`)."""
        model = build_model(self.spec, request, self.model_cls, self.device)
        explainer = None if self.explainer_cls is None else self.explainer_cls(dict(self.spec.explainer.options))
        return build_context(self.spec, self.data, request, model, explainer, self.device)

    def answer(self, request: RoundRequest, *, timeout: float = threading.TIMEOUT_MAX) -> QueryReply:
        """Run the strategy on ``request``; raise :class:`StrategyContractError` on any broken rule."""
        ctx = self.context_for(request)
        log = self.attempts
        with seeded_torch(request.torch_seed):
            t0 = time.perf_counter()
            if log is not None:
                log.active = True
            try:
                selection = call_strategy(self.strategy, ctx, request.k, timeout=timeout)
            finally:
                if log is not None:
                    log.active = False
            seconds = time.perf_counter() - t0
        self.check_data()
        return QueryReply(indices=selection.indices, scores=selection.scores, seconds=seconds,
                          attempts=log.take() if log is not None else ())

    def check_data(self) -> None:
        """Fail if the strategy wrote into its pool or val copy (full SHA-256; a mapped pool's file identity)."""
        pool, val = self.data.digests()
        name = f"strategy {getattr(self.strategy, 'name', type(self.strategy).__name__)!r}"
        if pool != self.digests[0]:
            raise StrategyContractError("pool-mutated", f"{name} wrote into ctx.pool_images; treat ctx as read-only")
        if val != self.digests[1]:
            raise StrategyContractError("val-mutated", f"{name} wrote into ctx.val; treat ctx as read-only")


def _is_memory(exc: BaseException | None) -> bool:
    while exc is not None:
        text = str(exc).lower()
        if isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text:
            return True
        exc = exc.__cause__
    return False


def _tail(exc: BaseException) -> str:
    lines = [ln.rstrip() for ln in "".join(traceback.format_exception(exc)).splitlines() if ln.strip()]
    return "\n".join(lines[-TAIL_LINES:])


def failure_of(exc: BaseException, *, during: str = "query") -> ErrorReply:
    """The :class:`ErrorReply` for an exception raised while answering (``during="query"``) or
    while starting the session (``during="start"``: the strategy's import or constructor)."""
    if isinstance(exc, StrategyContractError):
        rule = exc.rule
        message = str(exc).removeprefix(_PREFIX.format(rule))
        cause = exc.__cause__
        if rule == "exception" and _is_memory(cause):
            rule = "memory"
        return ErrorReply(rule, message, _tail(cause) if cause is not None else "")
    if _is_memory(exc):
        return ErrorReply("memory", f"the sandbox ran out of memory during the {during}: {exc}", _tail(exc))
    what = "the strategy failed to start" if during == "start" else "the sandbox failed around the strategy call"
    return ErrorReply("exception", f"{what}: {type(exc).__name__}: {exc}", _tail(exc))


_CLASSES: dict[str, Callable[[str], StrategyContractError]] = {
    "timeout": StrategyTimeoutError,
    "forbidden-access": InformationAccessError,
    "model-mutated": ModelMutationError,
}


def error_from_reply(reply: ErrorReply) -> StrategyContractError:
    """The exception the harness raises for ``reply`` (rule kept; traceback tail on one line in the
    message and, with its line breaks, as ``err.traceback_tail``)."""
    message = reply.message
    if reply.traceback_tail:
        message += f" [sandbox traceback: {' | '.join(ln.strip() for ln in reply.traceback_tail.splitlines())}]"
    make = _CLASSES.get(reply.rule)
    err = make(message) if make is not None else StrategyContractError(reply.rule, message)
    err.traceback_tail = reply.traceback_tail  # type: ignore[attr-defined]
    return err
