"""Registers the built-in explainers through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench.explain.captum_attr import CAPTUM_EXPLAINERS
from xalbench.explain.core import CAMExplainer, GradCAMExplainer, HiResCAMExplainer
from xalbench.explain.gradcam_lib import (
    EigenCAMExplainer,
    GradCAMPlusPlusExplainer,
    LayerCAMExplainer,
    ScoreCAMExplainer,
    XGradCAMExplainer,
)
from xalbench.explain.lrp import DeepTaylorExplainer, LRPEpsilonGammaBox, LRPEpsilonPlusFlat
from xalbench.hookspecs import Register, hookimpl

BUILTIN_EXPLAINERS = (
    CAMExplainer,
    GradCAMExplainer,
    HiResCAMExplainer,
    GradCAMPlusPlusExplainer,
    XGradCAMExplainer,
    ScoreCAMExplainer,
    EigenCAMExplainer,
    LayerCAMExplainer,
    LRPEpsilonPlusFlat,
    LRPEpsilonGammaBox,
    DeepTaylorExplainer,
    *CAPTUM_EXPLAINERS,
)


@hookimpl
def register_explainers(register: Register) -> None:
    for cls in BUILTIN_EXPLAINERS:
        register(cls)
