"""Findings: the five papers' questions answered from a run's own cells (``xalbench report --findings``).

One block per question — ``{"title", "verdict", "text", "question", "comparisons"}`` — with
the statistic behind it. Every comparison is **paired by seed** (the harness gives every
method of a (dataset, seed) the same initial labelled set and weights): the mean of the
per-seed differences with its 95 % Student-t interval and the paired t-test, only with at
least :data:`MIN_SEEDS` pairs.

Verdict of one comparison of a claim "A beats B on metric M": ``reproduced`` when the 95 %
interval of Δ lies above 0 (so p < 0.05), ``not reproduced`` when it lies below 0, else
``inconclusive`` (fewer than 3 paired seeds, or an interval that contains 0). A block
combines its comparisons: ``reproduced`` when at least one is and none is not reproduced,
``not reproduced`` in the mirror case, ``inconclusive`` otherwise (all inconclusive, or mixed
— the text says which). A method or dataset the question needs that the run lacks makes the
block say so (verdict ``inconclusive``, no number).

The questions and their statistics:

* **SAL RQ1** — does explanation supervision raise interpretability, and at what cost in
  accuracy? Every method whose loss supervises explanations (not ``ce``) against the method
  with the same strategy trained with ``ce`` (SAL's B2 vs B1): Δ AULC_Dice must lie above 0
  while Δ AULC_acc is not significantly negative ("at equal accuracy"). When the run has
  faithfulness metrics (``deletion``, ``insertion``, ``road``, …), the text says how many of
  the methods that raised Dice lowered faithfulness significantly.
* **EG-AL Table I** — EG-AL vs random sampling under identical training (same loss) on
  AULC_acc; with three or more λ variants of EG-AL, the λ trend (the paper: an interior λ
  beats both extremes).
* **AEIG Fig. 4** — the share of minority-class samples among the acquired ones (from every
  round's ``acquired_class_histogram``), AEIG vs entropy and vs random, on multi-class
  datasets whose pool is imbalanced. The pool's class distribution is estimated from the
  random strategy's acquisitions (an unbiased sample of the pool); minority classes are those
  below the uniform share 1/K.
* **DUE Table 1** — DUE vs Baseline+ (``due``/``due-paper`` vs ``due-baseline-plus``, same
  strategy) on the explanation IoU (AULC of IoU at 0.5).
* **GESTALT Table I** — each GESTALT variant vs MC-dropout uncertainty (``mcd-variance``,
  else ``mcd-entropy``) on multi-label AUC (AULC of macro AUC).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["MIN_SEEDS", "Comparison", "compare", "combine", "findings", "minimum_detectable", "power_notes"]

MIN_SEEDS = 3
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
EXPLANATION_LOSS_EXCLUDE = {"ce"}
FAITHFULNESS_METRICS = ("deletion", "insertion", "road", "randomisation")
#: summary key → (metric name, direction) where the registry cannot be read (the registered declarations win)
_FAITHFULNESS_FALLBACK = {"aulc_del_auc": ("deletion", "min"), "aulc_ins_auc": ("insertion", "max"),
                          "aulc_road": ("road", "min"), "final_mprt": ("randomisation", "min")}


def faithfulness_keys() -> dict[str, tuple[str, str]]:
    """Summary key (``aulc_<key>``, or ``final_<key>`` for a metric without AULC) → (metric, direction)
    of every registered faithfulness metric."""
    try:
        from xalbench.plugins import PluginSelection

        registry = PluginSelection.from_env().registry()
        out = {}
        for name in FAITHFULNESS_METRICS:
            if name in registry.names("metric"):
                cls = registry.get("metric", name)
                out[f"{'aulc' if cls.aulc else 'final'}_{cls.summary_key()}"] = (name, cls.direction)
        return out
    except Exception:  # noqa: BLE001 - findings must render where plugins do not load
        return dict(_FAITHFULNESS_FALLBACK)


# ----------------------------------------------------------------------------- cells
@dataclasses.dataclass(frozen=True)
class Cell:
    dataset: str
    method: str
    seed: int
    strategy: str
    strategy_options: dict[str, Any]
    loss: str
    loss_options: dict[str, Any]
    trainer: str
    mask_source: str
    summary: dict[str, Any]
    rounds: list[dict[str, Any]]

    def value(self, key: str) -> float:
        v = self.summary.get(key)
        return float("nan") if v is None or isinstance(v, bool) else float(v)


def _cells(results: Iterable[dict[str, Any]]) -> list[Cell]:
    out = []
    for r in results:
        if r.get("status") != "ok":
            continue
        c = r["cell"]
        out.append(Cell(c["dataset"], c["method"], int(c["seed"]), c.get("strategy", ""),
                        dict(c.get("strategy_options") or {}), c.get("loss", ""), dict(c.get("loss_options") or {}),
                        c.get("trainer", "standard"), c.get("mask_source", "none"), dict(r.get("summary") or {}),
                        list(r.get("rounds") or [])))
    return out


def _by_method(cells: Sequence[Cell]) -> dict[tuple[str, str], dict[int, Cell]]:
    out: dict[tuple[str, str], dict[int, Cell]] = {}
    for c in cells:
        out.setdefault((c.dataset, c.method), {})[c.seed] = c
    return out


# ----------------------------------------------------------------------------- statistics
@dataclasses.dataclass(frozen=True)
class Comparison:
    """A paired comparison "a beats b" on one quantity (``direction`` of the quantity: max / min)."""

    dataset: str
    a: str
    b: str
    quantity: str
    n: int
    mean: float
    low: float
    high: float
    p: float
    direction: str = "max"

    @property
    def verdict(self) -> str:
        if self.n < MIN_SEEDS or math.isnan(self.low):
            return INCONCLUSIVE
        sign = 1.0 if self.direction == "max" else -1.0
        lo, hi = sorted((sign * self.low, sign * self.high))
        if lo > 0:
            return REPRODUCED
        if hi < 0:
            return NOT_REPRODUCED
        return INCONCLUSIVE

    def describe(self) -> str:
        if self.n == 0:
            return f"{self.a} vs {self.b}: no paired seeds"
        ci = "" if math.isnan(self.low) else f" [{self.low:+.3f}, {self.high:+.3f}]"
        p = f", p = {self.p:.3g}" if not math.isnan(self.p) else f", no test ({self.n} seed{'s' * (self.n != 1)})"
        return f"{self.a} vs {self.b}: Δ{self.quantity} {self.mean:+.3f}{ci}{p}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN → ``None``)."""
        out = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in dataclasses.asdict(self).items()}
        return {**out, "verdict": self.verdict}


