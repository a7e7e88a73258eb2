"""Board rows: mean ± 95 % CI over seeds of each recomputed AULC, the paired Δ against the
same submission's ``random+ce`` canary, the verification status and the held-out score.

The 95 % interval is Student's t: mean ± t(0.975, n − 1) · s / √n with the sample standard
deviation s (``None`` for a single seed). Δ is paired over seeds (same initial set and
weights per seed): the interval is that of the per-seed differences, and ``p`` is the paired
t-test's p-value — the report's test — Holm-corrected over the board's rows of one (suite,
dataset), only with at least 3 seeds (``None`` otherwise).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from xalbench.leaderboard import CANARY_METHOD
from xalbench.leaderboard.check import CheckedSubmission

__all__ = ["Stat", "Row", "mean_ci", "board_rows", "STATUS_ORDER"]

STATUS_ORDER = {"verified": 0, "self-reported": 1, "flagged": 2}


@dataclasses.dataclass(frozen=True)
class Stat:
    mean: float | None
    ci: float | None
    n: int


@dataclasses.dataclass(frozen=True)
class Row:
    suite: str
    status: str
    submitter: str
    plugin: str
    version: str
    dataset: str
    method: str
    n_seeds: int
    aulc: dict[str, Stat]
    delta: dict[str, Stat]
    held_out: dict[str, float | None]
    held_out_submitted: dict[str, float | None]
    manifest_sha256: str
    pool_masks_visible: bool = False  # † on the board: the strategy saw the pool's ROI masks
    note: str = ""  # why the method has no result on this dataset (n/a)
    p: dict[str, float | None] = dataclasses.field(default_factory=dict)  # Holm-corrected paired test vs the canary

    def sort_key(self, primary: str) -> tuple[Any, ...]:
        value = self.aulc.get(primary, Stat(None, None, 0)).mean
        return (self.suite, self.dataset, STATUS_ORDER.get(self.status, 9), 1 if value is None else 0,
                -(value or 0.0), self.submitter, self.plugin, self.version, self.method)


def mean_ci(values: Sequence[float | None]) -> Stat:
    xs = [float(v) for v in values if v is not None]
    if not xs or len(xs) != len(values):
        return Stat(None, None, len(xs))
    mean = math.fsum(xs) / len(xs)
    if len(xs) < 2:
        return Stat(mean, None, 1)
    from scipy import stats

    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    return Stat(mean, float(stats.t.ppf(0.975, len(xs) - 1)) * sd / math.sqrt(len(xs)), len(xs))


def board_rows(subs: Sequence[CheckedSubmission], verifications: dict[str, dict[str, Any] | None],
               keys: Sequence[str]) -> list[Row]:
    """One row per (submission, dataset, own method); ``verifications`` maps manifest sha → record."""
    rows: list[Row] = []
    for sub in subs:
        m = sub.manifest
        record = verifications.get(sub.manifest_sha256)
        status = record["status"] if record else "self-reported"
        if record and record.get("isolation") and record["isolation"] != "confined":
            status += f" ({record['isolation']} isolation)"  # re-runs the kernel did not confine
        held = (record or {}).get("held_out") or {}
        by_cell = {(c.dataset, c.method, c.seed): c for c in sub.cells}
        skipped = {(d, m): why for d, m, why in sub.skipped}
        datasets = sorted({c.dataset for c in sub.cells} | {d for d, _ in skipped})
        for d in datasets:
            for method in sub.own_methods:
                seeds = sorted(s for (dd, mm, s) in by_cell if dd == d and mm == method)
                if not seeds:
                    if (d, method) in skipped:
                        empty = {k: Stat(None, None, 0) for k in keys}
                        rows.append(Row(m["suite"]["name"], status, m["submitter"], m["plugin"]["name"],
                                        m["plugin"]["version"], d, method, 0, empty, dict(empty),
                                        dict.fromkeys(keys), dict.fromkeys(keys), sub.manifest_sha256,
                                        note=skipped[(d, method)]))
                    continue
                aulc = {k: mean_ci([by_cell[(d, method, s)].aulc.get(k) for s in seeds]) for k in keys}
                delta: dict[str, Stat] = {}
                raw_p: dict[str, float | None] = {}
                for k in keys:
                    raw_p[k] = None
                    if method == CANARY_METHOD:
                        delta[k] = Stat(None, None, 0)
                        continue
                    diffs: list[float | None] = []
                    pairs: list[tuple[float, float]] = []
                    for s in seeds:
                        a = by_cell[(d, method, s)].aulc.get(k)
                        b = by_cell[(d, CANARY_METHOD, s)].aulc.get(k)
                        diffs.append(None if a is None or b is None else a - b)
                        if a is not None and b is not None:
                            pairs.append((a, b))
                    delta[k] = mean_ci(diffs)
                    raw_p[k] = _paired_p(pairs)
                entry = (held.get(d) or {}).get(method) or {}
                rows.append(Row(m["suite"]["name"], status, m["submitter"], m["plugin"]["name"], m["plugin"]["version"], d, method,
                                len(seeds), aulc, delta,
                                {k: entry.get("held_out", {}).get(k) for k in keys},
                                {k: entry.get("submitted", {}).get(k) for k in keys},
                                sub.manifest_sha256,
                                pool_masks_visible=any(by_cell[(d, method, s)].pool_masks_visible for s in seeds),
                                p=raw_p))
    primary = keys[0] if keys else "acc"
    return sorted(_holm_per_dataset(rows, keys), key=lambda r: r.sort_key(primary))


def _paired_p(pairs: Sequence[tuple[float, float]]) -> float | None:
    from xalbench.report.tables import paired_pvalue

    p = paired_pvalue([a for a, _ in pairs], [b for _, b in pairs])
    return None if math.isnan(p) else p


def _holm_per_dataset(rows: list[Row], keys: Sequence[str]) -> list[Row]:
    """Holm-correct each key's p-values over the rows of one (suite, dataset), as the report does."""
    from xalbench.report.tables import holm

    out = list(rows)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(out):
        groups.setdefault((r.suite, r.dataset), []).append(i)
    for idx in groups.values():
        for k in keys:
            raw = [out[i].p.get(k) for i in idx]
            adjusted = holm([math.nan if v is None else v for v in raw])
            for i, v in zip(idx, adjusted, strict=True):
                out[i] = dataclasses.replace(out[i], p={**out[i].p, k: None if math.isnan(v) else v})
    return out
