"""Batched, N-d, torch-only class activation maps: ``cam``, ``gradcam`` and ``hirescam``.

Every method works on the explanation-layer activations ``A = model.features(x)``
(``B×C×h×w`` or ``B×C×d×h×w``) and the model's ``head``, so a training loss can reuse the
activations of its own forward pass and the pool cache can reuse cached activations
(head-only backward, no second forward).

* ``cam`` (Zhou et al., CVPR 2016, eq. 2): ``M_k = Σ_c W_kc A_c`` with ``W`` the
  classifier weights (exact for global-average-pool + linear heads).
* ``gradcam`` (Selvaraju et al., ICCV 2017, eqs. 1–2): ``α_kc = mean_ij ∂y_k/∂A_cij``,
  ``M_k = ReLU(Σ_c α_kc A_c)``; ``weight_pool="hw"`` averages the gradient over H and W only,
  per depth slice, as DUE's 3D Grad-CAM does.
* ``hirescam`` (Draelos & Carin, 2020, eq. 4): ``M_k = Σ_c ∂y_k/∂A_c ⊙ A_c``.

For a GAP + linear head, ``∂y_k/∂A = W_k / (h·w)`` everywhere, so all three methods are
computed in closed form from the classifier weights (``closed_form=True``, used only when
the head really is the default GAP → (inactive) dropout → ``nn.Linear``); otherwise a
generic autograd path through ``model.head`` is used (one backward per class for
``all_classes``). ``create_graph=True`` keeps the graph so a loss can back-propagate
through the map (double backprop); ``detach_weights=True`` reproduces GRADIA/RES/DUE,
whose channel weights are constants.

Post-processing (:class:`PostProcess`) is a separate, switchable step: ReLU, resize to
the input (bilinear/trilinear) or stay at feature resolution, and per-map normalisation
``(M − min)/(max − min + eps)`` (``"minmax"``), ``M/(max + eps)`` (``"max"``) or none.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xalbench.base import ExplainableNet
from xalbench.errors import ConfigError, UnsupportedError
from xalbench.utils.torch_modes import eval_mode

__all__ = [
    "Method",
    "PostProcess",
    "eval_mode",
    "is_gap_linear_head",
    "check_targets",
    "raw_maps",
    "postprocess",
    "explain_features",
    "explain_images",
]

Method = Literal["cam", "gradcam", "hirescam"]
METHODS: tuple[str, ...] = ("cam", "gradcam", "hirescam")


@dataclasses.dataclass(frozen=True)
class PostProcess:
    """Switchable post-processing of raw maps (applied in this order).

    ``relu``: clamp negatives (Grad-CAM eq. 2; CYBORG/GRADIA/RES losses use no ReLU).
    ``resize``: interpolate to ``output_shape`` (bilinear 2D / trilinear 3D) when given;
    ``False`` keeps feature resolution. ``normalize``: ``"minmax"`` → ``(M−min)/(max−min+eps)``
    per map (pytorch-grad-cam eps 1e-7, RES/DUE 1e-6, CYBORG 0), ``"max"`` → ``M/(max+eps)``,
    ``"none"`` → raw.
    """

    relu: bool = True
    resize: bool = True
    normalize: Literal["minmax", "max", "none"] = "minmax"
    eps: float = 1e-7
    align_corners: bool = False


def _dropout_inactive(module: nn.Module) -> bool:
    if isinstance(module, nn.Identity):
        return True
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return (not module.training) or float(module.p) == 0.0
    return False


def is_gap_linear_head(model: nn.Module) -> bool:
    """True if ``model.head`` is exactly GAP → inactive dropout → ``nn.Linear`` (closed form exact)."""
    cls = type(model)
    return (
        isinstance(model, ExplainableNet)
        and getattr(cls, "head", None) is ExplainableNet.head
        and getattr(cls, "embed", None) is ExplainableNet.embed
        and isinstance(getattr(model, "classifier", None), nn.Linear)
        and _dropout_inactive(model.dropout)
    )


def check_targets(targets: Tensor | None, batch: int, num_classes: int, device: torch.device) -> Tensor | None:
    """Validate one class index per sample; returns an ``int64`` tensor on ``device``."""
    if targets is None:
        return None
    if not isinstance(targets, Tensor):
        targets = torch.as_tensor(targets)
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ConfigError(
            f"explainer targets must be integer class indices (LongTensor of shape ({batch},)), got {targets.dtype}; "
            "for multi-label data pass one class index per sample or use all_classes=True"
        )
    targets = targets.reshape(-1).to(device=device, dtype=torch.long)
    if targets.numel() != batch:
        raise ConfigError(f"explainer needs one target per sample: got {targets.numel()} targets for {batch} images")
    if batch and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ConfigError(f"explainer targets must lie in [0, {num_classes}); got {targets.tolist()[:8]}...")
    return targets


def _classifier_weights(model: nn.Module, channels: int) -> Tensor:
    clf = getattr(model, "classifier", None)
    if not isinstance(clf, nn.Linear) or clf.in_features != channels:
        raise UnsupportedError(
            "method 'cam' needs model.classifier = nn.Linear over the pooled explanation-layer channels "
            f"({channels}); use 'gradcam' for this model"
        )
    return clf.weight


def _spatial_mean(g: Tensor, weight_pool: str) -> Tensor:
    """Channel weights from gradients ``B×C×spatial``: mean over all spatial dims or over H, W only."""
    if weight_pool == "spatial":
        return g.flatten(2).mean(-1).reshape(*g.shape[:2], *([1] * (g.dim() - 2)))
    if weight_pool == "hw":
        if g.dim() != 5:
            raise ConfigError("weight_pool='hw' (per-depth-slice Grad-CAM weights, DUE) needs 3D activations")
        return g.mean(dim=(-2, -1), keepdim=True)
    raise ConfigError(f"weight_pool must be 'spatial' or 'hw', got {weight_pool!r}")


def raw_maps(
    model: ExplainableNet,
    features: Tensor,
    targets: Tensor | None = None,
    *,
    method: Method = "gradcam",
    all_classes: bool = False,
    logits: Tensor | None = None,
    create_graph: bool = False,
    detach_weights: bool = False,
    weight_pool: str = "spatial",
    closed_form: bool = True,
) -> Tensor:
    """Un-post-processed maps ``B×K'×(d×)h×w`` at feature resolution (``K'`` = 1 or ``K``).

    ``features`` are the explanation-layer activations. If ``logits`` (= ``model.head(features)``)
    are given they are reused; otherwise the head is run once here. ``targets=None`` and not
    ``all_classes`` → predicted class (argmax logit). With ``create_graph=False`` the
    result carries no graph (scoring); the caller chooses the model's mode.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown CAM method {method!r}; choose one of {list(METHODS)}")
    if features.dim() not in (4, 5):
        raise ConfigError(f"explanation-layer activations must be B×C×h×w or B×C×d×h×w, got {tuple(features.shape)}")
    b, c = features.shape[:2]
    closed = closed_form and is_gap_linear_head(model) and weight_pool == "spatial"
    autograd_path = method != "cam" and not closed
    a = features
    with torch.enable_grad() if (create_graph or autograd_path) else contextlib.nullcontext():
        if autograd_path and logits is None:
            if not (create_graph and a.requires_grad):
                a = features.detach().requires_grad_(True)
            logits = model.head(a)
        elif logits is None and targets is None and not all_classes:
            with torch.no_grad():
                logits = model.head(a)
        num_classes = model.classifier.out_features if logits is None else logits.shape[1]
        targets = check_targets(targets, b, num_classes, features.device)
        if targets is None and not all_classes:
            targets = logits.detach().argmax(1)  # type: ignore[union-attr]
        if method == "cam":
            w = _classifier_weights(model, c)
            w = w.detach() if detach_weights or not create_graph else w
            w = w if all_classes else w[targets]  # K×C or B×C
            eq = "kc,bc...->bk..." if all_classes else "bc,bc...->b..."
            out = torch.einsum(eq, w, a if create_graph else a.detach())
            return out if all_classes else out.unsqueeze(1)
        if closed:
            w = model.classifier.weight
            w = w.detach() if detach_weights or not create_graph else w
            w = (w if all_classes else w[targets]) / float(a[0, 0].numel())
            eq = "kc,bc...->bk..." if all_classes else "bc,bc...->b..."
            out = torch.einsum(eq, w, a if create_graph else a.detach())  # gradcam == hirescam here
            return out if all_classes else out.unsqueeze(1)
        if not a.requires_grad:
            raise ConfigError(
                "create_graph=True needs features that require grad (compute them with model.features(x) "
                "under autograd, not under torch.no_grad())"
            )
        keep = create_graph and not detach_weights
        classes = range(num_classes) if all_classes else [None]
        maps = []
        for k in classes:
            score = logits[:, k].sum() if k is not None else logits.gather(1, targets[:, None]).sum()  # type: ignore[index,union-attr]
            (g,) = torch.autograd.grad(score, a, retain_graph=True, create_graph=keep)
            if not keep:
                g = g.detach()
            if method == "gradcam":
                maps.append((_spatial_mean(g, weight_pool) * a).sum(1))
            else:
                maps.append((g * a).sum(1))
        out = torch.stack(maps, 1)
    return out if create_graph else out.detach()


