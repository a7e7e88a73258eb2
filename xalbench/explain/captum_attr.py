"""Scoring-only gradient and perturbation attributions through Captum (``pip install xalbench[xai]``).

``integrated-gradients``, ``saliency``, ``input-x-gradient``, ``guided-backprop``,
``occlusion`` and ``smoothgrad`` (Captum's ``NoiseTunnel`` over ``Saliency``). Captum returns
an attribution ``A`` of the input's shape ``B×C×(D×)H×W``; every explainer turns it into a
map ``B×(D×)H×W`` in [0, 1] with :func:`normalise_attribution`:

1. **channels summed**: ``a = Σ_c A_c`` (the convention of Captum's ``visualize_image_attr``);
2. **sign** (option ``sign``): ``"absolute_value"`` → ``|a|`` (default; evidence for and
   against both count as "used"), ``"positive"`` → ``max(a, 0)`` (default for ``occlusion``:
   regions whose occlusion lowers the score), ``"all"`` → ``a`` signed;
3. **per-sample min-max**: ``(a − min) / (max − min + eps)``, as the CAM explainers do.

Every call runs in eval mode (module flags restored after), on a detached copy of the
images (Captum sets ``requires_grad`` on its input), never writes parameter gradients, and
leaves the global RNG untouched (SmoothGrad's noise is drawn under ``torch.random.fork_rng``
with a fixed seed, by default one sample at a time, so a sample's map does not depend on its batch).
Targets: one class per sample, ``None`` → predicted class, ``all_classes`` → one pass per class.
All six run on 2D and 3D inputs (Captum is dimension-agnostic). Not differentiable.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from xalbench.base import ExplainableNet
from xalbench.errors import ConfigError, UnsupportedError
from xalbench.explain.adapter import ScoringOnly
from xalbench.explain.cam import check_targets, eval_mode
from xalbench.options import Options

__all__ = [
    "CaptumExplainer",
    "IntegratedGradientsExplainer",
    "SaliencyExplainer",
    "InputXGradientExplainer",
    "GuidedBackpropExplainer",
    "OcclusionExplainer",
    "SmoothGradExplainer",
    "CAPTUM_EXPLAINERS",
    "normalise_attribution",
    "functional_relu_calls",
]

Sign = Literal["absolute_value", "positive", "all"]


def _captum_attr() -> Any:
    try:
        import captum.attr
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UnsupportedError(
            "Captum explainers need the 'captum' package: pip install 'xalbench[xai]'"
        ) from exc
    return captum.attr


@contextlib.contextmanager
def _quiet_captum() -> Iterator[None]:
    """Silence the warnings Captum emits on every call (scoped, not global)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Input Tensor \d+ did not already require gradients")
        warnings.filterwarnings("ignore", message=r"Setting backward hooks on ReLU activations")
        yield


def normalise_attribution(attr: Tensor, sign: Sign = "absolute_value", eps: float = 1e-7) -> Tensor:
    """Captum attribution ``B×C×spatial`` → map ``B×spatial`` in [0, 1] (see the module docstring)."""
    a = attr.detach().sum(1)
    if sign == "absolute_value":
        a = a.abs()
    elif sign == "positive":
        a = a.clamp_min(0.0)
    elif sign != "all":
        raise ConfigError(f"sign must be 'absolute_value', 'positive' or 'all', got {sign!r}")
    flat = a.flatten(1)
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    return ((flat - lo) / (hi - lo + eps)).reshape(a.shape).to(torch.float32).clamp_(0.0, 1.0)


_RELU_FUNCTIONS = (F.relu, F.relu_, torch.relu, torch.relu_, Tensor.relu, Tensor.relu_)