def compare(dataset: str, a: str, b: str, av: dict[int, float], bv: dict[int, float], quantity: str,
            direction: str = "max") -> Comparison:
    """Paired by seed: mean Δ = a − b with its 95 % t interval and the paired t-test (≥ 3 pairs)."""
    seeds = sorted(s for s in set(av) & set(bv) if not (math.isnan(av[s]) or math.isnan(bv[s])))
    d = np.asarray([av[s] - bv[s] for s in seeds], dtype=float)
    n = int(d.size)
    if n == 0:
        return Comparison(dataset, a, b, quantity, 0, float("nan"), float("nan"), float("nan"), float("nan"), direction)
    mean = float(d.mean())
    if n < 2:
        return Comparison(dataset, a, b, quantity, n, mean, float("nan"), float("nan"), float("nan"), direction)
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))
    if n < MIN_SEEDS:
        p = float("nan")
    elif sd == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(stats.ttest_1samp(d, 0.0).pvalue)
    return Comparison(dataset, a, b, quantity, n, mean, mean - half, mean + half, p, direction)


def combine(verdicts: Sequence[str]) -> str:
    """A block's verdict from its comparisons' (module docstring)."""
    has_yes, has_no = REPRODUCED in verdicts, NOT_REPRODUCED in verdicts
    if has_yes and not has_no:
        return REPRODUCED
    if has_no and not has_yes:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _values(seeds: dict[int, Cell], key: str) -> dict[int, float]:
    return {s: c.value(key) for s, c in seeds.items()}