def postprocess(maps: Tensor, output_shape: tuple[int, ...] | None = None, post: PostProcess = PostProcess()) -> Tensor:
    """Apply :class:`PostProcess` to maps ``B×K×spatial``; keeps the autograd graph."""
    spatial = maps.dim() - 2
    if spatial not in (2, 3):
        raise ConfigError(f"maps must be B×K×h×w or B×K×d×h×w, got {tuple(maps.shape)}")
    if post.relu:
        maps = F.relu(maps)
    resize = post.resize and output_shape is not None and tuple(output_shape) != tuple(maps.shape[2:])
    if resize and len(output_shape) != spatial:  # type: ignore[arg-type]
        raise ConfigError(f"output_shape {tuple(output_shape)} does not match {spatial}D maps")  # type: ignore[arg-type]
    # normalise at feature resolution first (as pytorch-grad-cam does), so interpolation noise on a
    # constant map is never amplified to [0, 1]; re-normalise after resizing (affine-invariant, so
    # the result equals normalising the resized map up to eps).
    maps = _normalise(maps, post)
    if resize:
        mode = "bilinear" if spatial == 2 else "trilinear"
        maps = F.interpolate(maps, size=tuple(output_shape), mode=mode, align_corners=post.align_corners)  # type: ignore[arg-type]
        maps = _normalise(maps, post)
    return maps


