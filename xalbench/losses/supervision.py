"""Machinery shared by the explanation-supervision losses.

One forward per batch: ``A = model.features(x)``, ``logits = model.head(A)``; the
differentiable CAM is built from ``A`` (closed form for GAP + linear heads, otherwise
``autograd.grad(..., create_graph=True)`` through the head), never by a second or a
batch-size-1 forward.

**Which samples get an explanation term ("pairs").** A pair is (sample ``i``, class ``k``,
mask ``m``):

* multi-class: every sample with ``has_roi[i]`` and a non-empty ``roi[i]``; ``k`` is the
  true label (``cam_target = "label"``) or the predicted class (``"pred"``);
* multi-label: every *positive* class ``k`` of an annotated sample (true labels, or
  predicted positives for ``"pred"``) whose label is known (``batch.label_mask``, when given);
  ``m = class_roi[i, k]`` when per-finding ROIs are
  given (pairs with an empty per-class ROI are skipped), otherwise the union ``roi[i]``
  (each positive finding's map is asked to lie inside the annotated region).

**Empty ROIs** (``has_roi`` True but the mask is all zero, e.g. a normal image) give no
pair: a min-max normalised map cannot match an all-zero mask, and DUE/RES apply their
terms to positives only. Samples without pairs get the classification term only; the
explanation term is the mean over pairs, so a batch without masks equals ``ce``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from xalbench.base import Batch, ExplainableNet
from xalbench.errors import ConfigError
from xalbench.explain.cam import PostProcess, postprocess, raw_maps
from xalbench.utils import overlap

__all__ = ["Pairs", "CamForward", "annotated_pairs", "forward_with_cam", "resize_masks", "soft_dice",
           "ssim", "gaussian_blur3", "bf_threshold"]


@dataclasses.dataclass
class Pairs:
    """(sample, class, mask) triples that receive an explanation term."""

    idx: Tensor
    cls: Tensor
    masks: Tensor  # P×(D×)H×W at input resolution, float in [0, 1]

    def __len__(self) -> int:
        return int(self.idx.numel())


@dataclasses.dataclass
class CamForward:
    features: Tensor
    logits: Tensor
    pairs: Pairs
    maps: Tensor | None  # P×spatial (post-processed) or None when there are no pairs
    masks: Tensor | None  # P×spatial at the maps' resolution


def _sample_annotated(batch: Batch, n: int, device: torch.device) -> Tensor:
    if batch.roi is None:
        return torch.zeros(n, dtype=torch.bool, device=device)
    has = batch.has_roi
    if has is None:
        has = batch.roi.flatten(1).amax(1) > 0
    return has.to(device=device, dtype=torch.bool).reshape(-1)


def annotated_pairs(batch: Batch, logits: Tensor, cam_target: Literal["label", "pred"]) -> Pairs:
    """Pairs for ``batch`` (see module docstring); validates ROI shapes."""
    n, device = batch.images.shape[0], logits.device
    spatial = tuple(batch.images.shape[2:])
    empty = Pairs(torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, dtype=torch.long, device=device),
                  torch.zeros((0, *spatial), device=device))
    if batch.roi is None and batch.class_roi is None:
        return empty
    if batch.roi is not None and tuple(batch.roi.shape) != (n, *spatial):
        raise ConfigError(f"batch.roi must be N×{'×'.join(map(str, spatial))} like the images, got {tuple(batch.roi.shape)}")
    annotated = _sample_annotated(batch, n, device)
    if batch.class_roi is not None and batch.has_roi is not None:
        annotated = batch.has_roi.to(device=device, dtype=torch.bool).reshape(-1)
    if batch.task == "multi-class":
        if batch.roi is None:
            return empty
        nonempty = batch.roi.flatten(1).amax(1).to(device) > 0
        idx = torch.nonzero(annotated & nonempty).flatten()
        cls = batch.labels.to(device).long() if cam_target == "label" else logits.detach().argmax(1)
        return Pairs(idx, cls[idx], batch.roi.to(device)[idx].float())
    positive = batch.labels.to(device) > 0.5 if cam_target == "label" else logits.detach() > 0
    if batch.label_mask is not None:  # unknown labels (U-Ignore) get no explanation term either
        positive = positive & (batch.label_mask.to(device) > 0.5)
    if batch.class_roi is not None:
        croi = batch.class_roi.to(device)
        if tuple(croi.shape) != (n, logits.shape[1], *spatial):
            raise ConfigError(f"batch.class_roi must be N×K×spatial = {(n, logits.shape[1], *spatial)}, got {tuple(croi.shape)}")
        ok = positive & annotated[:, None] & (croi.flatten(2).amax(2) > 0)
        idx, cls = torch.nonzero(ok, as_tuple=True)
        return Pairs(idx, cls, croi[idx, cls].float())
    assert batch.roi is not None
    roi = batch.roi.to(device)
    ok = positive & (annotated & (roi.flatten(1).amax(1) > 0))[:, None]
    idx, cls = torch.nonzero(ok, as_tuple=True)
    return Pairs(idx, cls, roi[idx].float())


def resize_masks(masks: Tensor, shape: tuple[int, ...], mode: str = "area") -> Tensor:
    """Resize ``P×spatial`` masks to ``shape`` (``area`` = average pooling, ``nearest``, ``linear``)."""
    if tuple(masks.shape[1:]) == tuple(shape):
        return masks
    if mode == "linear":
        mode = "bilinear" if len(shape) == 2 else "trilinear"
    elif mode not in ("area", "nearest"):
        raise ConfigError(f"mask_resize must be 'area', 'nearest' or 'linear', got {mode!r}")
    return F.interpolate(masks[:, None].float(), size=tuple(shape), mode=mode)[:, 0]


def forward_with_cam(
    model: ExplainableNet,
    batch: Batch,
    *,
    method: Literal["cam", "gradcam", "hirescam"] = "gradcam",
    cam_target: Literal["label", "pred"] = "label",
    resolution: Literal["feature", "input"] = "input",
    post: PostProcess = PostProcess(),
    detach_weights: bool = False,
    mask_resize: str = "area",
) -> CamForward:
    """One forward; differentiable maps for the annotated pairs (see module docstring)."""
    a = model.features(batch.images)
    logits = model.head(a)
    pairs = annotated_pairs(batch, logits, cam_target)
    if len(pairs) == 0:
        return CamForward(a, logits, pairs, None, None)
    kw = dict(method=method, logits=logits, create_graph=True, detach_weights=detach_weights)
    if batch.task == "multi-class":
        targets = torch.zeros(a.shape[0], dtype=torch.long, device=a.device)
        targets[pairs.idx] = pairs.cls
        raw = raw_maps(model, a, targets, **kw)[pairs.idx, 0]  # type: ignore[arg-type]
    else:
        raw = raw_maps(model, a, all_classes=True, **kw)[pairs.idx, pairs.cls]  # type: ignore[arg-type]
    out_shape = tuple(batch.images.shape[2:]) if resolution == "input" else None
    maps = postprocess(raw[:, None], out_shape, post)[:, 0]
    masks = resize_masks(pairs.masks, tuple(maps.shape[1:]), mask_resize)
    return CamForward(a, logits, pairs, maps, masks)


def soft_dice(s: Tensor, m: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-pair soft Dice ``2Σ(s·m) / (Σs + Σm + eps)`` (EG-AL eq. 2 / eq. 4's Dice loss)."""
    return overlap.soft_dice(s, m, eps)