def _block(key: str, title: str, question: str, verdict: str, text: str,
           comps: Sequence[Comparison] = ()) -> dict[str, Any]:
    return {"key": key, "title": title, "question": question, "verdict": verdict, "text": text,
            "comparisons": [c.as_dict() for c in comps]}


def _missing(key: str, title: str, question: str, what: str) -> dict[str, Any]:
    return _block(key, title, question, INCONCLUSIVE, f"Not tested in this run: {what}.")


# ----------------------------------------------------------------------------- SAL RQ1
def _sal_rq1(cells: Sequence[Cell]) -> dict[str, Any]:
    title = "SAL RQ1: explanation supervision vs cross-entropy (AULC_Dice at equal accuracy)"
    question = ("Does training with explanation supervision raise the explanations' agreement with the ROI (AULC_Dice) "
                "without lowering accuracy (AULC_acc)? Each explanation-loss method vs the same strategy with ce.")
    groups = _by_method(cells)
    plain = {(c.dataset, _strategy_key(c)): c.method for c in cells
             if c.loss == "ce" and c.trainer == "standard" and c.mask_source == "none"}
    pairs = sorted({(c.dataset, c.method, plain[(c.dataset, _strategy_key(c))]) for c in cells
                    if c.loss not in EXPLANATION_LOSS_EXCLUDE and (c.dataset, _strategy_key(c)) in plain
                    and any(not math.isnan(x.value("aulc_dice")) for x in groups[(c.dataset, c.method)].values())})
    if not pairs:
        return _missing("sal-rq1", title, question, "no method with an explanation loss beside the same strategy "
                        "trained with ce on a dataset with ROIs (e.g. random+dice and random+ce)")
    known = faithfulness_keys()
    faith = sorted({k for c in cells for k in c.summary if k in known and c.summary[k] is not None})
    dice_comps, acc_comps, lines, verdicts = [], [], [], []
    faith_lost: list[str] = []
    for ds, a, b in pairs:
        ga, gb = groups[(ds, a)], groups[(ds, b)]
        dice = compare(ds, a, b, _values(ga, "aulc_dice"), _values(gb, "aulc_dice"), "AULC_dice")
        acc = compare(ds, a, b, _values(ga, "aulc_acc"), _values(gb, "aulc_acc"), "AULC_acc")
        dice_comps.append(dice)
        acc_comps.append(acc)
        verdict = dice.verdict
        if verdict == REPRODUCED and acc.verdict == NOT_REPRODUCED:
            verdict = NOT_REPRODUCED  # explanations improved, but at a significant cost in accuracy
        verdicts.append(verdict)
        if verdict == REPRODUCED:
            for key in faith:
                f = compare(ds, a, b, _values(ga, key), _values(gb, key), f"{key} ({known[key][0]})", known[key][1])
                if f.verdict == NOT_REPRODUCED:
                    faith_lost.append(f"{a} on {ds} ({f.describe()})")
    for ds in sorted({p[0] for p in pairs}):
        idx = [i for i, p in enumerate(pairs) if p[0] == ds]

        def named(sel: list[int]) -> str:
            return ", ".join(f"{pairs[i][1]} ({dice_comps[i].mean:+.3f})" for i in sel)

        raised = [i for i in idx if verdicts[i] == REPRODUCED]
        costly = [i for i in idx if dice_comps[i].verdict == REPRODUCED and acc_comps[i].verdict == NOT_REPRODUCED]
        lowered = [i for i in idx if dice_comps[i].verdict == NOT_REPRODUCED]
        best = max(idx, key=lambda i: -math.inf if math.isnan(dice_comps[i].mean) else dice_comps[i].mean)
        line = f"{ds}: {len(raised)} of {len(idx)} raise Dice at equal accuracy" + (f" ({named(raised)})" if raised else "")
        if costly:
            line += f", {len(costly)} raise it at a significant accuracy cost ({named(costly)})"
        if lowered:
            line += f", {len(lowered)} lower it significantly ({named(lowered)})"
        lines.append(line + f"; largest: {dice_comps[best].describe()} "
                     f"({acc_comps[best].describe().split(': ', 1)[1]})")
    text = "; ".join(lines) + f". Comparisons: {_tally_verdicts(verdicts)}."
    if faith:
        text += (f" Faithfulness ({', '.join(known[k][0] for k in faith)}): " + (f"lowered significantly by {'; '.join(faith_lost)}."
                 if faith_lost else "no method that raised Dice lowered it significantly."))
    else:
        text += " No faithfulness metric in this run (add e.g. metrics = [\"deletion\"] to [evaluation])."
    return _block("sal-rq1", title, question, combine(verdicts), text, dice_comps + acc_comps)


