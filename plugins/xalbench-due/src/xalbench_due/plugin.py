"""Entry point ``xalbench_due.plugin``: DUE's model, losses, metrics, suites and question (Table 1)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import xalbench
from xalbench.hookspecs import Register
from xalbench.suite import SuiteSource

SUITE_DIR = Path(__file__).parent / "suites"


def suite_sources() -> list[SuiteSource]:
    """One :class:`SuiteSource` per TOML file shipped in ``xalbench_due/suites``."""
    out = []
    for path in sorted(SUITE_DIR.glob("*.toml")):
        with path.open("rb") as fh:
            head = tomllib.load(fh)
        summary = " ".join(str(head.get("description", "")).split()).split(". ")[0]
        out.append(SuiteSource(name=str(head.get("name", path.stem)), path=str(path), summary=summary))
    return out


@xalbench.hookimpl
def register_models(register: Register) -> None:
    from xalbench_due.model import DUEResNet18

    register(DUEResNet18)


@xalbench.hookimpl
def register_losses(register: Register) -> None:
    from xalbench_due.losses import DUEBaselinePlusLoss, DUELoss, DUEPaperLoss

    for cls in (DUELoss, DUEPaperLoss, DUEBaselinePlusLoss):
        register(cls)


@xalbench.hookimpl
def register_metrics(register: Register) -> None:
    from xalbench_due.metrics import DUE_METRICS

    for cls in DUE_METRICS:
        register(cls)


@xalbench.hookimpl
def register_suites(register: Register) -> None:
    for source in suite_sources():
        register(source)


@xalbench.hookimpl
def register_findings(register: Register) -> None:
    from xalbench_due.finding import DUEVsBaselinePlus

    register(DUEVsBaselinePlus)
