"""Entry point ``xalbench_egal.plugin``: registers the ``egal`` strategy, the EG-AL suites and its question.

The training objective of EG-AL (eq. 4, CE + 0.10·(1 − soft Dice(Grad-CAM, ROI))) is the
core loss ``dice``; this plugin does not register a second copy.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import xalbench
from xalbench.hookspecs import Register
from xalbench.suite import SuiteSource
from xalbench_egal.strategy import EGAL

SUITE_DIR = Path(__file__).parent / "suites"


def suite_sources() -> list[SuiteSource]:
    """One :class:`SuiteSource` per TOML file shipped in ``xalbench_egal/suites``."""
    out = []
    for path in sorted(SUITE_DIR.glob("*.toml")):
        with path.open("rb") as fh:
            head = tomllib.load(fh)
        summary = " ".join(str(head.get("description", "")).split()).split(". ")[0]
        out.append(SuiteSource(name=str(head.get("name", path.stem)), path=str(path), summary=summary))
    return out


@xalbench.hookimpl
def register_strategies(register: Register) -> None:
    register(EGAL)


@xalbench.hookimpl
def register_suites(register: Register) -> None:
    for source in suite_sources():
        register(source)


@xalbench.hookimpl
def register_findings(register: Register) -> None:
    from xalbench_egal.finding import EGALVsRandom

    register(EGALVsRandom)