def _tally_verdicts(verdicts: Sequence[str]) -> str:
    return ", ".join(f"{sum(1 for v in verdicts if v == k)} {k}" for k in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
                     if k in verdicts)


def _strategy_key(c: Cell) -> str:
    opts = ",".join(f"{k}={v}" for k, v in sorted(c.strategy_options.items()))
    return f"{c.strategy}[{opts}]"


# ----------------------------------------------------------------------------- EG-AL Table I
def _egal(cells: Sequence[Cell]) -> dict[str, Any]:
    title = "EG-AL Table I: EG-AL vs random sampling (AULC_acc), and the λ trend"
    question = ("Does EG-AL's acquisition beat random sampling under the same training (same loss)? With three or more "
                "λ, does an interior λ beat both extremes?")
    egal = sorted({(c.dataset, c.method, c.loss, json_key(c.loss_options)) for c in cells if c.strategy == "egal"})
    if not egal:
        return _missing("egal", title, question, "no EG-AL (strategy egal) cells")
    groups = _by_method(cells)
    random = {(c.dataset, c.loss, json_key(c.loss_options)): c.method for c in cells
              if c.strategy == "random" and c.trainer == "standard" and c.mask_source == "none"}
    comps, missing = [], []
    for ds, m, loss, lopts in egal:
        b = random.get((ds, loss, lopts))
        if b is None:
            missing.append(f"{m} on {ds} (no random+{loss} with the same loss options)")
            continue
        comps.append(compare(ds, m, b, _values(groups[(ds, m)], "aulc_acc"), _values(groups[(ds, b)], "aulc_acc"),
                             "AULC_acc"))
    parts = [c.describe() + f" on {c.dataset} → {c.verdict}" for c in comps]
    if missing:
        parts.append("not compared: " + ", ".join(missing))
    trend_text, trend_verdict = _lambda_trend(cells, groups)
    verdicts = [c.verdict for c in comps]
    text = "; ".join(parts) + "." if parts else "No EG-AL method has a random counterpart with the same loss."
    if trend_text:
        text += " λ trend: " + trend_text
        verdicts.append(trend_verdict)
    return _block("egal", title, question, combine(verdicts) if comps else INCONCLUSIVE, text, comps)


def json_key(options: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(options.items()))