def _gaussian_kernel(size: int, sigma: float, dims: int, like: Tensor) -> Tensor:
    """A normalised Gaussian window in ``like``'s dtype and on its device (a float64 map gets a float64 window)."""
    ax = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    k = g
    for _ in range(dims - 1):
        k = k[..., None] * g
    return k[None, None]


def _conv(x: Tensor, k: Tensor, padding: int = 0) -> Tensor:
    return (F.conv3d if x.dim() == 5 else F.conv2d)(x, k, padding=padding)


def ssim(x: Tensor, y: Tensor, win_size: int = 7, sigma: float = 1.5, data_range: float = 1.0) -> Tensor:
    """Per-pair SSIM (Wang et al. 2004, eq. 13) with a Gaussian window, valid convolution, 2D/3D."""
    dims = x.dim() - 1
    if min(x.shape[1:]) < win_size:
        raise ConfigError(f"SSIM window {win_size} does not fit maps of shape {tuple(x.shape[1:])}; "
                          "set win_size smaller or resolution = 'input'")
    k = _gaussian_kernel(win_size, sigma, dims, x)
    x, y = x[:, None], y.to(x)[:, None]  # window and both maps in the maps' dtype (float64 models too)
    mu_x, mu_y = _conv(x, k), _conv(y, k)
    sxx = _conv(x * x, k) - mu_x**2
    syy = _conv(y * y, k) - mu_y**2
    sxy = _conv(x * y, k) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def gaussian_blur3(m: Tensor) -> Tensor:
    """3×3(×3) Gaussian blur as ``cv2.GaussianBlur(m, (3, 3), 0)`` (σ = 0.8), zero padding."""
    dims = m.dim() - 1
    sigma = 0.3 * ((3 - 1) * 0.5 - 1) + 0.8
    return _conv(m[:, None], _gaussian_kernel(3, sigma, dims, m), padding=1)[:, 0]


def bf_threshold(x: Tensor, y: Tensor, eps: float = 1e-4) -> Tensor:
    """RES's ``BF_solver``: the threshold ``a`` satisfying most constraints (no grad).

    Constraints: negatives (``y < 0``) below ``a``, positives (``y > 0``) at or above ``a``,
    each set weighted by its size. Candidates are every negative value + ``eps`` then every
    positive value; the first best candidate wins (as the original's strict ``>`` loop).
    Vectorised with sorting (O(n log n)) instead of the original O(n²) loop.
    """
    with torch.no_grad():
        x, y = x.detach().flatten().float(), y.detach().flatten()
        neg, pos = torch.sort(x[y < 0]).values, torch.sort(x[y > 0]).values
        cands = torch.cat([x[y < 0] + eps, x[y > 0]])
        if cands.numel() == 0:
            return torch.zeros((), device=x.device)
        score = torch.zeros_like(cands)
        if neg.numel():
            score += torch.searchsorted(neg, cands, side="left").float() / neg.numel()
        if pos.numel():
            score += (pos.numel() - torch.searchsorted(pos, cands, side="left")).float() / pos.numel()
        best = int(torch.argmax(score))  # first maximum
        if float(score[best]) <= 0:
            return torch.zeros((), device=x.device)
        return cands[best]
