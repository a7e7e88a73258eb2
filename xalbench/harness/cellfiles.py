"""A cell's files: decide finished / resume / run, and keep damaged or superseded files aside.

Decided in the planning process *before* cells are dispatched (so ``xalbench run`` can print
``N finished, M resumed, K to run``) and again by the cell itself (another worker or cluster
may have finished it meanwhile).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from xalbench.harness.identity import CellSpec
from xalbench.results import CorruptResultError, atomic_write_json, move_aside, read_verified, seal
from xalbench.training.base import TrainedModels

if TYPE_CHECKING:
    from xalbench.harness.state import CellRun

__all__ = ["CellFiles", "CellStatus", "cell_status", "read_checkpoint"]

Status = Literal["finished", "resume", "run"]


@dataclasses.dataclass(frozen=True)
class CellStatus:
    status: Status
    rounds_done: int = 0
    notes: tuple[str, ...] = ()
    result: dict[str, Any] | None = None


def _retire(path: Path, why: str, to: str) -> str:
    target = move_aside(path, to=to)
    return f"{why}: {path.name} moved to {target.relative_to(path.parent)}"


def read_checkpoint(spec: CellSpec, notes: list[str] | None = None) -> dict[str, Any] | None:
    """The cell's checkpoint if it belongs to this identity; a damaged one is moved aside."""
    path = spec.partial_path
    if not path.exists():
        return None
    try:
        data = read_verified(path)
    except CorruptResultError as exc:
        msg = _retire(path, f"damaged checkpoint ({exc})", "corrupt")
        if notes is not None:
            notes.append(msg)
        return None
    if data.get("identity_sha256") != spec.identity_sha256:
        path.unlink()  # an unfinished run of another configuration or code: start over
        for extra in (spec.weights_path,):
            if extra.exists():
                extra.unlink()
        return None
    return data


def cell_status(spec: CellSpec, *, retire: bool = True) -> CellStatus:
    """What to do with ``spec``: ``finished`` (its file matches its identity), ``resume`` (a
    checkpoint of this identity exists) or ``run``. With ``retire``, a damaged file is moved to
    ``*.corrupt`` and a finished cell of another identity to ``cells/.superseded/``."""
    notes: list[str] = []
    path = spec.result_path
    if path.exists():
        try:
            data = read_verified(path)
        except CorruptResultError as exc:
            if not retire:
                return CellStatus("run", notes=(str(exc),))
            notes.append(_retire(path, f"damaged result ({exc})", "corrupt"))
        else:
            same = data.get("identity_sha256") == spec.identity_sha256
            if same and data.get("status") in ("ok", "skipped"):
                return CellStatus("finished", notes=tuple(notes), result=data)
            if not same and retire:
                notes.append(_retire(path, "configuration or code changed", "superseded"))
    partial = read_checkpoint(spec, notes) if retire else None
    if partial is not None:
        return CellStatus("resume", rounds_done=len(partial.get("rounds", [])), notes=tuple(notes))
    return CellStatus("run", notes=tuple(notes))


class CellFiles:
    """A cell's :class:`~xalbench.harness.loop.RoundStore` on disk: a sealed checkpoint of the rounds
    done (``*.partial.json``) and, when the run needs them to continue, the models and generated masks
    (``*.partial.pt``, written first, so a checkpoint never points at a missing or older file)."""

    def __init__(self, spec: CellSpec) -> None:
        self.spec = spec

    def resume(self, run: CellRun) -> tuple[list[dict[str, Any]], np.ndarray] | None:
        spec = self.spec
        checkpoint = read_checkpoint(spec)
        if checkpoint is None:
            return None
        labelled = np.asarray(checkpoint["labelled"], dtype=np.int64)
        if spec.weights_path.exists():
            state = torch.load(spec.weights_path, map_location="cpu", weights_only=True)
            run.masks.load(state.get("masks", {}))
            if ("model" in state and spec.suite.training.warm_start) or state.get("extra"):
                model = run.new_model()
                if "model" in state:
                    model.load_state_dict(state["model"])
                extra = {}
                for name, weights in state.get("extra", {}).items():
                    extra[name] = run.new_model()
                    extra[name].load_state_dict(weights)
                run.trained = TrainedModels(main=model, extra=extra)
        return list(checkpoint["rounds"]), labelled

    def checkpoint(self, run: CellRun, rounds: list[dict[str, Any]], labelled: np.ndarray) -> None:
        spec = self.spec
        extras: dict[str, Any] = {}
        if run.masks.generated:
            extras["masks"] = run.masks.state()
        if spec.suite.training.warm_start and run.trained is not None:
            extras["model"] = run.trained.main.state_dict()
        if getattr(run.trainer, "keeps_state", False) and run.trained is not None and run.trained.extra:
            extras["extra"] = {name: m.state_dict() for name, m in run.trained.extra.items()}
        if extras:
            tmp = spec.weights_path.with_suffix(".tmp")
            torch.save(extras, tmp)
            tmp.replace(spec.weights_path)
        atomic_write_json(spec.partial_path, seal({"identity_sha256": spec.identity_sha256, "rounds": rounds,
                                                   "labelled": labelled.tolist()}))