def _lambda_trend(cells: Sequence[Cell], groups: dict[tuple[str, str], dict[int, Cell]]) -> tuple[str, str]:
    """The paper's Fig. 6 shape: an interior λ beats both extremes (paired Δ AULC_acc above 0)."""
    variants: dict[tuple[str, str], dict[float, str]] = {}
    for c in cells:
        if c.strategy == "egal":
            lam = float(c.strategy_options.get("lam", 0.5))
            variants.setdefault((c.dataset, c.loss + json_key(c.loss_options)), {})[lam] = c.method
    texts, verdicts = [], []
    for (ds, _), by_lam in sorted(variants.items()):
        if len(by_lam) < 3:
            continue
        lams = sorted(by_lam)
        means = {lam: float(np.nanmean(list(_values(groups[(ds, by_lam[lam])], "aulc_acc").values()))) for lam in lams}
        best = max(lams, key=lambda lam: means[lam])
        curve = ", ".join(f"λ={lam:g}: {means[lam]:.3f}" for lam in lams)
        if best in (lams[0], lams[-1]):
            texts.append(f"{ds}: best at the extreme λ={best:g} ({curve})")
            other = lams[-1] if best == lams[0] else lams[0]
            c = compare(ds, by_lam[best], by_lam[other], _values(groups[(ds, by_lam[best])], "aulc_acc"),
                        _values(groups[(ds, by_lam[other])], "aulc_acc"), "AULC_acc")
            verdicts.append(NOT_REPRODUCED if c.verdict == REPRODUCED else INCONCLUSIVE)
            continue
        ends = [compare(ds, by_lam[best], by_lam[e], _values(groups[(ds, by_lam[best])], "aulc_acc"),
                        _values(groups[(ds, by_lam[e])], "aulc_acc"), "AULC_acc") for e in (lams[0], lams[-1])]
        v = REPRODUCED if all(e.verdict == REPRODUCED for e in ends) else INCONCLUSIVE
        verdicts.append(v)
        texts.append(f"{ds}: best at interior λ={best:g} ({curve}); vs extremes: "
                     + "; ".join(e.describe() for e in ends) + f" → {v}")
    if not texts:
        return "", INCONCLUSIVE
    return "; ".join(texts) + ".", combine(verdicts)


# ----------------------------------------------------------------------------- AEIG Fig. 4
def _acquired(c: Cell) -> np.ndarray | None:
    hists = [np.asarray(r.get("acquired_class_histogram") or [], dtype=float) for r in c.rounds]
    hists = [h for h in hists if h.size]
    return np.sum(hists, axis=0) if hists else None


def _minority_share(c: Cell, minority: np.ndarray) -> float:
    total = _acquired(c)
    if total is None or total.sum() == 0:
        return float("nan")
    return float(total[minority].sum() / total.sum())


def _round_shares(seeds: dict[int, Cell], minority: np.ndarray) -> list[float]:
    """Mean over seeds of each round's minority share (rounds with acquisitions)."""
    per_round: dict[int, list[float]] = {}
    for c in seeds.values():
        for r in c.rounds:
            h = np.asarray(r.get("acquired_class_histogram") or [], dtype=float)
            if h.size and h.sum() > 0:
                per_round.setdefault(int(r["round"]), []).append(float(h[minority].sum() / h.sum()))
    return [float(np.mean(v)) for _, v in sorted(per_round.items())]