def _normalise(maps: Tensor, post: PostProcess) -> Tensor:
    if post.normalize == "none":
        return maps
    flat = maps.flatten(2)
    mx = flat.amax(-1, keepdim=True)
    if post.normalize == "minmax":
        mn = flat.amin(-1, keepdim=True)
        flat = (flat - mn) / (mx - mn + post.eps)
    elif post.normalize == "max":
        flat = flat / (mx + post.eps)
    else:
        raise ConfigError(f"normalize must be 'minmax', 'max' or 'none', got {post.normalize!r}")
    return flat.reshape(maps.shape)


def explain_features(
    model: ExplainableNet,
    features: Tensor,
    targets: Tensor | None = None,
    *,
    method: Method = "gradcam",
    all_classes: bool = False,
    output_shape: tuple[int, ...] | None = None,
    post: PostProcess = PostProcess(),
    logits: Tensor | None = None,
    create_graph: bool = False,
    detach_weights: bool = False,
    weight_pool: str = "spatial",
    closed_form: bool = True,
) -> Tensor:
    """Post-processed maps ``B×spatial`` (one target) or ``B×K×spatial`` (all classes)."""
    raw = raw_maps(
        model, features, targets, method=method, all_classes=all_classes, logits=logits,
        create_graph=create_graph, detach_weights=detach_weights, weight_pool=weight_pool, closed_form=closed_form,
    )
    out = postprocess(raw, output_shape, post)
    return out if all_classes else out[:, 0]


def explain_images(
    model: ExplainableNet,
    images: Tensor,
    targets: Tensor | None = None,
    *,
    method: Method = "gradcam",
    all_classes: bool = False,
    create_graph: bool = False,
    post: PostProcess = PostProcess(),
    detach_weights: bool = False,
    weight_pool: str = "spatial",
    closed_form: bool = True,
) -> Tensor:
    """Maps at input resolution (if ``post.resize``) from images.

    ``create_graph=False`` (scoring): eval mode for the call (flags restored), one
    no-grad forward to the explanation layer, head-only backward, detached result.
    ``create_graph=True`` (losses): the model's current mode is used and the map stays in
    the graph, so the explanation term's gradient reaches conv and classifier weights.
    """
    if images.dim() not in (4, 5):
        raise ConfigError(f"images must be B×C×H×W or B×C×D×H×W, got {tuple(images.shape)}")
    device = next(model.parameters()).device
    images = images.to(device)
    out_shape = tuple(images.shape[2:])
    kwargs = dict(method=method, all_classes=all_classes, output_shape=out_shape, post=post,
                  detach_weights=detach_weights, weight_pool=weight_pool, closed_form=closed_form)
    if create_graph:
        feats = model.features(images)
        return explain_features(model, feats, targets, create_graph=True, **kwargs)  # type: ignore[arg-type]
    with eval_mode(model), torch.no_grad():
        feats = model.features(images)
    with eval_mode(model):
        return explain_features(model, feats, targets, create_graph=False, **kwargs).detach()  # type: ignore[arg-type]
