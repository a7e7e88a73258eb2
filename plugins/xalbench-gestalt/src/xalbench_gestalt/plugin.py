"""Entry point ``xalbench_gestalt.plugin``: the GESTALT strategies, their baselines, the suites and its question."""

from __future__ import annotations

import tomllib
from pathlib import Path

import xalbench
from xalbench.hookspecs import Register
from xalbench.suite import SuiteSource
from xalbench_gestalt.baselines import IDEAL, MCDropoutVariance
from xalbench_gestalt.strategies import GestaltEdge, GestaltNode, GestaltWeightedNode

SUITE_DIR = Path(__file__).parent / "suites"
STRATEGIES = (GestaltNode, GestaltEdge, GestaltWeightedNode, IDEAL, MCDropoutVariance)


def suite_sources() -> list[SuiteSource]:
    """One :class:`SuiteSource` per TOML file shipped in ``xalbench_gestalt/suites``."""
    out = []
    for path in sorted(SUITE_DIR.glob("*.toml")):
        with path.open("rb") as fh:
            head = tomllib.load(fh)
        summary = " ".join(str(head.get("description", "")).split()).split(". ")[0]
        out.append(SuiteSource(name=str(head.get("name", path.stem)), path=str(path), summary=summary))
    return out


@xalbench.hookimpl
def register_strategies(register: Register) -> None:
    for cls in STRATEGIES:
        register(cls)


@xalbench.hookimpl
def register_suites(register: Register) -> None:
    for source in suite_sources():
        register(source)


@xalbench.hookimpl
def register_findings(register: Register) -> None:
    from xalbench_gestalt.finding import GestaltVsUncertainty

    register(GestaltVsUncertainty)
