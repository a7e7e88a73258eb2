"""pluggy hook specifications (project name ``"xalbench"``), llm-style ``register`` callbacks.

A plugin module implements any of these with ``@xalbench.hookimpl`` and is published
under the entry-point group ``xalbench``::

    [project.entry-points.xalbench]
    my_strategies = "my_package.plugin"

Each hook receives ``register(component, *, name=None)``: call it once per component.
The registry records which distribution (name, version) registered it.
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

hookspec = pluggy.HookspecMarker("xalbench")

__all__ = ["Register", "hookspec"]


class Register(Protocol):
    """The callback handed to every ``register_*`` hook."""

    def __call__(self, component: Any, /, *, name: str | None = None) -> None: ...


@hookspec
def register_strategies(register: Register) -> None:
    """Register active-learning query strategies (subclasses of ``xalbench.Strategy``)."""


@hookspec
def register_explainers(register: Register) -> None:
    """Register saliency explainers (subclasses of ``xalbench.Explainer``)."""


@hookspec
def register_losses(register: Register) -> None:
    """Register training losses (subclasses of ``xalbench.Loss``)."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets (subclasses of ``xalbench.Dataset``)."""


@hookspec
def register_models(register: Register) -> None:
    """Register model factories (subclasses of ``xalbench.Model``)."""


@hookspec
def register_suites(register: Register) -> None:
    """Register suites: ``xalbench.SuiteSource`` objects (a TOML file path or text)."""


@hookspec
def register_protocols(register: Register) -> None:
    """Register named budget protocols (``xalbench.harness.budget.Protocol`` objects)."""
