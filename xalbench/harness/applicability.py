"""Whether a method can run on a dataset and track: the reason it cannot, or ``None``.

A method that does not apply is never silently dropped: its cells end ``skipped`` with the
reason, and the leaderboard lists them as ``n/a``. The rules come from the components'
declarations (``supports_multilabel``, ``supports_3d``, ``requires_pool_masks``,
``needs_masks``) and need only the dataset's metadata, so the planner can decide them
before any cell runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from xalbench.base import DatasetMeta, strategy_skip_reason
from xalbench.registry import Registry
from xalbench.suite import MethodSpec, SuiteSpec

__all__ = ["equivalent_methods", "method_skip_reason", "pool_masks_visible", "strategy_skip_reason"]


def pool_masks_visible(registry: Registry, suite: SuiteSpec, method: MethodSpec, meta: DatasetMeta) -> bool:
    """Whether this method's strategy sees pool ROIs: on a ``visible`` track always, on an
    ``as-needed`` track only for strategies that declare ``requires_pool_masks`` (the
    leaderboard labels those cells as run with visible pool ROIs)."""
    if not meta.has_roi:
        return False
    if suite.pool_masks == "visible":
        return True
    if suite.pool_masks == "as-needed":
        return bool(getattr(registry.get("strategy", method.strategy.name), "requires_pool_masks", False))
    return False


def method_skip_reason(registry: Registry, suite: SuiteSpec, method: MethodSpec, meta: DatasetMeta) -> str | None:
    """Why ``method`` cannot run on the dataset ``meta`` under ``suite``, or ``None``."""
    visible = pool_masks_visible(registry, suite, method, meta)
    reason = strategy_skip_reason(registry.get("strategy", method.strategy.name), task=meta.task,
                                  spatial_dims=meta.spatial_dims, pool_masks_visible=visible)
    if reason:
        return reason
    loss_cls = registry.get("loss", method.loss.name)
    if loss_cls.needs_masks and not meta.has_roi:
        return f"loss {method.loss.name!r} needs ROI masks; dataset {meta.name!r} has none"
    if meta.task == "multi-label" and not loss_cls.supports_multilabel:
        return f"loss {method.loss.name!r} does not support multi-label data"
    if meta.spatial_dims == 3 and not loss_cls.supports_3d:
        return f"loss {method.loss.name!r} does not support 3D data"
    if meta.spatial_dims == 2 and not getattr(loss_cls, "supports_2d", True):
        return f"loss {method.loss.name!r} supports 3D data only"
    model_cls = registry.get("model", suite.model.name)
    if meta.spatial_dims == 3 and not model_cls.supports_3d:
        return f"model {suite.model.name!r} is 2D only"
    masks_cls = registry.get("mask_source", method.mask_source.name)
    if meta.task == "multi-label" and not getattr(masks_cls, "supports_multilabel", True):
        return f"mask source {method.mask_source.name!r} does not support multi-label data"
    for kind, name in (("trainer", method.trainer.name), ("mask_source", method.mask_source.name)):
        cls = registry.get(kind, name)
        if getattr(cls, "needs_masks", False) and not meta.has_roi:
            return f"{kind.replace('_', ' ')} {name!r} needs ROI masks; dataset {meta.name!r} has none"
    return None


def equivalent_methods(registry: Registry, methods: Sequence[MethodSpec], meta: DatasetMeta) -> dict[str, str]:
    """Methods that are equal by construction to another method of ``methods`` on the dataset ``meta``:
    display name → the n/a reason naming the other. A method is equal to another when its loss declares
    (:meth:`~xalbench.base.Loss.equivalent_on`) that it reduces there to the other's loss, with the other's
    complete options, and strategy, trainer and mask source are the same — the two cells would be the same
    bits, so only the other one runs."""
    def key(m: MethodSpec) -> tuple[Any, ...]:
        loss = registry.create("loss", m.loss.name, m.loss.options)
        return (m.strategy.display, m.trainer.display, m.mask_source.display, m.loss.name,
                json.dumps(loss.options.to_dict(), sort_keys=True, default=str))

    present = {key(m): m for m in methods}
    out: dict[str, str] = {}
    for m in methods:
        eq = registry.create("loss", m.loss.name, m.loss.options).equivalent_on(meta)
        if eq is None:
            continue
        target = (m.strategy.display, m.trainer.display, m.mask_source.display, eq.name,
                  json.dumps(dict(eq.options), sort_keys=True, default=str))
        other = present.get(target)
        if other is not None and other.display != m.display:
            out[m.display] = f"equal by construction to {other.display} on this dataset: {eq.reason}"
    return out
