"""DUE's training objectives: ``due`` (as coded), ``due-paper`` (eq. 2 as printed), ``due-baseline-plus``.

All share one forward (``A = features(x)``, ``logits = head(A)``), the classification term on
**all** samples and an explanation term on the annotated positives only (samples whose revealed
mask is non-empty on its annotated slices — negatives get none, eq. 2). The map ``c`` is
DUE's Grad-CAM of the true class: channel weights averaged over H and W per depth slice
(``weight_pool = "hw"``; ``"spatial"`` is the global form), constant weights (no double
backprop through the gradient, as coded), ReLU, trilinear upsampling to the input and
per-sample min-max (eps 1e-6). Only annotated slices of the masks are used (``Batch.roi``
carries the full ROI; :func:`sparse_roi` zeroes the rest).

With ``m`` the nearest-filled annotation (0/1), ``ĩ`` the imputed annotation and ``W`` the
uncertainty weights of the round (:mod:`xalbench_due.imputation`):

* ``due`` (the public code): ``L = CE + λ(L_bin + L_cont)``,
  ``L_bin = relu(Σ_{m≠0} W·|tanh(5(c − 0.5)) − m| / #{m≠0} − η)``, ``L_cont = mean(W·|c − ĩ|)``
  — RES-G with threshold 0.5, slack η = 0 and the weight multiplying the error;
* ``due-paper`` (eq. 2 as printed): the weight multiplies the annotation,
  ``L_Exp(c, G_imp(m)·g_interp(m))``: ``relu(mean_{m≠0}|tanh(5(c − 0.5)) − W·m| − η) + mean|c − W·ĩ|``
  (the same RES-G-form L_Exp; the paper does not spell L_Exp out — documented inference);
* ``due-baseline-plus`` (Baseline⁺): ``W ≡ 1`` and ``ĩ = m``; no interpolator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from xalbench.base import Batch, DatasetMeta, Equivalence, ExplainableNet, Loss, LossOutput, RoundInfo, Split
from xalbench.errors import ConfigError
from xalbench.explain.cam import PostProcess, postprocess, raw_maps
from xalbench.losses.common import check_batch, classification_loss
from xalbench.losses.supervision import Pairs, annotated_pairs
from xalbench.options import Options
from xalbench_due.diffusion import DiffusionConfig
from xalbench_due.imputation import ImputeConfig, Imputer, Volume
from xalbench_due.predictor import PredictorConfig
from xalbench_due.slices import annotated_positions, nearest_fill

__all__ = ["DUELoss", "DUEPaperLoss", "DUEBaselinePlusLoss", "sparse_roi", "due_cam"]

DUE_POST = PostProcess(relu=True, resize=True, normalize="minmax", eps=1e-6)


def sparse_roi(roi: Tensor, annotated: Tensor | None) -> Tensor:
    """ROI ``N×D×H×W`` with non-annotated slices zeroed (2D or no flags: unchanged)."""
    if annotated is None or roi.dim() != 4:
        return roi
    return roi * annotated.to(roi.dtype)[:, :, None, None]


def due_cam(model: ExplainableNet, features: Tensor, logits: Tensor, batch: Batch, pairs: Pairs, *,
            weight_pool: str = "hw", detach_weights: bool = True) -> Tensor:
    """DUE's Grad-CAM of each pair's class at input resolution, in the graph (``P×spatial``)."""
    pool = weight_pool if features.dim() == 5 else "spatial"
    kw = dict(method="gradcam", logits=logits, create_graph=True, detach_weights=detach_weights, weight_pool=pool)
    if batch.task == "multi-class":
        targets = torch.zeros(features.shape[0], dtype=torch.long, device=features.device)
        targets[pairs.idx] = pairs.cls
        raw = raw_maps(model, features, targets, **kw)[pairs.idx, 0]  # type: ignore[arg-type]
    else:
        raw = raw_maps(model, features, all_classes=True, **kw)[pairs.idx, pairs.cls]  # type: ignore[arg-type]
    return postprocess(raw[:, None], tuple(batch.images.shape[2:]), DUE_POST)[:, 0]


def _volume(sparse: Tensor, flags: Tensor | None) -> Volume:
    """A sample's annotated mask as a :class:`Volume` (no flags: every slice is annotated)."""
    sparse = sparse.detach().cpu().float()
    if sparse.dim() == 3 and flags is not None:
        pos = annotated_positions(flags)
    else:
        pos = np.arange(sparse.shape[0]) if sparse.dim() == 3 else np.zeros(0, dtype=np.int64)
    return Volume(sparse, pos)


