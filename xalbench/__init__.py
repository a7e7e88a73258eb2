"""xalbench: which active-learning strategy, explainer and explanation-guided loss really
helps medical-imaging models learn from few labels for the right reasons.

Public API for plugin authors: ``hookimpl``, the component contracts and ``Options``.
"""

from __future__ import annotations

import pluggy

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
    RoundInfo,
    Split,
    Strategy,
    stable_topk,
)
from xalbench.options import Options

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("xalbench")

__all__ = (
    "Batch",
    "Component",
    "Dataset",
    "DatasetBundle",
    "DatasetMeta",
    "ExplainableNet",
    "Explainer",
    "Loss",
    "LossOutput",
    "Model",
    "Options",
    "RoundInfo",
    "Split",
    "Strategy",
    "__version__",
    "hookimpl",
    "stable_topk",
)
