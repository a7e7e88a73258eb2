"""Enforced strategy contract: applicability, time limit, information access, validation.

The harness never calls a strategy directly; it calls :func:`call_strategy`, which asks it
the way its class declares — a strategy that only implements ``scores(ctx)`` is scored and the
guard takes the top ``k`` itself (:func:`~xalbench.selection.topk_by_score`); one that overrides
``query(ctx, k)`` is queried — and returns a :class:`~xalbench.selection.Selection` (indices and,
where the strategy exposes them, scores aligned with ``ctx.unlabelled``). Every way a strategy
can misbehave becomes one named :class:`~xalbench.errors.StrategyContractError` (``rule`` says
which), so that cell fails with that reason while the other cells finish.

Checks, in this order (the first that fails is raised):

1. ``timeout`` — the call runs in a daemon worker thread joined with ``timeout``
   seconds. **A Python thread cannot be killed**: on timeout the cell fails with
   :class:`StrategyTimeoutError` and the thread is abandoned (it is a daemon, so it
   never blocks interpreter exit, but it keeps its CPU until it returns). Run cells in
   worker processes if a hanging strategy must not steal CPU from later cells.
2. ``forbidden-access`` — any new entry in ``ctx.violations`` (pool labels, hidden pool
   masks, test set, oracle), even if the strategy caught the error it got.
3. ``model-mutated`` — :func:`model_fingerprint` (parameters
   and buffers) differs from before the call. Module ``training`` flags are restored
   silently (a strategy that switches dropout on and forgets to switch it off does not
   fail, but it cannot leak train mode into the next round).
4. ``pool-mutated`` — pool images changed (same tensor object, version counter, float64
   sum and L2 norm; for a read-only mapped pool the same view object and the identity of its
   cache file — path, size, mtime, stored content hash — and rows, never a pass over the
   pixels), or ``ctx.labelled`` / ``ctx.unlabelled`` were edited.
5. ``exception`` — the strategy raised; the original exception is chained
   (a ``StrategyContractError`` raised by the strategy itself, e.g. ``nan`` from
   :func:`xalbench.selection.topk_by_score`, is re-raised as is).
6. ``nan`` — exposed scores (``scores(ctx)``, or ``result.scores`` of a ``query`` that returns an
   object with ``.indices`` and ``.scores``) are NaN/inf.
7. ``type``, ``count``, ``duplicates``, ``range``, ``labelled`` — the returned indices
   must be ``min(k, |unlabelled|)`` distinct integers in ``[0, n_pool)`` not in
   ``ctx.labelled``.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from xalbench.base import strategy_skip_reason as skip_reason
from xalbench.data.mapped_pool import is_mapped, view_identity
from xalbench.errors import (
    InformationAccessError,
    ModelMutationError,
    StrategyContractError,
    StrategyTimeoutError,
)
from xalbench.selection import Selection, as_numpy, topk_by_score

if TYPE_CHECKING:
    from xalbench.base import Strategy
    from xalbench.sandbox.context import StrategyContext

__all__ = ["call_strategy", "model_fingerprint", "skip_reason", "pool_checksum", "validate_indices"]


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (names, shapes, bytes)."""
    h = hashlib.sha256()
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        h.update(name.encode())
        arr = t.detach().cpu().contiguous()
        h.update(str(tuple(arr.shape)).encode())
        h.update(arr.numpy().tobytes() if arr.dtype != torch.bfloat16 else arr.float().numpy().tobytes())
    return h.hexdigest()


def pool_checksum(images: Any) -> tuple[Any, ...]:
    """Cheap identity of the pool: (object id, version counter, float64 sum, L2 norm) of a tensor;
    (object id, 0, file identity…) of a read-only mapped view
    (:func:`~xalbench.data.mapped_pool.view_identity`: no pixel is read)."""
    if is_mapped(images):
        try:
            return (id(images), 0, *view_identity(images))
        except OSError as exc:  # the cache file is gone: never equal to a checksum taken before
            return (id(images), 0, f"unreadable: {exc}")
    with torch.no_grad():
        total = float(torch.sum(images, dtype=torch.float64))
        norm = float(torch.linalg.vector_norm(images, dtype=torch.float64))
    return id(images), int(images._version), total, norm


