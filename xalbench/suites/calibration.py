"""The calibration a built-in suite ships: ``<suite file stem>.calibration.json`` beside its TOML.

A calibration is one stored run of the suite summarised per dataset — the between-seed standard
deviation of the paired ΔAULC of each paper question's comparisons and of every method vs
``random+ce``, the seed count they came from and the mean cell-seconds — from which a dry run
states the minimum detectable Δ at n seeds and the wall time. The format is described in
``docs/suites.md`` ("Calibration files"); :mod:`xalbench.report.calibrate` writes it from a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xalbench.errors import ConfigError

__all__ = ["CALIBRATION_SUFFIX", "calibration_path", "load_calibration"]

CALIBRATION_SUFFIX = ".calibration.json"


def calibration_path(suite_name: str, directory: Path | None = None) -> Path | None:
    """Where the built-in suite ``suite_name``'s calibration would lie (beside its TOML), or ``None``
    when no built-in suite has that name."""
    from xalbench.suites.plugin import SUITE_DIR, suite_sources

    for source in suite_sources(directory or SUITE_DIR):
        if source.name == suite_name and source.path:
            path = Path(source.path)
            return path.with_name(path.stem + CALIBRATION_SUFFIX)
    return None


def load_calibration(suite_name: str, directory: Path | None = None) -> dict[str, Any] | None:
    """The calibration of the built-in suite ``suite_name`` as a dict, or ``None`` when the suite
    ships none (or is not a built-in suite). A file that is not a JSON object with a ``datasets``
    table for this suite is a :class:`~xalbench.errors.ConfigError` naming the file."""
    path = calibration_path(suite_name, directory)
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"calibration {path} cannot be read as JSON ({exc}); regenerate it with "
                          f"`python -m xalbench.report.calibrate RESULTS_DIR -o {path}`") from exc
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), dict):
        raise ConfigError(f"calibration {path} must be a JSON object with a 'datasets' table; see docs/suites.md")
    if data.get("suite", suite_name) != suite_name:
        raise ConfigError(f"calibration {path} is for suite {data.get('suite')!r}, not {suite_name!r}")
    return data
