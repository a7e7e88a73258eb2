"""xalbench: which active-learning strategy, explainer and explanation-guided loss really helps
medical-imaging models learn from few labels for the right reasons.

Public API for plugin authors: ``hookimpl``, the component contracts, ``Options`` and
``wrap`` (turn any torchvision/MONAI classifier into an :class:`ExplainableNet`); for analysis,
``load_results`` (a run's cells as pandas frames) and ``leaderboard_frame`` (the report's
statistics over them). The
contracts are imported lazily, so ``import xalbench`` (and ``xalbench --help``) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from xalbench.hookspecs import hookimpl

__version__ = "0.3.0"

#: public name → module that defines it (imported on first access)
_LAZY = {
    "Batch": "xalbench.base",
    "Component": "xalbench.base",
    "Dataset": "xalbench.base",
    "DatasetBundle": "xalbench.base",
    "DatasetMeta": "xalbench.base",
    "ExplainableNet": "xalbench.base",
    "Explainer": "xalbench.base",
    "Equivalence": "xalbench.base",
    "Loss": "xalbench.base",
    "LossOutput": "xalbench.base",
    "Model": "xalbench.base",
    "PoolCacheView": "xalbench.base",
    "RoundInfo": "xalbench.base",
    "Split": "xalbench.base",
    "Strategy": "xalbench.base",
    "StrategyContext": "xalbench.base",
    "stable_topk": "xalbench.base",
    "Options": "xalbench.options",
    "Metric": "xalbench.metrics.base",
    "Evaluation": "xalbench.metrics.base",
    "ReportFormat": "xalbench.report.base",
    "Finding": "xalbench.report.base",
    "Trainer": "xalbench.training.base",
    "MaskSource": "xalbench.training.base",
    "Executor": "xalbench.execution.base",
    "Command": "xalbench.commands",
    "SuiteSource": "xalbench.suite",
    "wrap": "xalbench.models.wrap",
    "run": "xalbench.api",
    "Results": "xalbench.report.frames",
    "load_results": "xalbench.report.frames",
    "leaderboard_frame": "xalbench.report.frames",
    "Registry": "xalbench.registry",
    "load_registry": "xalbench.plugins",
}

__all__ = (
    "__version__",
    "hookimpl",
    "Batch",
    "Command",
    "Component",
    "Dataset",
    "DatasetBundle",
    "DatasetMeta",
    "Evaluation",
    "Executor",
    "ExplainableNet",
    "Explainer",
    "Equivalence",
    "Finding",
    "Loss",
    "LossOutput",
    "MaskSource",
    "Metric",
    "Model",
    "Options",
    "PoolCacheView",
    "Registry",
    "ReportFormat",
    "Results",
    "RoundInfo",
    "Split",
    "Strategy",
    "StrategyContext",
    "SuiteSource",
    "Trainer",
    "leaderboard_frame",
    "load_registry",
    "load_results",
    "run",
    "stable_topk",
    "wrap",
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xalbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from xalbench.api import run
    from xalbench.base import (
        Batch,
        Component,
        Dataset,
        DatasetBundle,
        DatasetMeta,
        ExplainableNet,
        Explainer,
        Loss,
        LossOutput,
        Model,
        PoolCacheView,
        RoundInfo,
        Split,
        Strategy,
        StrategyContext,
        stable_topk,
    )
    from xalbench.commands import Command
    from xalbench.execution.base import Executor
    from xalbench.metrics.base import Evaluation, Metric
    from xalbench.models.wrap import wrap
    from xalbench.options import Options
    from xalbench.plugins import load_registry
    from xalbench.registry import Registry
    from xalbench.report.base import Finding, ReportFormat
    from xalbench.report.frames import Results, leaderboard_frame, load_results
    from xalbench.suite import SuiteSource
    from xalbench.training.base import MaskSource, Trainer
