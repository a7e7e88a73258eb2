"""Local pretrained weights for the registered backbones: nothing is ever downloaded at run time.

A model's ``pretrained`` option is ``""`` (random init), ``"imagenet"`` (torchvision's
ImageNet file, only if it is already in the local torch hub cache) or a path to a local
checkpoint (a ``state_dict`` of the same architecture, optionally under a ``"state_dict"``
key and with DataParallel's ``module.`` prefix). :func:`load_backbone` adapts it:

* first convolution with another number of input channels: the kernel is averaged over its
  input channels and repeated ``in_channels`` times (as ``resnet18`` does);
* classifier keys are dropped (the head is rebuilt for the dataset's classes);
* torchvision's legacy DenseNet key names (``norm.1``) are renamed;
* anything else that does not fit raises :class:`PretrainedWeightsError` (one line).
"""

from __future__ import annotations

import os
import re
from typing import Any

import torch
from torch import nn

from xalbench.errors import PretrainedWeightsError

__all__ = ["cached_weights_path", "resolve_pretrained", "load_backbone"]

_LEGACY_DENSENET = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


def cached_weights_path(weights: Any) -> str:
    """Where ``torch.hub`` keeps the file of a torchvision ``Weights`` enum member."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


def resolve_pretrained(value: str, *, model: str, weights: Any | None = None) -> str | None:
    """The local file for option ``pretrained = value`` (``None`` for ``""``), or a one-line error."""
    if not value:
        return None
    if value == "imagenet":
        if weights is None:
            raise PretrainedWeightsError(
                f"model {model!r} has no torchvision ImageNet weights; set pretrained to a local checkpoint path"
            )
        path = cached_weights_path(weights)
        if not os.path.exists(path):
            builder = model.replace("-", "_")
            raise PretrainedWeightsError(
                f"{model} ImageNet weights are not in the local torch cache ({path}); fetch them once on a machine "
                f"with internet via `python -c 'import torchvision; torchvision.models.{builder}(weights=\"{weights.name}\")'` "
                "and copy the file there, or set pretrained = \"\""
            )
        return path
    path = os.path.expanduser(value)
    if not os.path.isfile(path):
        raise PretrainedWeightsError(
            f"model {model!r}: pretrained checkpoint {path!r} does not exist; give a local file path, "
            "\"imagenet\" (torch hub cache) or \"\" (random init)"
        )
    return path


def _read_state(path: str, model: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one message
        raise PretrainedWeightsError(f"model {model!r}: cannot read checkpoint {path!r}: {exc}".splitlines()[0]) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PretrainedWeightsError(f"model {model!r}: checkpoint {path!r} is not a state_dict")
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        match = _LEGACY_DENSENET.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


def load_backbone(net: nn.Module, path: str, *, model: str, first_conv: str, head_prefixes: tuple[str, ...]) -> None:
    """Load ``path`` into ``net`` (whose first conv is already sized for the data), head excluded."""
    state = _read_state(path, model)
    state = {k: v for k, v in state.items() if not k.startswith(head_prefixes)}
    key = f"{first_conv}.weight"
    target = net.get_submodule(first_conv).weight
    if key in state and state[key].shape[1] != target.shape[1]:
        w = state[key]
        state[key] = w.mean(1, keepdim=True).repeat(1, target.shape[1], *([1] * (w.dim() - 2)))
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = " ".join(str(exc).split())[:300]
        raise PretrainedWeightsError(
            f"model {model!r}: checkpoint {path!r} does not fit this architecture ({detail}); check the model options"
        ) from None
    missing = [k for k in missing if not k.startswith(head_prefixes) and not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise PretrainedWeightsError(
            f"model {model!r}: checkpoint {path!r} does not fit this architecture "
            f"(missing {missing[:3]}{'…' if len(missing) > 3 else ''}, unexpected {unexpected[:3]}"
            f"{'…' if len(unexpected) > 3 else ''}); check the model options"
        )

