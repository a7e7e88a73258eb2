"""Where the explanation layer and the classifier sit in known torchvision and MONAI classifiers.

A :class:`Recipe` names, by dotted module path, what :func:`xalbench.wrap` needs to split a
classifier into ``features`` (the explanation layer) and ``head`` (pool → dropout → linear):

* ``target``: the module whose output is the last conv block's output (Grad-CAM's layer);
* ``post_relu`` / ``post_module``: an activation the architecture applies *in its forward*
  after that module, before pooling (torchvision DenseNet's functional ``F.relu``, MONAI
  DenseNet's ``class_layers.relu``, MONAI EfficientNet's ``_swish``), so the explanation
  layer is what the pooling really sees;
* ``head``: the classifier slot the pooled vector enters (an ``nn.Linear``, or an
  ``nn.Sequential`` ending in one, e.g. torchvision's ``Dropout → Linear``);
* ``dropout``: a separate dropout module applied between pooling and the slot (MONAI);
* ``pooled_4d``: the slot receives the pooled ``B×C×1×1`` tensor, not the flattened
  vector (torchvision ConvNeXt: ``LayerNorm2d → Flatten → Linear``).

Recipes are looked up by the fully qualified names of the model's classes (its MRO), so
subclasses such as MONAI's ``DenseNet121`` are found and nothing is imported to look.
"""

from __future__ import annotations

import dataclasses

from torch import nn

__all__ = ["Recipe", "RECIPES", "find_recipe"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one architecture splits into explanation layer and head (see the module docstring)."""

    arch: str
    target: str
    head: str
    post_relu: bool = False
    post_module: str | None = None
    dropout: str | None = None
    pooled_4d: bool = False


RECIPES: dict[str, Recipe] = {
    # torchvision: forward = <trunk> → avgpool → flatten → <head>
    "torchvision.models.resnet.ResNet": Recipe("torchvision ResNet", "layer4", "fc"),
    "torchvision.models.densenet.DenseNet": Recipe("torchvision DenseNet", "features", "classifier", post_relu=True),
    "torchvision.models.efficientnet.EfficientNet": Recipe("torchvision EfficientNet", "features", "classifier"),
    "torchvision.models.mobilenetv2.MobileNetV2": Recipe("torchvision MobileNetV2", "features", "classifier"),
    "torchvision.models.mobilenetv3.MobileNetV3": Recipe("torchvision MobileNetV3", "features", "classifier"),
    "torchvision.models.convnext.ConvNeXt": Recipe("torchvision ConvNeXt", "features", "classifier", pooled_4d=True),
    "torchvision.models.regnet.RegNet": Recipe("torchvision RegNet", "trunk_output", "fc"),
    # MONAI (2D and 3D)
    "monai.networks.nets.resnet.ResNet": Recipe("MONAI ResNet", "layer4", "fc"),
    "monai.networks.nets.densenet.DenseNet": Recipe(
        "MONAI DenseNet", "features", "class_layers.out", post_module="class_layers.relu"),
    "monai.networks.nets.efficientnet.EfficientNet": Recipe(
        "MONAI EfficientNet", "_bn1", "_fc", post_module="_swish", dropout="_dropout"),
    "monai.networks.nets.senet.SENet": Recipe("MONAI SENet", "layer4", "last_linear", dropout="dropout"),
}


def find_recipe(model: nn.Module) -> Recipe | None:
    """The recipe of the most derived known class in ``type(model).__mro__``, or ``None``."""
    for cls in type(model).__mro__:
        recipe = RECIPES.get(f"{cls.__module__}.{cls.__qualname__}")
        if recipe is not None:
            return recipe
    return None
