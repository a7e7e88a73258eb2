"""``--isolation inline``: the sandbox's in-process twin, for debugging and profiling.

:class:`InlineQuerier` has :class:`~xalbench.sandbox.client.ProcessQuerier`'s interface and
runs the very same :class:`~xalbench.sandbox.session.QuerySession` code in the harness's own
process, on the same private copies of the cell's data and a model rebuilt from the same
state dict, with the same seeds and thread count — so an honest strategy gives bitwise the
same indices in both modes. What it does **not** give: the strategy shares the harness's
process, so whatever the harness holds (pool labels, the test split, its caches) is
reachable through the garbage collector, stack frames or module globals; a time-out only
abandons the strategy's thread (Python cannot kill a thread; it keeps its CPU until it
returns); a crash or an out-of-memory kill takes the whole run down. Results record the mode.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from xalbench.errors import StrategyContractError
from xalbench.sandbox.context import StrategyContext
from xalbench.sandbox.guard import validate_indices
from xalbench.sandbox.messages import CellData, QueryReply, RoundRequest, SandboxSpec
from xalbench.sandbox.session import QuerySession, error_from_reply, failure_of
from xalbench.seeding import configure_determinism

__all__ = ["InlineQuerier"]


class InlineQuerier:
    """Runs one cell's strategy in this process (see the module docstring)."""

    isolation = "inline"
    confinement = None  #: nothing is confined in the harness's own process

    def __init__(self, spec: SandboxSpec, data: CellData, registry: Any = None) -> None:
        self.spec = spec
        self._data: CellData | None = data
        self._registry = registry
        self._session: QuerySession | None = None
        self._failed: StrategyContractError | None = None
        self.boot_seconds: float | None = None

    def start(self) -> InlineQuerier:
        """Create the strategy (idempotent); failures surface at the first :meth:`query`."""
        return self

    def _ensure_session(self) -> QuerySession:
        if self._session is None:
            if self._data is None:
                raise RuntimeError("this querier was closed; create a new one for the next cell")
            t0 = time.perf_counter()
            try:
                self._session = QuerySession(self.spec, self._data, self._registry)
            except BaseException as exc:  # noqa: BLE001 - same rule as in the sandbox
                raise error_from_reply(failure_of(exc, during="start")) from exc
            self.boot_seconds = time.perf_counter() - t0
        return self._session

    def query(self, request: RoundRequest) -> QueryReply:
        """The strategy's validated answer for ``request``; raises :class:`StrategyContractError`."""
        if self._failed is not None:
            raise RuntimeError(f"this querier already failed ({self._failed.rule}); the cell is over")
        try:
            session = self._ensure_session()
            configure_determinism(self.spec.threads, torch.device(self.spec.device))
            t0 = time.perf_counter()
            try:
                reply = session.answer(request, timeout=self.spec.timeout)
            except BaseException as exc:  # noqa: BLE001 - same rules and messages as the sandbox
                raise error_from_reply(failure_of(exc)) from exc
            wall = time.perf_counter() - t0
            n_pool = session.data.n_pool
            indices = validate_indices(reply.indices, k=request.k, n_pool=n_pool,
                                       labelled=np.asarray(request.labelled, dtype=np.int64),
                                       n_unlabelled=n_pool - len(request.labelled),
                                       name=f"strategy {self.spec.strategy.name!r}")
        except StrategyContractError as err:
            self._failed = err
            raise
        return QueryReply(indices=indices, scores=reply.scores, seconds=reply.seconds, wall_seconds=wall)

    def context(self, request: RoundRequest) -> StrategyContext:
        """The context the strategy would see for ``request`` (for replays and figures; not guarded)."""
        return self._ensure_session().context_for(request)

    def close(self) -> None:
        self._session = None
        self._data = None

    def __enter__(self) -> InlineQuerier:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return None
