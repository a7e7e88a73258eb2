"""Explanation-supervision losses: ``dice``, ``rrr``, ``gradia``, ``haics``, ``res``, ``cyborg``, ``cyborg-ssim-l1``.

All are :class:`~xalbench.losses.base.ExplanationLoss` subclasses: one forward
(``A = features(x)``, ``logits = head(A)``), the pair rules of
:mod:`xalbench.losses.supervision` (samples without a usable mask get the classification
term only; the explanation term averages over annotated pairs; a batch without masks
equals ``ce``) and ``CE + scale · term``. All but ``rrr`` build a differentiable CAM from
``A`` (:class:`~xalbench.losses.base.CamLoss`); each class below only says which CAM and
which term. 2D and 3D, multi-class and multi-label (classification term: CE /
BCE-with-logits).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from xalbench.base import Batch, ExplainableNet
from xalbench.explain.cam import PostProcess
from xalbench.losses.base import CamLoss, CamSettings, ExplanationLoss, Term, Weights
from xalbench.losses.supervision import (
    CamForward,
    Pairs,
    annotated_pairs,
    bf_threshold,
    gaussian_blur3,
    soft_dice,
    ssim,
)
from xalbench.options import Options

__all__ = ["DiceLoss", "RRRLoss", "GradiaLoss", "HaicsLoss", "RESLoss", "CyborgLoss", "CyborgSSIML1Loss"]

Target = Literal["label", "pred"]
Method = Literal["cam", "gradcam", "hirescam"]
#: CAM normalisation used by GRADIA/RES/HAICS code: no ReLU, (cam − min)/(max + 1e-6), feature resolution
RES_POST = PostProcess(relu=False, resize=False, normalize="minmax", eps=1e-6)


def res_cam(cam_target: Target, detach_weights: bool, mask_resize: str = "area") -> CamSettings:
    """The CAM of the GRADIA/RES code: Grad-CAM at feature resolution, :data:`RES_POST`."""
    return CamSettings("gradcam", cam_target, "feature", RES_POST, detach_weights, mask_resize)


class DiceLoss(CamLoss):
    """CE + α·(1 − soft Dice(Grad-CAM of the true class, ROI)) (Uddin et al., EG-AL, eq. 4, α = 0.10).

    Soft Dice = 2Σ(s·m)/(Σs + Σm + eps) per annotated pair; ``s`` is Grad-CAM with ReLU and
    per-sample min-max at input resolution (the map eq. 2 compares with the ROI).
    """

    name: ClassVar[str] = "dice"
    summary: ClassVar[str] = "CE + alpha*(1 - soft Dice(Grad-CAM of the true class, ROI)), alpha=0.10"
    paper: ClassVar[str] = "Uddin et al., Learning to Select Like Humans (EG-AL), arXiv 2602.13308, eq. 4"
    tunable: ClassVar[dict[str, list[Any]]] = {"alpha": [0.01, 0.1, 1.0]}  # search space of [tuning]

    @dataclass(frozen=True)
    class Options(Options):
        alpha: float = 0.10
        cam_target: Target = "label"
        method: Method = "gradcam"
        resolution: Literal["feature", "input"] = "input"
        eps: float = 1e-6

    @property
    def scale(self) -> float:
        return self.options.alpha

    def cam(self) -> CamSettings:
        o = self.options
        return CamSettings(o.method, o.cam_target, o.resolution, PostProcess(relu=True, normalize="minmax", eps=1e-7))

    def explanation_term(self, fw: CamForward, batch: Batch, weights: Weights) -> Term:
        return (1 - soft_dice(fw.maps, fw.masks, self.options.eps)).mean()  # type: ignore[arg-type]


@dataclasses.dataclass
class InputForward:
    """RRR's forward: ``inputs`` that require grad, their logits, the pairs and their samples."""

    inputs: Tensor
    logits: Tensor
    pairs: Pairs
    samples: Tensor


