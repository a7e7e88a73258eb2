from __future__ import annotations

import pytest
import torch
from torch import nn

from xalbench.base import ExplainableNet
from xalbench.plugins import load_registry


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture(scope="session")
def net2d(registry):
    torch.manual_seed(0)
    net = registry.create("model", "small-cnn", {"width": 8}).build(3, 4, 2)
    # a few BN statistics away from the defaults so eval vs train mode differ
    with torch.no_grad():
        net.train()
        net(torch.rand(16, 3, 32, 32))
    net.eval()
    return net


@pytest.fixture(scope="session")
def net3d(registry):
    torch.manual_seed(1)
    net = registry.create("model", "small-cnn", {"width": 4, "n_blocks": 3}).build(1, 3, 3)
    with torch.no_grad():
        net.train()
        net(torch.rand(4, 1, 16, 16, 16))
    net.eval()
    return net


@pytest.fixture(scope="session")
def images2d():
    return torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="session")
def images3d():
    return torch.rand(3, 1, 16, 16, 16, generator=torch.Generator().manual_seed(4))


class TanhHeadNet(ExplainableNet):
    """A non-GAP head (max-pool + tanh MLP): forces the generic autograd path."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True))
        self.hidden = nn.Linear(8, 8)
        self.classifier = nn.Linear(8, 3)

    def features(self, x):
        return self.body(x)

    def embed(self, a):
        return torch.tanh(self.hidden(a.flatten(2).amax(-1)))


@pytest.fixture(scope="session")
def tanh_net():
    torch.manual_seed(5)
    return TanhHeadNet().eval()