class _ReluProbe(TorchFunctionMode):
    """Counts ReLU calls made outside any ``nn.ReLU`` module (functional ReLUs)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.functional = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if self.depth == 0 and func in _RELU_FUNCTIONS:
            self.functional += 1
        return func(*args, **(kwargs or {}))


def functional_relu_calls(model: nn.Module, images: Tensor) -> int:
    """Number of ReLUs one forward of ``images`` applies without an ``nn.ReLU`` module."""
    probe = _ReluProbe()

    def enter(module: nn.Module, inputs: Any) -> None:
        probe.depth += 1

    def leave(module: nn.Module, inputs: Any, output: Any) -> None:
        probe.depth -= 1

    handles = []
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    try:
        with torch.no_grad(), eval_mode(model), probe:
            model(images)
    finally:
        for h in handles:
            h.remove()
    return probe.functional


class CaptumExplainer(ScoringOnly):
    """Shared Captum adapter; subclasses implement :meth:`attribute` (raw, input-shaped)."""

    library: ClassVar[str] = "Captum"

    @dataclass(frozen=True)
    class Options(Options):
        sign: Sign = "absolute_value"
        eps: float = 1e-7
        batch_size: int = 64  # images per Captum call

        def __post_init__(self) -> None:
            if self.batch_size < 1:
                raise ValueError("batch_size must be >= 1")

    def attribute(self, model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
        """Captum's attribution for ``images`` (``B×C×…``) and one target per sample."""
        raise NotImplementedError

    def check_model(self, model: nn.Module, images: Tensor) -> None:
        """Raise :class:`UnsupportedError` if Captum would silently compute something else."""

    def maps(self, model: ExplainableNet, images: Tensor, targets: Tensor | None, all_classes: bool) -> Tensor:
        _captum_attr()
        device = next(model.parameters()).device
        images = images.detach().to(device)
        n, bs = images.shape[0], self.options.batch_size
        with eval_mode(model):
            if n:
                self.check_model(model, images[:1])
            k = _num_classes(model, images[:1])
            t = check_targets(targets, n, k, device)
            if all_classes:
                target_sets = [torch.full((n,), c, dtype=torch.long, device=device) for c in range(k)]
            else:
                if t is None:
                    with torch.no_grad():
                        t = torch.cat([model(images[s : s + bs]).argmax(1) for s in range(0, n, bs)]) if n else \
                            torch.zeros(0, dtype=torch.long, device=device)
                target_sets = [t]
            maps = []
            with torch.enable_grad(), _quiet_captum():
                for tset in target_sets:
                    parts = [
                        normalise_attribution(
                            self.attribute(model, images[s : s + bs].clone(), tset[s : s + bs]).detach(),
                            self.options.sign, self.options.eps,
                        )
                        for s in range(0, n, bs)
                    ]
                    maps.append(torch.cat(parts) if parts else images.new_zeros((0, *images.shape[2:])))
        out = torch.stack(maps, 1) if all_classes else maps[0]
        return out.to(device=device, dtype=torch.float32)


def _num_classes(model: nn.Module, probe: Tensor) -> int:
    clf = getattr(model, "classifier", None)
    if isinstance(clf, nn.Linear):
        return int(clf.out_features)
    with torch.no_grad():
        return int(model(probe).shape[1])


