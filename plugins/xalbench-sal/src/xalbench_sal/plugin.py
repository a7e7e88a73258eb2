"""Registers SAL's trainers and suites through the public hooks."""

from __future__ import annotations

from pathlib import Path

from xalbench import hookimpl
from xalbench.hookspecs import Register
from xalbench.suite import SuiteSource
from xalbench_sal.trainers import DualTrainer, TAITTrainer

SUITES = Path(__file__).parent / "suites"


@hookimpl
def register_trainers(register: Register) -> None:
    register(DualTrainer)
    register(TAITTrainer)


@hookimpl
def register_suites(register: Register) -> None:
    import tomllib

    for path in sorted(SUITES.glob("*.toml")):
        head = tomllib.loads(path.read_text(encoding="utf-8"))
        register(SuiteSource(name=head["name"], path=str(path), summary=str(head.get("description", "")).split(".")[0]))
