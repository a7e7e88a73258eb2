"""Small ``nn.Module`` wrappers that expose an :class:`ExplainableNet`'s explanation layer to libraries.

pytorch-grad-cam and zennit hook *modules*; ``features``/``head`` are methods. The wrapper's
forward is ``head(marker(features(x)))`` where ``marker`` is an ``nn.Identity`` whose output
is exactly ``model.features(x)`` (the target layer for CAM libraries). With
``gap_module=True`` and a GAP + linear head, the global average pool is an
``nn.AdaptiveAvgPool{2,3}d`` module, so LRP composites apply their pooling rule to it.
"""

from __future__ import annotations

from torch import Tensor, nn

from xalbench.base import ExplainableNet
from xalbench.explain.cam import is_gap_linear_head

__all__ = ["MarkedNet"]


class MarkedNet(nn.Module):
    """``head(marker(features(x)))`` with an ``nn.Identity`` marker on the explanation layer."""

    def __init__(self, net: ExplainableNet, *, gap_module: bool = False) -> None:
        super().__init__()
        self.net = net
        self.marker = nn.Identity()
        self.use_pool = gap_module and type(net).head is ExplainableNet.head and type(net).embed is ExplainableNet.embed
        dims = int(getattr(net, "spatial_dims", 2))
        self.pool = (nn.AdaptiveAvgPool3d(1) if dims == 3 else nn.AdaptiveAvgPool2d(1)) if self.use_pool else None
        # mirror the wrapped net's own flag (not recursively: its children keep their flags), so a
        # library that does ``train(model.training)`` on the wrapper restores the net's mode
        for m in (self, self.marker, *(() if self.pool is None else (self.pool,))):
            m.training = net.training

    @property
    def closed_form_head(self) -> bool:
        return is_gap_linear_head(self.net)

    def forward(self, x: Tensor) -> Tensor:
        a = self.marker(self.net.features(x))
        if self.pool is not None:
            return self.net.classifier(self.net.dropout(self.pool(a).flatten(1)))
        return self.net.head(a)
