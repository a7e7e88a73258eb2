"""GESTALT's two non-random baselines: MC-dropout variance (eq. 9) and an approximate IDEAL.

``mcd-variance`` — GESTALT §V-C, eq. 9: ``Var(y) ≈ (1/T) Σ_t ŷ_t² − ((1/T) Σ_t ŷ_t)² + (1/T) Σ_t σ̂_t²``
over ``T = 20`` dropout samples, highest first. The core has ``mcd-entropy`` (entropy of the
MC mean) and ``bald`` (mutual information); neither is this variance. The classifiers here
predict no aleatoric variance, so the ``σ̂²`` term is 0. ``ŷ`` is each class's probability
(sigmoid per finding for multi-label, softmax for multi-class); the per-class variances are
averaged (``reduce = "mean"``, default) or their maximum taken. Dropout samples come from
``ctx.cache.mc_probs(T)``: the head's dropout on the cached penultimate features (the paper
puts dropout in every layer).

``ideal`` — **approximate** reconstruction of IDEAL from GESTALT's two-sentence description
(§V-D; IDEAL's own text and code were not available):

1. latent code of the saliency map of the *predicted* class (same encoder as GESTALT);
2. the labelled samples' latents are clustered (k-means, ``n_levels`` clusters);
3. each cluster's "positive change to validation AUC" is measured as the macro AUC on the val
   split of a linear probe (ridge regression to the labels) on the current model's penultimate
   features trained on the whole labelled set, minus the same probe's AUC without that
   cluster (leave-cluster-out gain; no CNN is retrained);
4. clusters ordered by gain give ordinal levels ``0 … L−1``; a random forest regresses level
   on latent code;
5. pool samples with the highest predicted level are queried.

Every step of 2–4 is an inference; IDEAL's actual clustering, gain bookkeeping over rounds and
forest settings are unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

import xalbench
from xalbench.base import Task
from xalbench.errors import OptionsError
from xalbench_gestalt.encoders import EncoderName, classifier_encoder, frozen, pixel_encoder
from xalbench_gestalt.saliency import SaliencySource, labelled_embeddings, labelled_maps, pool_maps
from xalbench_gestalt.strategies import PAPER

if TYPE_CHECKING:
    from xalbench.base import StrategyContext

__all__ = ["IDEAL", "MCDropoutVariance", "leave_cluster_out_gains", "mc_variance", "probe_auc"]


# ------------------------------------------------------------------------------- eq. 9
def mc_variance(mc: torch.Tensor, reduce: Literal["mean", "max"] = "mean") -> torch.Tensor:
    """Eq. 9 without the aleatoric term: ``E_t[ŷ²] − E_t[ŷ]²`` per class of ``T×U×K`` probabilities, reduced over K."""
    mc = mc.detach().double()
    var = (mc.pow(2).mean(0) - mc.mean(0).pow(2)).clamp_min(0.0)
    return var.mean(1) if reduce == "mean" else var.amax(1)


class MCDropoutVariance(xalbench.Strategy):
    """MC-dropout predictive variance (GESTALT eq. 9, T = 20), highest first."""

    name: ClassVar[str] = "mcd-variance"
    summary: ClassVar[str] = "MC-dropout predictive variance of the class probabilities (GESTALT eq. 9, T=20)"
    paper: ClassVar[str] = f"{PAPER}; eq. 9 (the 'Uncertainty' baseline)"
    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        n_samples: int = 20
        reduce: Literal["mean", "max"] = "mean"

        def __post_init__(self) -> None:
            if self.n_samples < 2:
                raise OptionsError(f"mcd-variance: n_samples must be ≥ 2 (a variance over passes), got {self.n_samples}")

    def scores(self, ctx: StrategyContext) -> np.ndarray:
        if len(ctx.unlabelled) == 0:
            return np.zeros(0)
        mc = ctx.cache.mc_probs(self.options.n_samples)
        return mc_variance(mc, self.options.reduce).cpu().numpy()


# ------------------------------------------------------------------------------- IDEAL
def probe_auc(x_tr: np.ndarray, y_tr: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *, task: Task,
              num_classes: int, ridge: float = 1.0) -> float:
    """Macro one-vs-rest val AUC of a linear probe (ridge regression on standardised features to the
    one-hot / multi-hot labels, one solve for every class) trained on ``(x_tr, y_tr)``; classes
    without both outcomes in val are left out, 0.5 if none is left."""
    if task == "multi-label":
        t_tr, t_val = y_tr.astype(np.float64), y_val.astype(int)
    else:
        eye = np.eye(num_classes)
        t_tr, t_val = eye[y_tr.astype(int)], eye[y_val.astype(int)].astype(int)
    if x_tr.shape[0] == 0:
        return 0.5
    scaler = StandardScaler().fit(x_tr)
    probe = Ridge(alpha=ridge).fit(scaler.transform(x_tr), t_tr)
    scores = probe.predict(scaler.transform(x_val)).reshape(x_val.shape[0], num_classes)
    aucs = [roc_auc_score(t_val[:, k], scores[:, k]) for k in range(num_classes)
            if 0 < t_val[:, k].sum() < t_val.shape[0]]
    return float(np.mean(aucs)) if aucs else 0.5


def leave_cluster_out_gains(clusters: np.ndarray, x_tr: np.ndarray, y_tr: np.ndarray, x_val: np.ndarray,
                            y_val: np.ndarray, *, task: Task, num_classes: int, ridge: float = 1.0) -> np.ndarray:
    """Val-AUC gain of each cluster (sorted cluster ids): probe AUC on the whole labelled set minus the
    probe AUC without that cluster."""
    kw = dict(task=task, num_classes=num_classes, ridge=ridge)
    full = probe_auc(x_tr, y_tr, x_val, y_val, **kw)  # type: ignore[arg-type]
    ids = np.unique(clusters)
    return np.array([full - probe_auc(x_tr[clusters != i], y_tr[clusters != i], x_val, y_val, **kw)  # type: ignore[arg-type]
                     for i in ids])


class IDEAL(xalbench.Strategy):
    """IDEAL (approximate): predicted-class saliency latents → ordinal levels from val-AUC gains → random forest."""

    name: ClassVar[str] = "ideal"
    summary: ClassVar[str] = ("IDEAL (approximate reconstruction from GESTALT's description): random forest from "
                              "predicted-class saliency latents to val-AUC-gain levels; highest level first")
    paper: ClassVar[str] = f"{PAPER}; §V-D (IDEAL, as GESTALT describes it; approximate)"
    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        """``n_levels``: ordinal clusters; ``n_estimators``: forest size; ``probe_ridge``: the probe's L2 penalty."""

        n_levels: int = 5
        n_estimators: int = 100
        probe_ridge: float = 1.0
        encoder: EncoderName = "classifier"
        encoder_size: int = 0
        grid: int = 8
        saliency: SaliencySource = "gradcam"

        def __post_init__(self) -> None:
            if self.n_levels < 2 or self.n_estimators < 1 or not self.probe_ridge > 0:
                raise OptionsError("ideal: need n_levels ≥ 2, n_estimators ≥ 1 and probe_ridge > 0")
            if self.encoder_size < 0 or self.grid < 1:
                raise OptionsError("ideal: need encoder_size ≥ 0 and grid ≥ 1")

    def _encode(self, maps: torch.Tensor, ctx: StrategyContext) -> np.ndarray:
        o = self.options
        maps = maps[:, None]  # one node: the predicted class
        if o.encoder == "pixels":
            z = pixel_encoder(maps, grid=o.grid)
        else:
            z = classifier_encoder(maps, ctx.model, in_channels=int(ctx.pool_images.shape[1]),
                                   batch_size=ctx.batch_size, device=ctx.device, size=o.encoder_size)
        return z[:, 0]

    def _val_embeddings(self, ctx: StrategyContext) -> np.ndarray:
        out = []
        step = max(int(ctx.batch_size), 1)
        with frozen(ctx.model):
            for start in range(0, len(ctx.val), step):
                x = ctx.val.images[start:start + step].to(ctx.device)
                out.append(ctx.model.embed(ctx.model.features(x)).to("cpu", torch.float64))
        return torch.cat(out).numpy()

    def levels(self, ctx: StrategyContext, z_lab: np.ndarray, seed: int) -> np.ndarray:
        """Ordinal level (0 = least AUC gain) of every labelled sample (steps 2–4 of the module docstring)."""
        o = self.options
        n_clusters = min(o.n_levels, np.unique(np.round(z_lab, 10), axis=0).shape[0])
        if n_clusters < 2:
            return np.zeros(z_lab.shape[0])
        clusters = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(z_lab)
        x_tr = labelled_embeddings(ctx).to("cpu", torch.float64).numpy()
        y_tr = ctx.labelled_labels.detach().cpu().numpy()
        y_val = ctx.val.labels.detach().cpu().numpy()
        gains = leave_cluster_out_gains(clusters, x_tr, y_tr, self._val_embeddings(ctx), y_val, task=ctx.task,
                                        num_classes=ctx.num_classes, ridge=o.probe_ridge)
        level_of = rankdata(gains, method="average") - 1.0
        return level_of[np.searchsorted(np.unique(clusters), clusters)]

    def scores(self, ctx: StrategyContext) -> np.ndarray:
        """Predicted ordinal level of each unlabelled sample (higher = query first)."""
        n = len(ctx.unlabelled)
        if n == 0:
            return np.zeros(0)
        who = f"strategy {self.name!r}"
        z_pool = self._encode(pool_maps(ctx, self.options.saliency, who, target="pred"), ctx)
        if len(ctx.labelled) < 2:  # nothing to learn levels from: every sample ties (lowest index first)
            return np.zeros(n)
        seed = int(ctx.rng.integers(2**31 - 1))  # k-means, probes and forest: seeded by the round
        z_lab = self._encode(labelled_maps(ctx, self.options.saliency, who, target="pred"), ctx)
        levels = self.levels(ctx, z_lab, seed)
        if np.ptp(levels) == 0:
            return np.zeros(n)
        forest = RandomForestRegressor(n_estimators=self.options.n_estimators, random_state=seed, n_jobs=1)
        return forest.fit(z_lab, levels).predict(z_pool)