def _same_checksum(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    # NaN-safe equality of the float parts (a pool containing NaN stays "unchanged").
    return len(a) == len(b) and a[:2] == b[:2] and all(
        (x == y) or (isinstance(x, float) and x != x and y != y) for x, y in zip(a[2:], b[2:], strict=True))


def _split_result(result: Any) -> tuple[Any, Any]:
    """(indices, scores or None): a plain sequence, or an object with ``.indices``/``.scores``."""
    if hasattr(result, "indices") and not isinstance(result, (np.ndarray, torch.Tensor)):
        return result.indices, getattr(result, "scores", None)
    return result, None


def _check_scores(scores: Any, name: str) -> None:
    if scores is None:
        return
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().double().numpy()
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StrategyContractError("type", f"{name} exposed scores that are not numbers: {exc}") from exc
    if not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise StrategyContractError("nan", f"{name} exposed {n_bad} NaN/inf score(s); its ranking is undefined")


def validate_indices(result: Any, *, k: int, n_pool: int, labelled: np.ndarray, n_unlabelled: int,
                     name: str = "strategy") -> np.ndarray:
    """Check ``result`` is ``min(k, n_unlabelled)`` distinct unlabelled pool indices; return int64."""
    if isinstance(result, torch.Tensor):
        result = result.detach().cpu().numpy()
    try:
        arr = np.asarray(result)
    except Exception as exc:  # ragged lists, odd objects
        raise StrategyContractError("type", f"{name} returned {type(result).__name__}, not an index array") from exc
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise StrategyContractError(
            "type", f"{name} must return a 1-D sequence of integers, got shape {arr.shape} dtype {arr.dtype}"
        )
    arr = arr.astype(np.int64)
    expected = min(k, n_unlabelled)
    if arr.size != expected:
        raise StrategyContractError(
            "count", f"{name} returned {arr.size} indices for k={k} with {n_unlabelled} unlabelled; expected {expected}"
        )
    uniq, counts = np.unique(arr, return_counts=True)
    if uniq.size != arr.size:
        raise StrategyContractError("duplicates", f"{name} returned duplicated indices {uniq[counts > 1][:5].tolist()}")
    out = arr[(arr < 0) | (arr >= n_pool)]
    if out.size:
        raise StrategyContractError("range", f"{name} returned indices outside [0, {n_pool}): {out[:5].tolist()}")
    already = arr[np.isin(arr, labelled)]
    if already.size:
        raise StrategyContractError("labelled", f"{name} returned already-labelled indices {already[:5].tolist()}")
    return arr


def _ask(strategy: Strategy, ctx: StrategyContext, k: int, name: str) -> tuple[Any, Any]:
    """(indices, scores or None): a scoring strategy is scored and its top ``k`` taken here; a
    strategy that overrides ``query`` is queried."""
    by_scores = getattr(type(strategy), "selects_by_scores", None)
    if by_scores is not None and by_scores():
        scores = strategy.scores(ctx)
        if scores is None:
            raise NotImplementedError(f"{name} implements neither scores() nor query()")
        return topk_by_score(scores, ctx, k, who=name), scores
    return _split_result(strategy.query(ctx, k))


def _aligned(scores: Any, n_unlabelled: int) -> np.ndarray | None:
    """``scores`` as a private float64 vector when it has one entry per unlabelled sample, else ``None``."""
    if scores is None:
        return None
    arr = np.array(as_numpy(scores), dtype=np.float64, copy=True).reshape(-1)
    return arr if arr.shape[0] == n_unlabelled else None


def call_strategy(strategy: Strategy, ctx: StrategyContext, k: int, *, timeout: float) -> Selection:
    """Ask ``strategy`` for ``k`` pool indices under the contract above (see the module docstring)."""
    name = f"strategy {getattr(strategy, 'name', type(strategy).__name__)!r}"
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    labelled = ctx.labelled.copy()
    unlabelled = ctx.unlabelled.copy()
    n_violations = len(ctx.violations)
    fingerprint = model_fingerprint(ctx.model)
    flags = [(m, m.training) for m in ctx.model.modules()]
    checksum = pool_checksum(ctx.pool_images)
    pool_ref = ctx.pool_images

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = _ask(strategy, ctx, k, name)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            box["error"] = exc

    worker = threading.Thread(target=work, name=f"xalbench-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise StrategyTimeoutError(
            f"{name} did not return within {timeout:g} s (strategy_timeout); the call was abandoned, "
            "raise strategy_timeout in the suite if the strategy is just slow"
        )

    new_violations = ctx.violations[n_violations:]
    if new_violations:
        err = InformationAccessError(f"{name} read forbidden data: {'; '.join(new_violations)}")
        raise err from box.get("error")
    for module, flag in flags:
        module.training = flag
    if model_fingerprint(ctx.model) != fingerprint:
        raise ModelMutationError(
            f"{name} changed the model's parameters or buffers; copy the model (copy.deepcopy) before training it"
        )
    if ctx.pool_images is not pool_ref or not _same_checksum(pool_checksum(ctx.pool_images), checksum):
        raise StrategyContractError("pool-mutated", f"{name} modified the pool images; treat ctx as read-only")
    if not (np.array_equal(ctx.labelled, labelled) and np.array_equal(ctx.unlabelled, unlabelled)):
        raise StrategyContractError("pool-mutated", f"{name} modified ctx.labelled/ctx.unlabelled; copy them first")
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, StrategyContractError):
            raise exc
        raise StrategyContractError("exception", f"{name} raised {type(exc).__name__}: {exc}") from exc

    indices, scores = box["result"]
    _check_scores(scores, name)
    valid = validate_indices(indices, k=k, n_pool=ctx.n_pool, labelled=labelled, n_unlabelled=len(unlabelled),
                             name=name)
    return Selection(valid, _aligned(scores, len(unlabelled)))
