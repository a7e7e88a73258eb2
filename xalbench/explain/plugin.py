"""Registers the built-in explainers through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench import hookimpl
from xalbench.explain.core import CAMExplainer, GradCAMExplainer, HiResCAMExplainer
from xalbench.hookspecs import Register


@hookimpl
def register_explainers(register: Register) -> None:
    register(CAMExplainer)
    register(GradCAMExplainer)
    register(HiResCAMExplainer)
