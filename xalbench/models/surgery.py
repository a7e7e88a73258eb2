"""Small in-place edits of a backbone: swap a submodule, resize the stem, rebuild the classifier."""

from __future__ import annotations

from torch import nn

__all__ = ["set_module", "resize_first_conv", "make_head"]


def set_module(net: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``path``."""
    parent, _, name = path.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, name, module)


def resize_first_conv(net: nn.Module, path: str, in_channels: int) -> None:
    """Swap the convolution at ``path`` for one with ``in_channels`` inputs (fresh init, same geometry)."""
    old = net.get_submodule(path)
    if old.in_channels == in_channels:
        return
    new = type(old)(in_channels, old.out_channels, old.kernel_size, stride=old.stride, padding=old.padding,
                    dilation=old.dilation, groups=old.groups, bias=old.bias is not None, padding_mode=old.padding_mode)
    set_module(net, path, new)


def make_head(in_features: int, num_classes: int, dropout: float, embedding_dim: int = 0) -> nn.Module:
    """Classifier slot ``[Linear(·, d) → ReLU →] [Dropout(p) →] Linear(·, num_classes)``."""
    layers: list[nn.Module] = []
    if embedding_dim:
        layers += [nn.Linear(in_features, embedding_dim), nn.ReLU()]
        in_features = embedding_dim
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(in_features, num_classes))
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)