def _aeig(cells: Sequence[Cell], multilabel: set[str]) -> dict[str, Any]:
    title = "AEIG Fig. 4: minority-class share of the acquired samples, AEIG vs entropy and random"
    question = ("On class-imbalanced data, does AEIG acquire a larger share of minority-class samples than entropy and "
                "random sampling?")
    groups = _by_method(cells)

    def method(ds: str, strategy: str) -> str | None:
        names = sorted({c.method for c in cells if c.dataset == ds and c.strategy == strategy and c.loss == "ce"
                        and c.trainer == "standard" and c.mask_source == "none" and not c.strategy_options})
        return names[0] if names else None

    datasets = sorted({c.dataset for c in cells if c.strategy == "aeig"} - multilabel)
    if not datasets:
        return _missing("aeig", title, question, "no AEIG (strategy aeig) cells on a multi-class dataset")
    comps, parts, lacking = [], [], []
    for ds in datasets:
        a, ent, rnd = method(ds, "aeig"), method(ds, "entropy"), method(ds, "random")
        if a is None or rnd is None:
            lacking.append(f"{ds} (needs aeig+ce and random+ce)")
            continue
        pool = np.sum([h for c in groups[(ds, rnd)].values() if (h := _acquired(c)) is not None], axis=0)
        if np.ndim(pool) == 0 or pool.sum() == 0:
            lacking.append(f"{ds} (random acquired nothing)")
            continue
        share = pool / pool.sum()
        minority = np.flatnonzero(share < 1.0 / share.size)
        if minority.size == 0 or share.max() < 2 * share.min():
            parts.append(f"{ds}: pool not imbalanced (estimated shares {np.round(share, 2).tolist()}), not tested")
            continue
        shares = {m: {s: _minority_share(c, minority) for s, c in groups[(ds, m)].items()}
                  for m in (a, ent, rnd) if m is not None}
        curves = {m: _round_shares(groups[(ds, m)], minority) for m in shares}
        ds_comps = [compare(ds, a, b, shares[a], shares[b], "minority share") for b in (ent, rnd) if b is not None]
        comps += ds_comps
        curve = "; ".join(f"{m}: " + ", ".join(f"{v:.2f}" for v in curves[m]) for m in curves)
        parts.append(f"{ds} (minority classes {minority.tolist()}, {100 * share[minority].sum():.0f} % of the pool): "
                     + "; ".join(c.describe() for c in ds_comps) + f"; per round — {curve}")
    if lacking:
        parts.append("not tested: " + ", ".join(lacking))
    text = " | ".join(parts) + "."
    return _block("aeig", title, question, combine([c.verdict for c in comps]) if comps else INCONCLUSIVE, text, comps)


# ----------------------------------------------------------------------------- DUE Table 1
def _due(cells: Sequence[Cell]) -> dict[str, Any]:
    title = "DUE Table 1: DUE vs Baseline+ on explanation IoU (sparse 3D annotations)"
    question = "Does DUE's uncertainty-weighted supervision from interpolated slices beat Baseline+ on explanation IoU?"
    groups = _by_method(cells)
    base = {(c.dataset, _strategy_key(c)): c.method for c in cells if c.loss == "due-baseline-plus"}
    pairs = sorted({(c.dataset, c.method, base[(c.dataset, _strategy_key(c))]) for c in cells
                    if c.loss in ("due", "due-paper") and (c.dataset, _strategy_key(c)) in base})
    if not pairs:
        have = sorted({c.loss for c in cells if c.loss.startswith("due")})
        return _missing("due", title, question, "no DUE (loss due / due-paper) beside Baseline+ (loss due-baseline-plus) "
                        "with the same strategy" + (f"; the run has {', '.join(have)}" if have else ""))
    comps = []
    for ds, a, b in pairs:
        ga, gb = groups[(ds, a)], groups[(ds, b)]
        comps.append(compare(ds, a, b, _values(ga, "aulc_iou"), _values(gb, "aulc_iou"), "AULC_IoU"))
    text = "; ".join(f"{c.dataset}: {c.describe()} → {c.verdict}" for c in comps) + "."
    return _block("due", title, question, combine([c.verdict for c in comps]), text, comps)


# ----------------------------------------------------------------------------- GESTALT Table I
GESTALT = ("gestalt-node", "gestalt-edge", "gestalt-weighted-node")
UNCERTAINTY = ("mcd-variance", "mcd-entropy")


