"""Sparse slice annotations: where they sit, how gaps are split into blocks, training triplets.

DUE annotates a volume on a few axial slices. Its public code maps the original CT slices onto
the resampled depth grid at ``round(linspace(0, D − 1, org_depth))`` (:func:`linspace_positions`);
the slices in between are "missing". xalbench datasets mark annotated slices directly
(``annotated_slices``, ``N×D`` bool); :func:`annotated_positions` reads them.

A volume's missing slices fall into **blocks** (:class:`Block`): a *gap* between two
consecutive annotated slices (both slices condition the interpolator), and — when the first or
last annotated slice is not at the volume's border, as in ``synth-lesion-3d`` whose annotation
phase is random — a *head* before the first and a *tail* after the last annotated slice, which
are extrapolated from the one neighbouring context (the other condition channel dropped, the
MCVD prediction mode the condition dropout of eq. 3 trains). Weights are min-max normalised per
block.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = ["Block", "Step", "linspace_positions", "annotated_positions", "blocks", "fill_schedule",
           "nearest_fill", "triplets"]


def linspace_positions(depth: int, org_depth: int) -> np.ndarray:
    """Annotated slice indices of DUE's code: ``round(linspace(0, depth − 1, org_depth))``.

    >>> linspace_positions(64, 4).tolist()
    [0, 21, 42, 63]
    """
    if depth < 1 or org_depth < 1 or org_depth > depth:
        raise ValueError(f"need 1 ≤ org_depth ≤ depth, got org_depth={org_depth}, depth={depth}")
    return np.round(np.linspace(0, depth - 1, org_depth)).astype(np.int64)


def annotated_positions(flags: Tensor | np.ndarray) -> np.ndarray:
    """Sorted indices of the annotated slices from a ``D`` bool vector."""
    arr = np.asarray(flags.detach().cpu() if isinstance(flags, Tensor) else flags).astype(bool).reshape(-1)
    return np.flatnonzero(arr)


@dataclasses.dataclass(frozen=True)
class Block:
    """Missing slices ``lo..hi`` (inclusive) with their context slices (``None`` = absent)."""

    kind: Literal["gap", "head", "tail"]
    lo: int
    hi: int
    prev: int | None
    next: int | None

    @property
    def slices(self) -> range:
        return range(self.lo, self.hi + 1)


def blocks(positions: np.ndarray, depth: int) -> list[Block]:
    """Blocks of missing slices for annotated ``positions`` in a volume of ``depth`` slices."""
    pos = [int(p) for p in np.unique(np.asarray(positions, dtype=np.int64))]
    if not pos:
        return []
    if pos[0] < 0 or pos[-1] >= depth:
        raise ValueError(f"annotated positions {pos} outside a volume of depth {depth}")
    out: list[Block] = []
    if pos[0] > 0:
        out.append(Block("head", 0, pos[0] - 1, None, pos[0]))
    for a, b in zip(pos[:-1], pos[1:], strict=True):
        if b - a > 1:
            out.append(Block("gap", a + 1, b - 1, a, b))
    if pos[-1] < depth - 1:
        out.append(Block("tail", pos[-1] + 1, depth - 1, pos[-1], None))
    return out


@dataclasses.dataclass(frozen=True)
class Step:
    """One slice to sample: ``target`` from the slices ``prev``/``next`` (``None`` = dropped)."""

    target: int
    prev: int | None
    next: int | None


def _bisect(a: int, b: int, level: int, out: dict[int, list[Step]]) -> None:
    if b - a < 2:
        return
    mid = (a + b) // 2
    out.setdefault(level, []).append(Step(mid, a, b))
    _bisect(a, mid, level + 1, out)
    _bisect(mid, b, level + 1, out)


def fill_schedule(block_list: list[Block]) -> list[list[Step]]:
    """Autoregressive order: a list of levels; the steps of one level are independent.

    Gaps are filled by recursive bisection — the slice midway between two known slices (the
    lower one for an even gap) is sampled from them, then each half is filled the same way, so
    every new slice is conditioned on earlier interpolations (the paper's autoregressive
    chunking, §4.2). Heads and tails grow outward one slice per level from their context.
    """
    levels: dict[int, list[Step]] = {}
    for blk in block_list:
        if blk.kind == "gap":
            assert blk.prev is not None and blk.next is not None
            _bisect(blk.prev, blk.next, 0, levels)
        elif blk.kind == "head":
            assert blk.next is not None
            for i, j in enumerate(range(blk.hi, blk.lo - 1, -1)):
                levels.setdefault(i, []).append(Step(j, None, j + 1))
        else:
            assert blk.prev is not None
            for i, j in enumerate(range(blk.lo, blk.hi + 1)):
                levels.setdefault(i, []).append(Step(j, j - 1, None))
    return [levels[k] for k in sorted(levels)]


def nearest_fill(roi: Tensor, positions: np.ndarray) -> Tensor:
    """Every slice takes the mask of the nearest annotated slice (ties → the earlier one).

    This is the binary target ``m`` of DUE's coded loss and Baseline⁺'s target.
    """
    pos = np.asarray(positions, dtype=np.int64)
    if pos.size == 0:
        return torch.zeros_like(roi)
    depth = roi.shape[0]
    dist = np.abs(np.arange(depth)[:, None] - pos[None, :])
    nearest = pos[np.argmin(dist, axis=1)]  # argmin → first (earlier) position on ties
    return roi[torch.as_tensor(nearest)]


def triplets(roi: Tensor, positions: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
    """(previous, middle, next) of every three consecutive annotated slices, ``P×H×W`` each."""
    pos = np.unique(np.asarray(positions, dtype=np.int64))
    if pos.size < 3:
        empty = roi.new_zeros((0, *roi.shape[1:]))
        return empty, empty, empty
    idx = torch.as_tensor(pos)
    return roi[idx[:-2]], roi[idx[1:-1]], roi[idx[2:]]