def _out(total: Tensor, ce: Tensor, expl: Tensor | None, n: int, **extra: float) -> LossOutput:
    terms = {"ce": float(ce.detach()), "explanation": 0.0 if expl is None else float(expl.detach()),
             "n_annotated": float(n)}
    terms.update(extra)
    return LossOutput(total, terms)


class _DUEBase(Loss):
    needs_masks: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True
    supports_multilabel: ClassVar[bool] = True
    weight_on_target: ClassVar[bool] = False  # eq. 2 (True) vs the code (False)
    uses_imputation: ClassVar[bool] = True

    # --------------------------------------------------------------- equivalence
    def equivalent_on(self, meta: DatasetMeta) -> Equivalence | None:
        """On 2D data there are no sparse slices: nothing to impute (``W = 1``, ``ĩ = m``), the weights
        multiply by one (eq. 2's form equals the code's) and the per-depth weight pooling is the global
        one — every DUE loss is ``due-baseline-plus`` with the same ``lam``, ``eta`` and
        ``detach_weights``. 3D datasets: ``None`` (their metadata does not say whether every slice
        is annotated, the one 3D case where the losses would also coincide)."""
        if meta.spatial_dims != 2:
            return None
        o = self.options
        base = DUEBaselinePlusLoss.Options(lam=o.lam, eta=o.eta, detach_weights=o.detach_weights)  # type: ignore[attr-defined]
        if self.name == DUEBaselinePlusLoss.name and o == base:
            return None
        return Equivalence(DUEBaselinePlusLoss.name, base.to_dict(),
                           f"2D data has no sparse slices: {self.name!r} reduces to {DUEBaselinePlusLoss.name!r} "
                           "(nothing to impute, W = 1, target = the annotated mask)")

    # --------------------------------------------------------------- targets
    def _targets(self, batch: Batch, pairs: Pairs, sparse: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(ĩ, W, m) for each pair, ``P×spatial``."""
        raise NotImplementedError

    @staticmethod
    def _nearest(batch: Batch, sparse: Tensor, rows: Tensor) -> Tensor:
        out = []
        for i in rows.tolist():
            if sparse.dim() == 4 and batch.annotated_slices is not None:
                out.append(nearest_fill(sparse[i], annotated_positions(batch.annotated_slices[i])))
            else:
                out.append(sparse[i])
        return torch.stack(out).float() if out else sparse[:0].float()

    # --------------------------------------------------------------- loss
    def __call__(self, model: ExplainableNet, batch: Batch) -> LossOutput:
        o = self.options
        check_batch(batch)
        a = model.features(batch.images)
        logits = model.head(a)
        ce = classification_loss(logits, batch)
        if batch.roi is None:
            return _out(ce, ce, None, 0)
        sparse = sparse_roi(batch.roi, batch.annotated_slices)
        view = dataclasses.replace(batch, roi=sparse, class_roi=None)
        pairs = annotated_pairs(view, logits, "label")
        if len(pairs) == 0:
            return _out(ce, ce, None, 0)
        cam = due_cam(model, a, logits, batch, pairs, weight_pool=o.weight_pool,  # type: ignore[attr-defined]
                      detach_weights=o.detach_weights)  # type: ignore[attr-defined]
        target, weight, nearest = (t.to(cam) for t in self._targets(batch, pairs, sparse))
        m = (nearest > 0.5).to(cam)
        fg = m != 0
        tanh = torch.tanh(5 * (cam - 0.5))
        if self.weight_on_target:
            binary = ((tanh - weight * m).abs() * fg).sum() / fg.sum().clamp_min(1)
            cont = (cam - weight * target).abs().mean()
        else:
            binary = (weight * (tanh - m).abs() * fg).sum() / fg.sum().clamp_min(1)
            cont = (weight * (cam - target).abs()).mean()
        binary = F.relu(binary - o.eta)  # type: ignore[attr-defined]
        expl = binary + cont
        return _out(ce + o.lam * expl, ce, expl, len(pairs), due_binary=float(binary.detach()),  # type: ignore[attr-defined]
                    due_continuous=float(cont.detach()), due_mean_weight=float(weight.mean().detach()))


class DUELoss(_DUEBase):
    """DUE as coded: CE (all samples) + λ(L_bin + L_cont) on positives, W multiplying the error.

    Fits the slice interpolator, the uncertainty predictor and the weights on the round's
    labelled set in :meth:`on_round_start` (needs ``RoundInfo.labelled``); see the module
    docstring and :mod:`xalbench_due.imputation` for the options.
    """

    name: ClassVar[str] = "due"
    summary: ClassVar[str] = ("DUE (public code): CE + lam*(W-weighted RES-G binary + L1 to the diffusion-imputed "
                              "annotation) on positives; sparse slice annotations")
    paper: ClassVar[str] = "Zhao et al., DUE: Dynamic Uncertainty-Aware Explanation Supervision via 3D Imputation (eq. 2, 3)"
    tunable: ClassVar[dict[str, list[float]]] = {"lam": [0.01, 0.1, 1.0]}  # search space of [tuning]

    @dataclass(frozen=True)
    class Options(Options):
        lam: float = 1.0
        eta: float = 0.0
        weight_pool: Literal["hw", "spatial"] = "hw"
        detach_weights: bool = True
        # uncertainty / weights
        variance: Literal["predictor", "diffusion"] = "diffusion"
        n_samples: int = 4
        target_samples: int = 2
        predictor_volumes: int = 8
        fit_volumes: int = 32
        constant_block: Literal["one", "zero"] = "one"
        skip_empty: bool = True
        seed: int = 0
        cache_dir: str = ""
        # interpolator (MONAI DiffusionModelUNet + DDPM/DDIM)
        prediction: Literal["v_prediction", "epsilon"] = "v_prediction"
        channels: tuple[int, ...] = (8, 16)
        norm_num_groups: int = 8
        train_timesteps: int = 100
        train_steps: int = 240
        train_batch: int = 16
        diffusion_lr: float = 3e-3
        p_mask: float = 0.5
        ddim_steps: int = 5
        downsample: int = 3
        # uncertainty predictor (NP-VAE)
        predictor_steps: int = 80
        predictor_width: int = 8

    def __init__(self, options: object = None) -> None:
        super().__init__(options)  # type: ignore[arg-type]
        o = self.options
        if o.lam < 0 or o.eta < 0:
            raise ConfigError(f"loss {self.name!r}: lam and eta must be ≥ 0, got lam={o.lam}, eta={o.eta}")
        try:
            self.config = ImputeConfig(
                n_samples=o.n_samples, variance=o.variance, predictor_volumes=o.predictor_volumes,
                target_samples=o.target_samples, fit_volumes=o.fit_volumes, skip_empty=o.skip_empty,
                constant_block=o.constant_block, seed=o.seed, cache_dir=o.cache_dir,
                diffusion=DiffusionConfig(channels=tuple(o.channels), norm_num_groups=o.norm_num_groups,
                                          train_timesteps=o.train_timesteps, train_steps=o.train_steps,
                                          batch_size=o.train_batch, lr=o.diffusion_lr, p_mask=o.p_mask,
                                          ddim_steps=o.ddim_steps, downsample=o.downsample,
                                          prediction=o.prediction),
                predictor=PredictorConfig(width=o.predictor_width, steps=o.predictor_steps, downsample=o.downsample),
            )
            self.config.check()
        except ValueError as exc:
            raise ConfigError(f"loss {self.name!r}: {exc}") from None
        self.imputer = Imputer(self.config)
        self._rows: dict[str, int] = {}
        self._tensors: tuple[Tensor, Tensor, Tensor] | None = None
        self._has_round = False
        self.round_stats: dict[str, float] = {}

    def on_round_start(self, info: RoundInfo) -> None:
        self._rows, self._tensors = {}, None
        self._has_round = info.labelled is not None
        if info.labelled is None:
            return
        self.fit(info.labelled)

    def fit(self, labelled: Split) -> None:
        """Impute every annotated, non-empty volume of ``labelled``.

        Batches are matched to the imputations by the content of their annotated masks (a
        SHA-256 of the mask bits and slice positions), not by an index, so any harness row order
        works and identical annotations share one imputation."""
        o = self.options
        self._has_round = True
        self._rows, self._tensors = {}, None
        if labelled.roi is None:
            return
        has = labelled.has_roi.bool() if labelled.has_roi is not None else torch.ones(len(labelled), dtype=torch.bool)
        sparse = sparse_roi(labelled.roi, labelled.annotated_slices)
        rows = [i for i in range(len(labelled)) if bool(has[i]) and not bool((sparse[i] <= 0.5).all())]
        if not rows:
            return
        flags = labelled.annotated_slices
        volumes = [_volume(sparse[i], None if flags is None else flags[i]) for i in rows]
        if sparse.dim() == 4:
            # the interpolator's training prefix counts labelled rows (acquisition order), so a later
            # round whose labelled set extends this one trains on the same volumes (cache hit)
            fit_count = sum(1 for i in rows if i < o.fit_volumes) if o.fit_volumes else 0
            results = self.imputer(volumes, fit_count=fit_count)
            target = torch.stack([r.target for r in results])
            weight = torch.stack([r.weight for r in results])
            nearest = torch.stack([r.nearest for r in results])
            self.round_stats = dict(self.imputer.stats)
        else:  # 2D: nothing to interpolate, DUE reduces to W = 1, ĩ = m
            target = nearest = torch.stack([v.roi for v in volumes])
            weight = torch.ones_like(target)
        self._tensors = (target, weight, nearest)
        self._rows = {v.digest: k for k, v in enumerate(volumes)}

    def _targets(self, batch: Batch, pairs: Pairs, sparse: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if not self._has_round:
            raise ConfigError(f"loss {self.name!r} fits its slice interpolator on the round's labelled set: the "
                              "harness must pass RoundInfo.labelled (or call .fit(split)) before training")
        rows = []
        for i in pairs.idx.cpu().tolist():
            digest = _volume(sparse[i], batch.annotated_slices[i] if batch.annotated_slices is not None else None
                             ).digest
            if digest not in self._rows or self._tensors is None:
                raise ConfigError(f"loss {self.name!r}: a batch sample with a revealed mask was not in the round's "
                                  "labelled set given to on_round_start")
            rows.append(self._rows[digest])
        target, weight, nearest = self._tensors
        idx = torch.as_tensor(rows, dtype=torch.long)
        return target[idx], weight[idx], nearest[idx]


class DUEPaperLoss(DUELoss):
    """DUE's eq. 2 as printed: the weights multiply the imputed annotation, ``L_Exp(c, W·ĩ)``."""

    name: ClassVar[str] = "due-paper"
    summary: ClassVar[str] = "DUE eq. 2 form: CE + lam*L_Exp(Grad-CAM, W * imputed annotation) on positives"
    paper: ClassVar[str] = "Zhao et al., DUE (eq. 2 as printed; L_Exp in RES-G form, inferred)"
    weight_on_target: ClassVar[bool] = True


class DUEBaselinePlusLoss(_DUEBase):
    """Baseline⁺ of DUE's ablation: 3D explanation supervision with ``W ≡ 1`` and ``ĩ = m`` (nearest annotated mask)."""

    name: ClassVar[str] = "due-baseline-plus"
    summary: ClassVar[str] = "DUE's Baseline+: CE + lam*(RES-G binary + L1) to the nearest annotated slice mask, W = 1"
    paper: ClassVar[str] = "Zhao et al., DUE (Baseline+ ablation; W = 1 and target = nearest mask, inferred)"
    tunable: ClassVar[dict[str, list[float]]] = {"lam": [0.01, 0.1, 1.0]}  # search space of [tuning]
    uses_imputation: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Options(Options):
        lam: float = 1.0
        eta: float = 0.0
        weight_pool: Literal["hw", "spatial"] = "hw"
        detach_weights: bool = True

    def _targets(self, batch: Batch, pairs: Pairs, sparse: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        nearest = self._nearest(batch, sparse, pairs.idx.cpu())
        return nearest, torch.ones_like(nearest), nearest
