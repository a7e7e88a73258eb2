"""A cell's files: decide finished / resume / run, keep damaged, forged or superseded files aside,
and keep a running cell's progress (:class:`CellFiles`).

Decided in the planning process *before* cells are dispatched (so ``xalbench run`` can print
``N finished, M resumed, K to run``) and again by the cell itself (another worker or cluster
may have finished it meanwhile). Every file is sealed with the results directory's key
(:mod:`xalbench.sealing`): a file whose keyed seal does not verify — rewritten by anything that
cannot read the key, such as a confined plugin — is named, moved aside as ``*.forged`` and its
cell redone.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from xalbench.harness.identity import CellSpec
from xalbench.results import (
    CorruptResultError,
    ForgedResultError,
    atomic_write_json,
    move_aside,
    read_verified,
)
from xalbench.sealing import Sealer
from xalbench.training.base import TrainedModels

if TYPE_CHECKING:
    from xalbench.harness.state import CellRun

__all__ = ["CellFiles", "CellStatus", "Progress", "apply_progress", "cell_status", "progress_of", "read_checkpoint"]

Status = Literal["finished", "resume", "run"]


@dataclasses.dataclass(frozen=True)
class CellStatus:
    status: Status
    rounds_done: int = 0
    notes: tuple[str, ...] = ()
    result: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class Progress:
    """A cell's progress after a round: the checkpoint record (rounds done, labelled set) and what
    the run needs to continue (``extras``: models of a warm start or a stateful trainer, generated
    masks), or ``None``."""

    record: dict[str, Any]
    extras: dict[str, Any] | None = None


def _retire(path: Path, why: str, to: str) -> str:
    target = move_aside(path, to=to)
    return f"{why}: {path.name} moved to {target.relative_to(path.parent)}"


def _read(path: Path, sealer: Sealer | None, what: str, notes: list[str] | None) -> dict[str, Any] | None:
    """A sealed file's content, or ``None`` after moving a damaged (``*.corrupt``) or forged
    (``*.forged``) one aside with a note."""
    try:
        return read_verified(path, sealer=sealer)
    except ForgedResultError as exc:
        msg = _retire(path, f"forged {what} ({exc})", "forged")
    except CorruptResultError as exc:
        msg = _retire(path, f"damaged {what} ({exc})", "corrupt")
    if notes is not None:
        notes.append(msg)
    return None


def read_checkpoint(spec: CellSpec, notes: list[str] | None = None) -> dict[str, Any] | None:
    """The cell's checkpoint if it belongs to this identity; a damaged or forged one is moved aside."""
    path = spec.partial_path
    if not path.exists():
        return None
    data = _read(path, Sealer.existing(spec.out_dir), "checkpoint", notes)
    if data is None or data.get("identity_sha256") != spec.identity_sha256:
        for stale in (path, spec.weights_path):  # another configuration's or a rejected one: start over
            if stale.exists():
                stale.unlink()
        return None
    return data


def cell_status(spec: CellSpec, *, retire: bool = True) -> CellStatus:
    """What to do with ``spec``: ``finished`` (its file matches its identity), ``resume`` (a
    checkpoint of this identity exists) or ``run``. With ``retire``, a damaged file is moved to
    ``*.corrupt``, a forged one to ``*.forged`` and a finished cell of another identity to
    ``cells/.superseded/``."""
    notes: list[str] = []
    path = spec.result_path
    if path.exists():
        sealer = Sealer.existing(spec.out_dir)
        try:
            data: dict[str, Any] | None = read_verified(path, sealer=sealer)
        except CorruptResultError as exc:
            if not retire:
                return CellStatus("run", notes=(str(exc),))
            data = _read(path, sealer, "result", notes)
        if data is not None:
            same = data.get("identity_sha256") == spec.identity_sha256
            if same and data.get("status") in ("ok", "skipped"):
                return CellStatus("finished", notes=tuple(notes), result=data)
            if not same and retire:
                notes.append(_retire(path, "configuration or code changed", "superseded"))
    partial = read_checkpoint(spec, notes) if retire else None
    if partial is not None:
        return CellStatus("resume", rounds_done=len(partial.get("rounds", [])), notes=tuple(notes))
    return CellStatus("run", notes=tuple(notes))