def _gestalt(cells: Sequence[Cell], multilabel: set[str]) -> dict[str, Any]:
    title = "GESTALT Table I: GESTALT variants vs MC-dropout uncertainty (multi-label AUC)"
    question = "On multi-label data, do the GESTALT ranking variants beat MC-dropout uncertainty sampling on macro AUC?"
    groups = _by_method(cells)
    datasets = sorted({c.dataset for c in cells if c.strategy in GESTALT} & multilabel)
    if not datasets:
        return _missing("gestalt", title, question, "no GESTALT (gestalt-node / -edge / -weighted-node) cells on a "
                        "multi-label dataset")
    comps, missing = [], []
    for ds in datasets:
        def pick(strategy: str, ds: str = ds) -> str | None:
            names = sorted({c.method for c in cells if c.dataset == ds and c.strategy == strategy and c.loss == "ce"})
            return names[0] if names else None

        unc = next((m for s in UNCERTAINTY if (m := pick(s)) is not None), None)
        if unc is None:
            missing.append(f"{ds} (no mcd-variance or mcd-entropy with ce)")
            continue
        for s in GESTALT:
            g = pick(s)
            if g is not None:
                comps.append(compare(ds, g, unc, _values(groups[(ds, g)], "aulc_auc"),
                                     _values(groups[(ds, unc)], "aulc_auc"), "AULC_AUC"))
    text = "; ".join(f"{c.dataset}: {c.describe()} → {c.verdict}" for c in comps)
    if missing:
        text += ("; " if text else "") + "not compared: " + ", ".join(missing)
    return _block("gestalt", title, question, combine([c.verdict for c in comps]) if comps else INCONCLUSIVE,
                  text + ".", comps)


# ----------------------------------------------------------------------------- all blocks, power
def _multilabel(results: Iterable[dict[str, Any]]) -> set[str]:
    """Datasets whose cells report a multi-label-only metric (LRAP)."""
    return {r["cell"]["dataset"] for r in results if r.get("status") == "ok"
            and any("lrap" in (rd.get("metrics") or {}) for rd in r.get("rounds", [])[:1])}


def findings(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One block per paper question (module docstring), from the finished cells of ``results``."""
    cells = _cells(results)
    multilabel = _multilabel(results)
    return [_sal_rq1(cells), _egal(cells), _aeig(cells, multilabel), _due(cells), _gestalt(cells, multilabel)]


def minimum_detectable(sd_diff: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean paired difference a two-sided paired t-test over ``n`` seeds detects with
    ``power`` at level ``alpha``: ``(t_{1−α/2, n−1} + t_{power, n−1}) · sd_diff / √n`` (normal
    approximation of the noncentral t); ``nan`` below 2 seeds."""
    if n < 2 or math.isnan(sd_diff):
        return float("nan")
    return float((stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd_diff / math.sqrt(n))


def power_notes(results: Sequence[dict[str, Any]], key: str = "aulc_acc") -> list[str]:
    """Per dataset: the between-seed spread of the paired differences (every method vs the leaderboard's
    baseline, median SD) and the minimum detectable difference at this run's seed count, 3 and 5 seeds."""
    from xalbench.report.tables import baseline_method

    cells = _cells(results)
    groups = _by_method(cells)
    lines = []
    for ds in sorted({c.dataset for c in cells}):
        mine = [c for c in cells if c.dataset == ds]
        baseline = baseline_method(sorted({c.method for c in mine}), {c.method: c.strategy for c in mine},
                                   {c.method: c.loss for c in mine})
        base = groups.get((ds, baseline)) if baseline else None
        if not base:
            continue
        sds, n_seeds = [], len(base)
        for (d, m), seeds in groups.items():
            if d != ds or m == baseline:
                continue
            diffs = [seeds[s].value(key) - base[s].value(key) for s in set(seeds) & set(base)]
            diffs = [x for x in diffs if not math.isnan(x)]
            if len(diffs) >= 2:
                sds.append(float(np.std(diffs, ddof=1)))
        if not sds:
            lines.append(f"power ({ds}): needs ≥ 2 paired seeds to estimate the between-seed spread of Δ{key}")
            continue
        sd = float(np.median(sds))
        here = (f"with this run's {n_seeds} seeds: "
                + (f"{minimum_detectable(sd, n_seeds):.3f}" if n_seeds >= MIN_SEEDS else "none (p-values need ≥ 3)"))
        others = ", ".join(f"with {n} seeds: {minimum_detectable(sd, n):.3f}" for n in (3, 5, 10) if n != n_seeds)
        lines.append(f"power ({ds}): between-seed SD of paired Δ{key} vs {baseline} (median over methods) {sd:.3f}; "
                     f"minimum detectable Δ{key} (paired t-test, α 0.05, power 0.8) {here}; {others}")
    return lines