class IntegratedGradientsExplainer(CaptumExplainer):
    """Integrated Gradients: ``(x − x') ⊙ ∫₀¹ ∂F(x' + α(x − x'))/∂x dα`` (Sundararajan et al., eq. 1)."""

    name: ClassVar[str] = "integrated-gradients"
    summary: ClassVar[str] = "Integrated Gradients (Captum adapter, black baseline); scoring only, 2D/3D"
    paper: ClassVar[str] = "Sundararajan et al., Axiomatic Attribution for Deep Networks, ICML 2017 (eq. 1)"

    @dataclass(frozen=True)
    class Options(CaptumExplainer.Options):
        n_steps: int = 32
        baseline: float = 0.0
        method: Literal["gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right"] = \
            "gausslegendre"
        internal_batch_size: int = 512  # bounds memory: batch × n_steps inputs are chunked

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.n_steps < 1 or self.internal_batch_size < 1:
                raise ValueError("n_steps and internal_batch_size must be >= 1")

    def attribute(self, model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
        o = self.options
        return _captum_attr().IntegratedGradients(model).attribute(
            images, baselines=o.baseline, target=targets, n_steps=o.n_steps, method=o.method,
            internal_batch_size=max(o.internal_batch_size, images.shape[0]))


class SaliencyExplainer(CaptumExplainer):
    """Saliency: ``|∂y_c/∂x|`` (Simonyan et al., eq. of section 3.1; Captum ``Saliency``, abs=True)."""

    name: ClassVar[str] = "saliency"
    summary: ClassVar[str] = "Gradient saliency |dy/dx| (Captum adapter); scoring only, 2D/3D"
    paper: ClassVar[str] = "Simonyan et al., Deep Inside Convolutional Networks, ICLR Workshops 2014 (sec. 3.1)"

    def attribute(self, model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
        return _captum_attr().Saliency(model).attribute(images, target=targets, abs=True)


class InputXGradientExplainer(CaptumExplainer):
    """Input × Gradient: ``x ⊙ ∂y_c/∂x`` (Shrikumar et al.)."""

    name: ClassVar[str] = "input-x-gradient"
    summary: ClassVar[str] = "Input x Gradient (Captum adapter); scoring only, 2D/3D"
    paper: ClassVar[str] = "Shrikumar et al., Not Just a Black Box: Learning Important Features Through Propagating Activation Differences, 2016"

    def attribute(self, model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
        return _captum_attr().InputXGradient(model).attribute(images, target=targets)


class GuidedBackpropExplainer(CaptumExplainer):
    """Guided Backpropagation: gradient with negative gradients zeroed at every ReLU (Springenberg et al.).

    Captum overrides the backward pass of ``nn.ReLU`` *modules* only: a functional ReLU
    (``torch.relu``/``F.relu`` in ``forward``) keeps its plain gradient and the result
    silently degrades to a gradient map, so such models are refused. A module reused at
    several places (torchvision ResNet blocks) and in-place ReLUs are handled correctly
    (Captum's rule uses only the ReLU's input gradient; checked in the tests).
    """

    name: ClassVar[str] = "guided-backprop"
    summary: ClassVar[str] = "Guided Backprop (Captum adapter); needs nn.ReLU modules; scoring only, 2D/3D"
    paper: ClassVar[str] = "Springenberg et al., Striving for Simplicity: The All Convolutional Net, ICLR Workshops 2015"

    def check_model(self, model: nn.Module, images: Tensor) -> None:
        calls = functional_relu_calls(model, images)
        if calls:
            raise UnsupportedError(
                f"explainer 'guided-backprop': {type(model).__name__} applies {calls} functional ReLU(s) that Captum "
                "cannot modify (use nn.ReLU modules), so the map would silently be a plain gradient"
            )

    def attribute(self, model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
        return _captum_attr().GuidedBackprop(model).attribute(images, target=targets)


class OcclusionExplainer(CaptumExplainer):
    """Occlusion: drop of the target logit when a window is set to ``baseline`` (Zeiler & Fergus, sec. 4.2).

    Windows span all channels; ``window``/``stride`` are in pixels (voxels) per spatial axis;
    ``None`` → ``window = max(1, min side // 8)`` in 2D (``// 4`` in 3D) and ``stride = window``
    (non-overlapping: 64 occluded forwards per image for a square image or a cube). Each pixel
    gets the mean drop of the windows covering it (Captum). Default ``sign = "positive"``:
    regions whose occlusion lowers the score.
    """

    name: ClassVar[str] = "occlusion"
    summary: ClassVar[str] = "Occlusion sensitivity (Captum adapter; 64 windows by default); scoring only, 2D/3D"
    paper: ClassVar[str] = "Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014 (sec. 4.2)"

    @dataclass(frozen=True)
    class Options(CaptumExplainer.Options):
        sign: Sign = "positive"
        window: int | None = None
        stride: int | None = None
        baseline: float = 0.0
        perturbations_per_eval: int = 16  # occluded copies per forward (memory: batch × this × image)

        def __post_init__(self) -> None:
            super().__post_init__()
            if (self.window is not None and self.window < 1) or (self.stride is not None and self.stride < 1) \
                    or self.perturbations_per_eval < 1:
                raise ValueError("window, stride and perturbations_per_eval must be >= 1")

    def attribute(self, model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
        o = self.options
        spatial = images.shape[2:]
        per_axis = 8 if len(spatial) == 2 else 4  # 64 windows for a square image or a cube
        window = o.window if o.window is not None else max(1, min(spatial) // per_axis)
        if window > min(spatial):
            raise ConfigError(f"occlusion window {window} exceeds the image size {tuple(spatial)}")
        stride = o.stride if o.stride is not None else window
        c = images.shape[1]
        return _captum_attr().Occlusion(model).attribute(
            images, sliding_window_shapes=(c, *([window] * len(spatial))), strides=(c, *([stride] * len(spatial))),
            baselines=o.baseline, target=targets, perturbations_per_eval=o.perturbations_per_eval)


class SmoothGradExplainer(CaptumExplainer):
    """SmoothGrad: mean of ``|∂y_c/∂x|`` over ``x + N(0, σ²)`` copies (Smilkov et al., eq. 3), Captum ``NoiseTunnel``.

    ``stdev`` is σ in image units (images in [0, 1], so σ = noise level × range; the paper
    suggests 10–20 %). Noise is drawn from ``seed`` under ``fork_rng`` (repeatable, global RNG
    untouched), by default with one ``NoiseTunnel`` call per sample so a sample's noise does
    not depend on its batch; ``per_sample_noise = false`` makes one call per batch (faster,
    but a map then depends on the batch it was computed in).
    """

    name: ClassVar[str] = "smoothgrad"
    summary: ClassVar[str] = "SmoothGrad over Saliency (Captum NoiseTunnel, 16 samples); scoring only, 2D/3D"
    paper: ClassVar[str] = "Smilkov et al., SmoothGrad: removing noise by adding noise, 2017 (eq. 3)"

    @dataclass(frozen=True)
    class Options(CaptumExplainer.Options):
        nt_samples: int = 16
        stdev: float = 0.15
        nt_type: Literal["smoothgrad", "smoothgrad_sq", "vargrad"] = "smoothgrad"
        seed: int = 0
        per_sample_noise: bool = True  # False: one NoiseTunnel call per batch (faster; maps depend on the batch)

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.nt_samples < 1 or self.stdev < 0:
                raise ValueError("nt_samples must be >= 1 and stdev >= 0")

    def attribute(self, model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
        o = self.options
        attr = _captum_attr()
        tunnel = attr.NoiseTunnel(attr.Saliency(model))
        devices = [images.device] if images.device.type == "cuda" else []
        step = 1 if o.per_sample_noise else max(1, images.shape[0])
        out = []
        for i in range(0, images.shape[0], step):
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(o.seed)
                out.append(tunnel.attribute(images[i : i + step], nt_type=o.nt_type, nt_samples=o.nt_samples,
                                            stdevs=o.stdev, target=targets[i : i + step], abs=True))
        return torch.cat(out) if out else images.new_zeros(images.shape)


CAPTUM_EXPLAINERS: tuple[type[CaptumExplainer], ...] = (
    IntegratedGradientsExplainer,
    SaliencyExplainer,
    InputXGradientExplainer,
    GuidedBackpropExplainer,
    OcclusionExplainer,
    SmoothGradExplainer,
)