def progress_of(run: CellRun, rounds: list[dict[str, Any]], labelled: np.ndarray) -> Progress:
    """What a checkpoint after ``rounds`` keeps (computed where the run is)."""
    extras: dict[str, Any] = {}
    if run.masks.generated:
        extras["masks"] = run.masks.state()
    if run.config.training.warm_start and run.trained is not None:
        extras["model"] = run.trained.main.state_dict()
    if getattr(run.trainer, "keeps_state", False) and run.trained is not None and run.trained.extra:
        extras["extra"] = {name: m.state_dict() for name, m in run.trained.extra.items()}
    record = {"identity_sha256": run.spec.identity_sha256, "rounds": rounds, "labelled": labelled.tolist()}
    return Progress(record, extras or None)


def apply_progress(run: CellRun, progress: Progress) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Restore ``run`` from a checkpoint (masks, models); the rounds done and the labelled set."""
    state = progress.extras or {}
    run.masks.load(state.get("masks", {}))
    if ("model" in state and run.config.training.warm_start) or state.get("extra"):
        model = run.new_model()
        if "model" in state:
            model.load_state_dict(state["model"])
        extra = {}
        for name, weights in state.get("extra", {}).items():
            extra[name] = run.new_model()
            extra[name].load_state_dict(weights)
        run.trained = TrainedModels(main=model, extra=extra)
    return list(progress.record["rounds"]), np.asarray(progress.record["labelled"], dtype=np.int64)


class CellFiles:
    """A cell's progress on disk — its :class:`~xalbench.harness.loop.RoundStore`: a sealed checkpoint
    of the rounds done (``*.partial.json``) and, when the run needs them to continue, the models and
    generated masks (``*.partial.pt``, written first, so a checkpoint never points at a missing or
    older file); and what cells share: round 0's model (``shared/round0/<training identity>.pt``) and
    the full-data reference (``reference/<dataset, loss, seed>.json``). Everything it writes is sealed
    with the results directory's key (created on first use)."""

    def __init__(self, spec: CellSpec) -> None:
        self.spec = spec
        self.sealer = Sealer.for_results(spec.out_dir)

    # ------------------------------------------------------------------ progress (file side)
    def read_progress(self) -> Progress | None:
        checkpoint = read_checkpoint(self.spec)
        if checkpoint is None:
            return None
        path = self.spec.weights_path
        extras = torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None
        return Progress(checkpoint, extras)

    def write_progress(self, progress: Progress) -> None:
        spec = self.spec
        if progress.extras:
            tmp = spec.weights_path.with_suffix(".tmp")
            torch.save(progress.extras, tmp)
            tmp.replace(spec.weights_path)
        atomic_write_json(spec.partial_path, self.sealer.seal(progress.record))

    # ------------------------------------------------------------------ RoundStore
    def resume(self, run: CellRun) -> tuple[list[dict[str, Any]], np.ndarray] | None:
        progress = self.read_progress()
        return None if progress is None else apply_progress(run, progress)

    def checkpoint(self, run: CellRun, rounds: list[dict[str, Any]], labelled: np.ndarray) -> None:
        self.write_progress(progress_of(run, rounds, labelled))

    # ------------------------------------------------------------------ shared between cells
    def _round0_path(self, digest: str) -> Path:
        return Path(self.spec.out_dir) / "shared" / "round0" / f"{digest}.pt"

    def load_round0(self, digest: str) -> dict[str, Any] | None:
        path = self._round0_path(digest)
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, KeyError, EOFError):
            return None  # damaged: the cell trains again and overwrites it

    def save_round0(self, digest: str, saved: dict[str, Any]) -> None:
        path = self._round0_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        buffer = io.BytesIO()
        torch.save(saved, buffer)
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, path)

    def _reference_path(self, name: str) -> Path:
        return Path(self.spec.out_dir) / "reference" / f"{name}.json"

    def load_reference(self, name: str, digest: str) -> dict[str, float] | None:
        path = self._reference_path(name)
        if not path.exists():
            return None
        try:
            cached = read_verified(path, sealer=self.sealer)
        except CorruptResultError:
            return None
        return cached["metrics"] if cached.get("identity_sha256") == digest else None

    def save_reference(self, name: str, digest: str, record: dict[str, Any]) -> None:
        atomic_write_json(self._reference_path(name), self.sealer.seal({"identity_sha256": digest, **record}))