class RRRLoss(ExplanationLoss[InputForward]):
    """Right for the Right Reasons (Ross et al., IJCAI 2017, eq. 1).

    ``L = CE + λ·mean_i R_i`` over annotated samples, with
    ``R_i = mean_d (A_id · ∂/∂x_id Σ_k log p̂_ik)²`` (``reduction = "mean"``, default) or
    ``Σ_d`` (``"sum"``, the paper's / NeSyXIL's form), ``A = 1 − ROI`` (the irrelevant region,
    broadcast over channels), ``log p̂`` log-softmax (multi-class) or log-sigmoid
    (multi-label). The input gradient keeps its graph (double backprop). The paper's
    ``λ₂‖θ‖²`` is left to the optimiser's weight decay.

    **Scale (deviation, documented).** The paper gives no universal λ: it sets λ₁ "so that the
    right-reasons term has the same order of magnitude as the cross-entropy" (l2_grads = 1000
    on Decoy-MNIST's MLP; NeSyXIL sums over pixels *and* batch). A pixel **sum** grows with the
    input size (1 024 px at 32², 32 768 at 32³), so a fixed λ is not portable: with the former
    default (sum, λ = 10) the term's parameter gradient was ~10³× the CE gradient on
    synth-lesion-2d@32 and training learnt only the shortcut marker. The per-element **mean**
    is resolution-independent; λ = 1 puts the term at the order of the CE (≈0.1 vs ≈0.2 for a
    CE-trained small-cnn at 32²), following the paper's rule. ``reduction = "sum"`` with
    ``λ ≈ 1/D`` reproduces the summed form.
    """

    name: ClassVar[str] = "rrr"
    summary: ClassVar[str] = "Right for the Right Reasons: CE + lam * input-gradient penalty outside the ROI"
    paper: ClassVar[str] = "Ross, Hughes & Doshi-Velez, Right for the Right Reasons, IJCAI 2017, eq. 1"
    tunable: ClassVar[dict[str, list[Any]]] = {"lam": [0.1, 1.0, 10.0]}  # search space of [tuning]

    @dataclass(frozen=True)
    class Options(Options):
        lam: float = 1.0
        reduction: Literal["mean", "sum"] = "mean"

    def forward(self, model: ExplainableNet, batch: Batch) -> InputForward:
        x = batch.images.detach().requires_grad_(True)
        logits = model.head(model.features(x))
        pairs = annotated_pairs(batch, logits, "label")
        return InputForward(x, logits, pairs, torch.unique(pairs.idx))

    def n_annotated(self, fw: InputForward) -> int:
        return int(fw.samples.numel())  # samples, not (sample, class) pairs

    def explanation_term(self, fw: InputForward, batch: Batch, weights: Weights) -> Term:
        idx, logits = fw.samples, fw.logits
        logp = F.logsigmoid(logits) if batch.task == "multi-label" else F.log_softmax(logits, 1)
        (g,) = torch.autograd.grad(logp[idx].sum(), fw.inputs, create_graph=True)
        assert batch.roi is not None
        outside = 1.0 - batch.roi[idx].to(g)
        per = ((outside[:, None] * g[idx]) ** 2).flatten(1)
        return (per.mean(1) if self.options.reduction == "mean" else per.sum(1)).mean()


