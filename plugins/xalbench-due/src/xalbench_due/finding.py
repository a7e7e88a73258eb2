"""DUE's question (Table 1): does DUE's uncertainty-weighted supervision from interpolated slices beat
Baseline+ on explanation IoU? ``due`` / ``due-paper`` vs ``due-baseline-plus`` with the same strategy,
paired by seed on the AULC of IoU; asked only on 3D data whose volumes have slices left unannotated
(elsewhere the losses are equal by construction: there is nothing to interpolate)."""

from __future__ import annotations

from typing import ClassVar

from xalbench.report.base import Block, DatasetFacts, Finding, Pair
from xalbench.report.cells import RunCells

__all__ = ["DUEVsBaselinePlus"]

DUE_LOSSES = ("due", "due-paper")
BASELINE = "due-baseline-plus"


class DUEVsBaselinePlus(Finding):
    """DUE vs Baseline+ (same strategy) on the AULC of explanation IoU, on sparse 3D annotations."""

    name: ClassVar[str] = "due"
    title: ClassVar[str] = "DUE Table 1: DUE vs Baseline+ on explanation IoU (sparse 3D annotations)"
    summary: ClassVar[str] = "Does DUE beat Baseline+ on explanation IoU where slices are left unannotated?"
    paper: ClassVar[str] = "Zhao et al., DUE (Table 1: IoU of explanations, DUE vs Baseline+)"
    question: ClassVar[str] = ("Does DUE's uncertainty-weighted supervision from interpolated slices beat Baseline+ "
                               "on explanation IoU?")
    quantities: ClassVar[tuple[str, ...]] = ("iou",)
    claim = "every"
    needs: ClassVar[str] = "no DUE (loss due / due-paper) beside Baseline+ (loss due-baseline-plus) with the same strategy"

    def applies_to(self, facts: DatasetFacts) -> str | None:
        if facts.spatial_dims == 2:
            return "2D images: no slices to interpolate, DUE equals Baseline+"
        if facts.sparse_annotations is False:
            return "every slice annotated: nothing to interpolate, DUE equals Baseline+"
        return None

    def pairs(self, run: RunCells) -> list[Pair]:
        asked = run.asked(self)
        base = {(c.dataset, c.strategy_key): c.method for c in run.where(asked, loss=BASELINE)}
        return [Pair(*t) for t in sorted({(c.dataset, c.method, base[(c.dataset, c.strategy_key)])
                                          for c in run.where(asked) if c.loss in DUE_LOSSES
                                          and (c.dataset, c.strategy_key) in base})]

    def answer(self, run: RunCells) -> Block:
        if not self.pairs(run):
            have = sorted({c.loss for c in run.cells if c.loss.startswith("due")})
            return self.missing(run, self.needs + (f"; the run has {', '.join(have)}" if have else ""))
        return super().answer(run)
