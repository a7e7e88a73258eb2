"""What every executor shares: the worker-side cell task, the result of a lost cell, CLI options.

* :func:`run_cell_task` is what a back end ships to a worker: one cell at a time per process
  (torch's global RNG and thread count are per process, so two cells in threads of one process
  would change each other's bits), with the cell's GPU made current first.
* :func:`lost_cell_result` is the result of a cell whose worker died (out of memory, node lost,
  job cancelled): the cell's sealed file if it got written after all, otherwise a ``failed``
  result carrying the rounds of its last checkpoint. No file is written, so the next run
  resumes the cell from that checkpoint.
* :func:`parse_cli_options` turns ``--executor-option KEY=VALUE`` pairs into typed options.
"""

from __future__ import annotations

import dataclasses
import threading
import types
import typing
from collections.abc import Iterable
from typing import Any

from xalbench.errors import ConfigError

__all__ = ["lost_cell_result", "parse_cli_options", "run_cell_task"]

_ONE_CELL_PER_PROCESS = threading.Lock()


def run_cell_task(spec: Any) -> dict[str, Any]:
    """:func:`~xalbench.harness.cell.run_cell` for a worker (Dask, Ray, SLURM, a GPU queue)."""
    from xalbench.execution.gpus import prepare_device
    from xalbench.harness.cell import run_cell

    with _ONE_CELL_PER_PROCESS:
        prepare_device(spec.device)
        return run_cell(spec)


def lost_cell_result(spec: Any, error_type: str, message: str) -> dict[str, Any]:
    """The cell's finished file if its worker wrote one before dying, else a sealed ``failed`` result."""
    from xalbench.harness.cellfiles import cell_status, read_checkpoint
    from xalbench.harness.summary import result_dict, summarise
    from xalbench.results import environment, seal

    status = cell_status(spec, retire=False)
    if status.status == "finished" and status.result is not None:
        return status.result
    rounds = (read_checkpoint(spec) or {}).get("rounds", [])
    error = {"type": error_type, "message": message, "rule": None, "traceback": ""}
    return seal(result_dict(spec, "failed", error=error, rounds=rounds, summary=summarise(rounds),
                            provenance={"environment": environment(spec.threads, spec.device)}))


def _convert(text: str, hint: Any, key: str, owner: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if text.lower() in ("none", "") and len(args) < len(typing.get_args(hint)):
            return None
        return _convert(text, args[0], key, owner) if len(args) == 1 else text
    if hint is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{owner}: option {key!r} takes true or false, not {text!r}")
    for kind, word in ((int, "an integer"), (float, "a number")):
        if hint is kind:
            try:
                return kind(text)
            except ValueError:
                raise ConfigError(f"{owner}: option {key!r} takes {word}, not {text!r}") from None
    return text


def parse_cli_options(cls: type, pairs: Iterable[str]) -> dict[str, Any]:
    """``["n_workers=2", "processes=false"]`` → ``{"n_workers": 2, "processes": False}``, typed by
    ``cls.Options``; unknown keys are left for ``Options.parse`` (its error lists the valid ones)."""
    owner = f"executor {getattr(cls, 'name', cls.__name__)!r}"
    options_cls = cls.Options  # type: ignore[attr-defined]
    hints = typing.get_type_hints(options_cls) if dataclasses.is_dataclass(options_cls) else {}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--executor-option takes KEY=VALUE (e.g. n_workers=2), not {pair!r}")
        if key in out:
            raise ConfigError(f"--executor-option {key} is given twice")
        out[key] = _convert(value.strip(), hints[key], key, owner) if key in hints else value.strip()
    return out