class GradiaLoss(CamLoss):
    """GRADIA (Gao et al., CSCW 2022; YuyangGao/GRADIA ``GRADIA.py``).

    ``L = mean_i(pred_w_i·CE_i) + λ·mean_pairs att_w·mean|cam − M|`` (L1), cam = Grad-CAM with
    constant channel weights, no ReLU, ``(cam − min)/(max + 1e-6)`` at feature resolution.
    The reasonability matrix sets (pred_w, att_w): unreasonable-inaccurate (1, 1),
    unreasonable-accurate (0.4, 1.6), reasonable-inaccurate (0.8, 0.2), reasonable-accurate
    (``ra_pred_w``, ``ra_att_w``; not in the reference notes, default (1, 1)). GRADIA's
    reasonability comes from human feedback; here (documented inference) a map is
    *reasonable* when IoU(cam > 0.5, M > 0.5) ≥ ``reasonable_iou``; *accurate* when the
    prediction is right (multi-label: the positive class is predicted positive).
    """

    name: ClassVar[str] = "gradia"
    summary: ClassVar[str] = "GRADIA: reasonability-weighted CE + L1(Grad-CAM, ROI) at feature resolution"
    paper: ClassVar[str] = "Gao et al., Aligning Eyes between Humans and Deep Neural Network through Interactive Attention Alignment, CSCW 2022"
    tunable: ClassVar[dict[str, list[Any]]] = {"lam": [0.01, 0.1, 1.0]}  # search space of [tuning]

    @dataclass(frozen=True)
    class Options(Options):
        lam: float = 1.0
        cam_target: Target = "label"
        reasonable_iou: float = 0.5
        ra_pred_w: float = 1.0
        ra_att_w: float = 1.0
        detach_weights: bool = True

    def cam(self) -> CamSettings:
        return res_cam(self.options.cam_target, self.options.detach_weights)

    def weights(self, fw: CamForward, batch: Batch) -> Weights:
        """The reasonability matrix: (pred_w, att_w) per pair; a sample's CE weight is its smallest pred_w."""
        o = self.options
        maps, masks = fw.maps, fw.masks
        assert maps is not None and masks is not None
        with torch.no_grad():
            hit, mk = maps > 0.5, masks > 0.5
            iou = (hit & mk).flatten(1).sum(1) / (hit | mk).flatten(1).sum(1).clamp_min(1)
            reasonable = iou >= o.reasonable_iou
            idx, cls = fw.pairs.idx, fw.pairs.cls
            if batch.task == "multi-label":
                accurate = fw.logits[idx, cls] > 0
            else:
                accurate = fw.logits[idx].argmax(1) == batch.labels.to(idx.device)[idx]
            table = torch.tensor([[1.0, 1.0], [0.8, 0.2], [0.4, 1.6], [o.ra_pred_w, o.ra_att_w]], device=maps.device)
            w = table[reasonable.long() + 2 * accurate.long()]  # rows: UI, RI, UA, RA
            pred_w = torch.ones(fw.logits.shape[0], device=maps.device)
            pred_w.scatter_reduce_(0, idx, w[:, 0], reduce="amin", include_self=False)
        return Weights(ce=pred_w, pairs=w[:, 1])

    def explanation_term(self, fw: CamForward, batch: Batch, weights: Weights) -> Term:
        return (weights.pairs * (fw.maps - fw.masks).abs().flatten(1).mean(1)).mean()  # type: ignore[operator]


class HaicsLoss(CamLoss):
    """HAICS baseline as coded in RES (``BCELoss()(cam, M)``) and DUE's 2D baselines.

    ``L = CE + λ·mean_pairs BCE(cam, M)`` with the RES/GRADIA CAM (no ReLU,
    ``(cam − min)/(max + 1e-6)``, feature resolution, constant channel weights) and the
    ROI resized to feature resolution (nearest). RES multiplies a batch-mean BCE by the
    labelled fraction; here the BCE is averaged over annotated pairs only.
    """

    name: ClassVar[str] = "haics"
    summary: ClassVar[str] = "HAICS: CE + lam * BCE(CAM, ROI) at feature resolution"
    paper: ClassVar[str] = "Shen et al., HAICS (as implemented in Gao et al., RES, NeurIPS 2022, RES.py)"
    tunable: ClassVar[dict[str, list[Any]]] = {"lam": [0.01, 0.1, 1.0]}  # search space of [tuning]

    @dataclass(frozen=True)
    class Options(Options):
        lam: float = 1.0
        cam_target: Target = "label"
        detach_weights: bool = True

    def cam(self) -> CamSettings:
        return res_cam(self.options.cam_target, self.options.detach_weights, mask_resize="nearest")

    def explanation_term(self, fw: CamForward, batch: Batch, weights: Weights) -> Term:
        cam = fw.maps.clamp(1e-6, 1 - 1e-6)  # type: ignore[union-attr]
        return F.binary_cross_entropy(cam, fw.masks.to(cam), reduction="none").flatten(1).mean(1).mean()  # type: ignore[union-attr]


