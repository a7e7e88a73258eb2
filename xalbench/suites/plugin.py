"""Registers every built-in suite: each ``xalbench/suites/*.toml`` file, by its ``name``."""

from __future__ import annotations

import tomllib
from pathlib import Path

from xalbench.hookspecs import Register, hookimpl
from xalbench.suite import SuiteSource

SUITE_DIR = Path(__file__).parent


def suite_sources(directory: Path = SUITE_DIR) -> list[SuiteSource]:
    """A :class:`SuiteSource` per TOML file in ``directory`` (name and description read lazily)."""
    sources = []
    for path in sorted(directory.glob("*.toml")):
        with path.open("rb") as fh:
            head = tomllib.load(fh)
        summary = str(head.get("description", "")).strip().split(".")[0]
        sources.append(SuiteSource(name=str(head.get("name", path.stem)), path=str(path), summary=summary))
    return sources


@hookimpl
def register_suites(register: Register) -> None:
    for source in suite_sources():
        register(source)
