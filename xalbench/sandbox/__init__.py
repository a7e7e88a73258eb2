"""Strategy sandboxes: each cell's strategy queries run in a separate process.

A leaderboard of third-party strategies is only worth something if a strategy cannot see
what the oracle has not revealed — and no check inside one Python process can promise that:
code in the harness's process can reach whatever the harness holds (through the garbage
collector, stack frames, module-level caches, private attributes). So the strategy runs
elsewhere.

**What the sandbox guarantees**

* *No hidden data in the process.* The sandbox receives only what the contract allows
  (:mod:`xalbench.sandbox.messages`): the model's class, options and per-round state dict
  (rebuilt there, fresh every round), the pool images and the val split (private copies, sent
  once per cell; a pool larger than RAM, held as a read-only view of a prepared cache, is sent
  as a reference to that cache file — never to its labels — and mapped read-only there), the
  labelled indices with their labels and *revealed* masks, pool masks
  only on a ``pool_masks = "visible"`` track, round seeds and the strategy's options. Its
  pool cache is computed there. Pool labels, hidden masks, the test split and the oracle are
  never sent — the message types have no fields for them — and the process is forked from a
  fork server that never held them (never a fork of the harness).
* *No way back.* The sandbox returns indices (and scores) and nothing else; the harness
  validates them again. Copies cannot write into the harness's tensors (no shared memory), and
  a mapped pool is mapped read-only (a write through it faults; a rewritten cache file changes
  its identity, checked every round);
  model attribute, hook and ``requires_grad`` changes die with the round's model; writes
  into the pool or val copy fail the cell (``pool-mutated`` / ``val-mutated``).
* *Real timeouts.* Past ``strategy_timeout`` the sandbox's process group (including any
  process the strategy started, unless it left the group) is killed; the cell fails with
  rule ``timeout``.
* *Crash containment.* A segfault, ``os._exit`` or out-of-memory kill of the sandbox fails
  that cell only (rules ``crash`` / ``memory``, with the last traceback lines); an optional
  address-space limit (``SandboxSpec.memory_limit``) turns runaway allocations into ``memory``.
* *No cross-cell state.* One sandbox per cell, reused across its rounds (the strategy
  instance lives for the whole cell) and discarded after it.

**The kernel's part: ``confined``.** A process alone is not a security boundary: without more,
the sandbox runs as the same user and can read files (the dataset's files, ``/proc`` of other
processes — their environment, command line and, depending on ``ptrace_scope``, memory), open
network connections, signal other processes. With ``SandboxSpec.confine`` (``--isolation
confined``, the default where the kernel offers Landlock ABI ≥ 4) the sandbox confines itself
after importing the strategy's code and before any data arrives (:mod:`xalbench.sandbox.confine`):
it reads only the interpreter's code, its cell data, a mapped pool's cache file and the files the
strategy declares (``Strategy.reads``), writes only a private scratch directory, has no network
and no ``socket()`` at all, cannot signal or ptrace anything outside itself; what was applied
comes back in :class:`Ready` and goes into every cell's provenance. What stays possible: re-running
a dataset generator it can import with the suite's public options (the leaderboard's held-out data
seeds answer that), and whatever its import-time code did before confinement. Variables whose
names contain TOKEN, SECRET, KEY, PASSWORD, PASSWD, CREDENTIAL, AUTH, PRIVATE or COOKIE are removed
from the sandbox's environment in every mode.

``--isolation inline`` (:class:`InlineQuerier`) runs the same code in the harness's process,
for debugging and profiling; honest strategies give bitwise-identical indices in both modes.

Use (one querier per cell, started before round 0 trains so the sandbox boots meanwhile)::

    spec = make_spec(registry, strategy=(name, options), model=(model_name, model_options),
                     explainer=(explainer_name, explainer_options) or None, meta=bundle.meta,
                     pool_masks_visible=visible, selection=selection, threads=threads, device=device,
                     timeout=suite.strategy_timeout, batch_size=suite.training.eval_batch_size)
    querier = make_querier("process", spec, make_cell_data(bundle.train, bundle.val,
                                                           pool_masks_visible=visible))
    try:
        for r in rounds:
            ...  # train round r
            reply = querier.query(make_round_request(r, model, bundle.train, labelled, revealed,
                                                     rng_seed=..., torch_seed=..., k=k))
            labelled = np.concatenate([labelled, reply.indices])
    finally:
        querier.close()

:func:`warm_up` / :func:`preload` start a process's fork server early / name more modules for it
(e.g. every strategy module of a run) — optional.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from xalbench.sandbox.client import ProcessQuerier, preload, warm_up
from xalbench.sandbox.inline import InlineQuerier
from xalbench.sandbox.messages import (
    CellData,
    ComponentRef,
    ErrorReply,
    MappedRef,
    QueryReply,
    Ready,
    RoundRequest,
    SandboxSpec,
    digest,
    make_cell_data,
    make_round_request,
)

__all__ = [
    "CellData",
    "ComponentRef",
    "ErrorReply",
    "ISOLATION_MODES",
    "InlineQuerier",
    "MappedRef",
    "ProcessQuerier",
    "QueryReply",
    "Querier",
    "Ready",
    "RoundRequest",
    "SandboxSpec",
    "digest",
    "make_cell_data",
    "make_querier",
    "make_round_request",
    "make_spec",
    "preload",
    "warm_up",
]

ISOLATION_MODES = ("confined", "process", "inline")
Querier = ProcessQuerier | InlineQuerier


def make_spec(registry: Any, *, strategy: tuple[str, Mapping[str, Any]], model: tuple[str, Mapping[str, Any]],
              explainer: tuple[str, Mapping[str, Any]] | None, meta: Any, pool_masks_visible: bool,
              selection: Any = None, **settings: Any) -> SandboxSpec:
    """A :class:`SandboxSpec` whose components are the classes ``registry`` resolves the names to
    (the sandbox then needs no registry of its own; a class that cannot be pickled by reference
    falls back to a name lookup in the sandbox's registry of ``selection``). ``meta`` is the
    dataset's :class:`~xalbench.base.DatasetMeta`; ``settings`` are the other spec fields
    (``threads``, ``device``, ``timeout``, ``boot_timeout``, ``batch_size``, ``memory_limit``)."""

    def ref(kind: str, pair: tuple[str, Mapping[str, Any]]) -> ComponentRef:
        name, options = pair
        return ComponentRef(kind, name, dict(options), registry.get(kind, name)).portable()

    strategy_cls = registry.get("strategy", strategy[0])
    reads = tuple(getattr(strategy_cls, "reads", lambda options: ())(strategy_cls.Options.parse(
        strategy[1], owner=f"strategy {strategy[0]!r}")))
    settings.setdefault("reads", reads)
    return SandboxSpec(strategy=ref("strategy", strategy), model=ref("model", model),
                       explainer=None if explainer is None or not explainer[0] else ref("explainer", explainer),
                       task=meta.task, num_classes=meta.num_classes, in_channels=meta.in_channels,
                       spatial_dims=meta.spatial_dims, pool_masks_visible=pool_masks_visible, selection=selection,
                       **settings)


def make_querier(isolation: Literal["confined", "process", "inline"], spec: SandboxSpec, data: CellData,
                 registry: Any = None) -> Querier:
    """A started querier for one cell (``registry`` is used by ``inline`` only, to skip a rebuild):
    ``confined`` — a sandbox process confined by the kernel; ``process`` — a sandbox process;
    ``inline`` — in this process."""
    if isolation in ("process", "confined"):
        return ProcessQuerier(dataclasses.replace(spec, confine=isolation == "confined"), data).start()
    if isolation == "inline":
        return InlineQuerier(spec, data, registry).start()
    raise ValueError(f"isolation must be one of {', '.join(ISOLATION_MODES)}, got {isolation!r}")