class RESLoss(CamLoss):
    """RES-G (Gao et al., NeurIPS 2022, eqs. 4–6 as in ``RES.py``).

    ``L = CE + λ·[relu(mean_{M≠0}|tanh(5(cam − a)) − M| − η) + mean|cam − T|]`` with
    ``M = +1`` inside the ROI and ``0`` (unlabelled) outside by default: RES's ``−1`` labels
    are *annotated* counterfactual regions, which plain ROI masks do not have, and DUE
    applies the binary term to ``M ≠ 0`` of positive masks only, i.e. foreground-only;
    the background is still pulled to 0 by the continuous term. ``outside_negative = True``
    labels the whole outside ``−1`` (former default): with ~90 % of an 8×8 map outside,
    ``tanh(5(cam − a)) ≈ −1`` there is unreachable for a min-max map (``a`` ≈ 0.05 by
    ``BF_solver``), the term stays ≈1 and swamps the CE (medical setting: test accuracy
    0.41 vs 0.56, Grad-CAM Dice 0.05 vs 0.51). ``a = 0.5`` as in DUE (default; with
    foreground-only labels RES's ``BF_solver`` is degenerate — no negatives, so it returns the
    smallest in-ROI value and the term chases a moving target; ``threshold < 0`` restores it), and
    ``T = GaussianBlur₃ₓ₃(max(M, 0)) / max`` the Gaussian-imputed target. CAM as in GRADIA
    (no ReLU, ``/(max + 1e-6)``, feature resolution); masks resized with nearest neighbour.
    """

    name: ClassVar[str] = "res"
    summary: ClassVar[str] = "RES-G: CE + thresholded tanh alignment (slack eta) + L1 to a Gaussian-imputed ROI"
    paper: ClassVar[str] = "Gao et al., RES: A Robust Framework for Guiding Visual Explanation, NeurIPS 2022 (RES-G)"
    tunable: ClassVar[dict[str, list[Any]]] = {"lam": [0.01, 0.1, 1.0]}  # search space of [tuning]

    @dataclass(frozen=True)
    class Options(Options):
        lam: float = 1.0
        eta: float = 0.0
        threshold: float = 0.5  # < 0: RES's BF_solver per batch; 0.5: DUE
        outside_negative: bool = False
        cam_target: Target = "label"
        detach_weights: bool = True

    def cam(self) -> CamSettings:
        return res_cam(self.options.cam_target, self.options.detach_weights, mask_resize="nearest")

    def explanation_term(self, fw: CamForward, batch: Batch, weights: Weights) -> Term:
        o = self.options
        cam, pos = fw.maps, (fw.masks > 0.5).to(fw.maps)  # type: ignore[operator]
        m = 2 * pos - 1 if o.outside_negative else pos
        a = bf_threshold(cam, m) if o.threshold < 0 else torch.tensor(o.threshold, device=cam.device)
        labelled = (m != 0).to(cam)
        binary = ((torch.tanh(5 * (cam - a)) - m).abs() * labelled).sum() / labelled.sum().clamp_min(1)
        binary = F.relu(binary - o.eta)
        blurred = gaussian_blur3(pos)
        target = blurred / blurred.flatten(1).amax(1).clamp_min(1e-12).reshape(-1, *[1] * (cam.dim() - 1))
        cont = (cam - target).abs().mean()
        return binary + cont, {"threshold": float(a), "res_binary": float(binary.detach()),
                               "res_continuous": float(cont.detach())}


