"""``xalbench.wrap``: any conv classifier in, an :class:`~xalbench.base.ExplainableNet` out.

::

    import torchvision, xalbench
    net = xalbench.wrap(torchvision.models.resnet50())          # layer4 / GAP / fc found by architecture
    maps = registry.create("explainer", "gradcam").explain(net, x, targets)

The wrapper **shares** the model's modules (no copy: training the wrapper trains the model)
and splits it as the explainers, the pool cache and the CAM losses need:

* ``features(x)``: the explanation layer, i.e. the output of ``target_layer`` (then the
  activation the architecture applies after it in ``forward``, e.g. DenseNet's ``F.relu``).
  It runs the model's own ``forward`` up to that layer and stops there, so any forward
  code before the layer is honoured;
* ``embed(a)``: global average pool (plus any layers the architecture puts between the pool
  and its final ``nn.Linear``, e.g. ConvNeXt's ``LayerNorm2d`` or MobileNetV3's
  ``Linear → Hardswish``); ``dropout``: the dropout right before the final linear
  (``nn.Identity`` if none); ``classifier``: that ``nn.Linear``;
* ``forward(x) = head(features(x))`` equals ``model(x)``.

Known architectures (:mod:`xalbench.models.architectures`): torchvision ResNet, DenseNet,
EfficientNet (v1/v2), MobileNetV2/V3, ConvNeXt, RegNet; MONAI ResNet, DenseNet,
EfficientNet, SENet (2D and 3D). For anything else pass ``target_layer`` (a dotted module
name or the module) whose global-average-pooled output feeds the final linear layer, and
``classifier`` when the last registered ``nn.Linear`` is not it; ``example=x`` verifies
that the split reproduces ``model(x)``. Failures are one line naming what to pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from xalbench.base import ExplainableNet
from xalbench.errors import ConfigError, UnsupportedError
from xalbench.models.architectures import Recipe, find_recipe

__all__ = ["WrappedNet", "NeckWrappedNet", "wrap"]


class _Reached(Exception):
    """Raised by the capture hook to stop the forward pass at the explanation layer."""


class WrappedNet(ExplainableNet):
    """A classifier split at ``target_layer``; the head is GAP → ``dropout`` → ``classifier``.

    ``model`` is the wrapped module (shared, not copied); ``target_layer`` its dotted name;
    ``arch`` the recognised architecture (or ``"custom"``); ``post`` the activation applied
    after the target layer (``nn.Identity`` if none).
    """

    def __init__(self, model: nn.Module, *, target_layer: str, classifier: nn.Linear, dropout: nn.Module,
                 post: nn.Module, spatial_dims: int, arch: str) -> None:
        super().__init__()
        self.model = model
        self.post = post
        self.dropout = dropout
        self.classifier = classifier
        self.target_layer = target_layer
        self.spatial_dims = spatial_dims
        self.arch = arch

    def features(self, x: Tensor) -> Tensor:
        captured: list[Any] = []

        def stop(_module: nn.Module, _inputs: Any, output: Any) -> None:
            captured.append(output)
            raise _Reached

        handle = self.model.get_submodule(self.target_layer).register_forward_hook(stop)
        try:
            self.model(x)
        except _Reached:
            pass
        finally:
            handle.remove()
        if not captured:
            raise UnsupportedError(
                f"wrap: {type(self.model).__name__}.forward never called target_layer {self.target_layer!r}; "
                "pass a target_layer that forward uses"
            )
        a = captured[0]
        if not isinstance(a, Tensor) or a.dim() != self.spatial_dims + 2:
            shape = tuple(a.shape) if isinstance(a, Tensor) else type(a).__name__
            raise UnsupportedError(
                f"wrap: target_layer {self.target_layer!r} gives {shape}, not a B×C×(D×)H×W feature map; "
                "pass the last convolutional block as target_layer"
            )
        return self.post(a)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, target_layer={self.target_layer!r}, spatial_dims={self.spatial_dims}"


class NeckWrappedNet(WrappedNet):
    """A :class:`WrappedNet` whose head has layers between the pool and the final linear (``neck``).

    ``pooled_4d``: the neck receives the pooled ``B×C×1×1(×1)`` tensor (ConvNeXt's
    ``LayerNorm2d``) instead of the flattened ``B×C`` vector (MobileNetV3's ``Linear``).
    """

    def __init__(self, model: nn.Module, *, neck: nn.Sequential, pooled_4d: bool, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.neck = neck
        self.pooled_4d = pooled_4d

    def embed(self, a: Tensor) -> Tensor:
        v = a.mean(dim=tuple(range(2, a.dim())), keepdim=self.pooled_4d)
        return self.neck(v).flatten(1)


# ----------------------------------------------------------------------------- resolution
def _module_name(model: nn.Module, module: nn.Module, what: str) -> str:
    for name, m in model.named_modules():
        if m is module:
            return name
    raise ConfigError(f"wrap: {what} is not a submodule of {type(model).__name__}; pass one of its modules or names")


def _get(model: nn.Module, path: str, what: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise ConfigError(
            f"wrap: {type(model).__name__} has no module {path!r}; pass {what}=<dotted name from "
            "model.named_modules()>"
        ) from None


def _optional(model: nn.Module, path: str | None) -> nn.Module | None:
    if path is None:
        return None
    try:
        return model.get_submodule(path)
    except AttributeError:  # e.g. MONAI SENet built with dropout_prob=None
        return None


def _spatial_dims(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            dims = len(m.kernel_size)
            if dims not in (2, 3):
                raise UnsupportedError(f"wrap: {type(model).__name__} is {dims}D; explanations need 2D or 3D images")
            return dims
    raise UnsupportedError(
        f"wrap: {type(model).__name__} has no convolution, so there is no feature map to explain; "
        "CAM explainers need a convolutional classifier"
    )


def _hint(model: nn.Module) -> str:
    """``target_layer=... and classifier=...`` with the likeliest names filled in."""
    conv_children = [n for n, c in model.named_children()
                     if any(isinstance(m, nn.modules.conv._ConvNd) for m in c.modules())]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    target = repr(conv_children[-1]) if conv_children else "'<last conv block>'"
    clf = repr(linears[-1]) if linears else "'<final nn.Linear>'"
    return f"target_layer={target} (its last conv block) and classifier={clf} (its final nn.Linear)"


def _split_slot(slot: nn.Module, model: nn.Module) -> tuple[list[nn.Module], list[nn.Module], nn.Linear]:
    """Classifier slot → (neck layers, dropout layers, final linear)."""
    if isinstance(slot, nn.Linear):
        return [], [], slot
    layers = list(slot.children()) if isinstance(slot, nn.Sequential) else []
    if not layers or not isinstance(layers[-1], nn.Linear):
        raise UnsupportedError(
            f"wrap: the classifier of {type(model).__name__} is {type(slot).__name__}, not an nn.Linear "
            "(or nn.Sequential ending in one); pass classifier=<name of its final nn.Linear>"
        )
    linear, rest = layers[-1], layers[:-1]
    drops: list[nn.Module] = []
    while rest and isinstance(rest[-1], nn.modules.dropout._DropoutNd):
        drops.insert(0, rest.pop())
    neck = [m for m in rest if not isinstance(m, nn.Identity)]
    return neck, drops, linear


def _last_linear(model: nn.Module) -> str:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise UnsupportedError(
            f"wrap: {type(model).__name__} has no nn.Linear classifier; pass classifier=<its final nn.Linear>"
        )
    return names[-1]


def _as_name(model: nn.Module, value: str | nn.Module, what: str) -> str:
    if isinstance(value, nn.Module):
        return _module_name(model, value, what)
    if not isinstance(value, str):
        raise ConfigError(f"wrap: {what} must be a module or its dotted name, got {type(value).__name__}")
    _get(model, value, what)
    return value


def wrap(
    model: nn.Module,
    target_layer: str | nn.Module | None = None,
    classifier: str | nn.Module | None = None,
    *,
    example: Tensor | None = None,
) -> ExplainableNet:
    """Turn a conv classifier into an :class:`ExplainableNet` (see the module docstring).

    ``target_layer``/``classifier`` override what the architecture recipe finds (required
    for unknown architectures; ``classifier`` defaults to the last registered ``nn.Linear``).
    ``example``: a small input batch; if given, ``head(features(x))`` must reproduce
    ``model(x)`` (checked in eval mode, modes restored) or a :class:`ConfigError` says so.
    An :class:`ExplainableNet` is returned unchanged when nothing is overridden.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"wrap: expected a torch.nn.Module classifier, got {type(model).__name__}")
    if isinstance(model, ExplainableNet) and target_layer is None and classifier is None:
        return model
    spatial_dims = _spatial_dims(model)
    recipe: Recipe | None = find_recipe(model)
    if target_layer is None and recipe is None:
        raise UnsupportedError(
            f"wrap: {type(model).__name__} is not a known torchvision/MONAI classifier; pass {_hint(model)}"
        )
    target = _as_name(model, target_layer, "target_layer") if target_layer is not None else recipe.target  # type: ignore[union-attr]
    use_recipe_head = classifier is None and recipe is not None
    if classifier is not None:
        slot_name = _as_name(model, classifier, "classifier")
    elif recipe is not None:
        slot_name = recipe.head
    else:
        slot_name = _last_linear(model)
    slot = _optional(model, slot_name)
    if slot is None:
        raise UnsupportedError(
            f"wrap: {type(model).__name__} has no classifier at {slot_name!r} (built without one?); "
            "pass classifier=<its final nn.Linear>"
        )
    neck, drops, linear = _split_slot(slot, model)
    if use_recipe_head:
        extra = _optional(model, recipe.dropout)  # type: ignore[union-attr]
        drops = ([extra] if extra is not None else []) + drops
    post: nn.Module = nn.Identity()
    if recipe is not None and target == recipe.target:
        if recipe.post_relu:
            post = nn.ReLU()  # the architecture's functional F.relu, as a (hookable) module
        elif recipe.post_module is not None:
            post = _get(model, recipe.post_module, "target_layer")
    dropout = drops[0] if len(drops) == 1 else nn.Sequential(*drops) if drops else nn.Identity()
    kwargs: dict[str, Any] = dict(target_layer=target, classifier=linear, dropout=dropout, post=post,
                                  spatial_dims=spatial_dims,
                                  arch=recipe.arch if recipe is not None else "custom")
    pooled_4d = bool(use_recipe_head and recipe.pooled_4d)  # type: ignore[union-attr]
    net: WrappedNet
    if neck or pooled_4d:
        net = NeckWrappedNet(model, neck=nn.Sequential(*neck), pooled_4d=pooled_4d, **kwargs)
    else:
        net = WrappedNet(model, **kwargs)
    shared = {id(m) for m in model.modules()}
    for m in net.modules():  # the wrapper's own modules (containers, ReLU) follow the model's mode
        if id(m) not in shared:
            m.training = model.training
    if example is not None:
        _verify(net, model, example)
    return net


def _verify(net: WrappedNet, model: nn.Module, example: Tensor) -> None:
    flags = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        with torch.no_grad():
            ref = model(example)
            try:
                ours: Tensor | None = net(example)
            except RuntimeError:  # e.g. the classifier's in_features do not match the target layer's channels
                ours = None
    finally:
        for m, flag in flags:
            m.training = flag
    same = isinstance(ref, Tensor) and ours is not None and ref.shape == ours.shape
    if not same or not torch.allclose(ours, ref, rtol=1e-4, atol=1e-5):  # type: ignore[arg-type]
        diff = f"max |Δ| {float((ours - ref).abs().max()):.3g}" if same else "shape mismatch"  # type: ignore[operator]
        raise ConfigError(
            f"wrap: head(features(x)) differs from {type(model).__name__}(x) ({diff}): the classifier is not "
            f"fed by the global average pool of target_layer {net.target_layer!r}; pass the layer whose pooled output "
            "feeds the classifier"
        )