class CyborgLoss(CamLoss):
    """CYBORG as in the public code (CVRL/CYBORG ``train_cam.py``; Boyd et al., WACV 2023).

    Per annotated sample ``α·CE + (1 − α)·MSE(cam, h)``; unannotated samples: CE. ``cam`` =
    classifier weights of the **predicted** class · features (``method = "cam"``), no ReLU,
    ``(cam − min)/max`` at feature resolution (``eps`` 1e-8 instead of the code's 0 to
    avoid NaN on constant maps); ``h`` = ROI resized bilinearly to feature resolution and
    min-max normalised. Total = ``mean_i c_i·CE_i + (1 − α)·mean_pairs MSE`` with
    ``c_i = α`` for annotated samples, 1 otherwise (SAL's mixed batches). Our features are
    the model's explanation layer (after BN/ReLU), not ResNet's ``layer4[-1].conv3``.
    """

    name: ClassVar[str] = "cyborg"
    summary: ClassVar[str] = "CYBORG (public code): alpha*CE + (1-alpha)*MSE(CAM, human map) at feature resolution"
    paper: ClassVar[str] = "Boyd et al., CYBORG: Blending Human Saliency Into the Loss Improves Deep Learning, WACV 2023"
    tunable: ClassVar[dict[str, list[Any]]] = {"alpha": [0.5, 0.9, 0.99]}  # search space of [tuning]

    @dataclass(frozen=True)
    class Options(Options):
        alpha: float = 0.5
        cam_target: Target = "pred"
        method: Method = "cam"
        eps: float = 1e-8

        def __post_init__(self) -> None:
            if not 0.0 <= self.alpha <= 1.0:
                raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")

    @property
    def scale(self) -> float:
        return 1 - self.options.alpha

    def resolution(self) -> Literal["feature", "input"]:
        """Where the CAM is compared with the human map: feature resolution, as the CYBORG code."""
        return "feature"

    def cam(self) -> CamSettings:
        o, resolution = self.options, self.resolution()
        post = PostProcess(relu=False, resize=resolution == "input", normalize="minmax", eps=o.eps)
        return CamSettings(o.method, o.cam_target, resolution, post, mask_resize="linear")

    def weights(self, fw: CamForward, batch: Batch) -> Weights:
        """α for annotated samples' CE, 1 for the others."""
        weight = torch.ones(fw.logits.shape[0], device=fw.logits.device)
        weight[fw.pairs.idx] = self.options.alpha
        return Weights(ce=weight)

    def saliency_term(self, maps: Tensor, masks: Tensor) -> Tensor:
        """Per-pair saliency loss: MSE."""
        return ((maps - masks) ** 2).flatten(1).mean(1)

    def explanation_term(self, fw: CamForward, batch: Batch, weights: Weights) -> Term:
        masks = fw.masks
        assert fw.maps is not None and masks is not None
        flat = masks.flatten(1)
        mn, mx = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
        human = ((flat - mn) / (mx - mn).clamp_min(1e-8)).reshape(masks.shape)  # min-max normalised human map
        return self.saliency_term(fw.maps, human).mean()


class CyborgSSIML1Loss(CyborgLoss):
    """The SSIM + L1 variant SAL's text describes (SAL eq. 1), *not* the public CYBORG code.

    Saliency term per annotated sample: ``(1 − SSIM(cam, h)) + mean|cam − h|`` with a
    Gaussian-window SSIM (``win_size``, σ = 1.5); the CAM of the **true** class
    (``cam_target = "label"``) is upsampled to the input (bilinear/trilinear) because an
    SSIM window does not fit a 4×4/7×7 map. Otherwise as :class:`CyborgLoss`.
    """

    name: ClassVar[str] = "cyborg-ssim-l1"
    summary: ClassVar[str] = "SAL-paper variant of CYBORG: alpha*CE + (1-alpha)*((1-SSIM) + L1)(CAM, human map)"
    paper: ClassVar[str] = "SAL eq. 1, after Boyd et al., CYBORG, WACV 2023; SSIM: Wang et al., IEEE TIP 2004"

    @dataclass(frozen=True)
    class Options(CyborgLoss.Options):
        cam_target: Target = "label"
        win_size: int = 7
        resolution: Literal["feature", "input"] = "input"

    def resolution(self) -> Literal["feature", "input"]:
        return self.options.resolution

    def saliency_term(self, maps: Tensor, masks: Tensor) -> Tensor:
        """Per-pair saliency loss: (1 − SSIM) + L1."""
        return (1 - ssim(maps, masks, win_size=self.options.win_size)) + (maps - masks).abs().flatten(1).mean(1)
