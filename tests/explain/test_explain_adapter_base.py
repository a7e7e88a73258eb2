"""The scoring-adapter base: one preamble (checks, wrapping, eval mode, targets, gradients, [0, 1])."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor

from xalbench.base import ExplainableNet
from xalbench.errors import ConfigError, UnsupportedError
from xalbench.explain.adapter import ScoringAdapter, ScoringOnly
from xalbench.explain.gradcam_lib import LibraryCAMExplainer
from xalbench.explain.lrp import LRPExplainer
from xalbench.explain.wrappers import MarkedNet


class GradTimesInput(ScoringAdapter):
    """Toy library: |∂ logit_t / ∂x · x| via ``backward()`` on the wrapped model (writes parameter grads)."""

    name: ClassVar[str] = "toy-grad-x-input"
    library: ClassVar[str] = "toylib"
    supports_3d: ClassVar[bool] = False

    def __init__(self, options=None) -> None:
        super().__init__(options)
        self.seen: list[tuple[bool, Tensor]] = []

    def attribute(self, model: ExplainableNet, wrapped: MarkedNet, images: Tensor, sets: list[Tensor]) -> list[Tensor]:
        maps = []
        for t in sets:
            self.seen.append((model.training, t.clone()))
            x = images.clone().requires_grad_(True)
            wrapped(x).gather(1, t[:, None]).sum().backward()
            maps.append((x.grad * x).abs().sum(1) * 1e3)  # deliberately outside [0, 1]
        return maps


def test_adapters_share_the_base():
    assert issubclass(LibraryCAMExplainer, ScoringAdapter) and issubclass(LRPExplainer, ScoringAdapter)
    assert "explain" not in vars(LibraryCAMExplainer) and "explain" not in vars(LRPExplainer)


def test_preamble_targets_modes_gradients_and_range(net2d, images2d):
    ex = GradTimesInput()
    net2d.train()
    net2d.zero_grad(set_to_none=True)  # the session's net2d may carry another test's gradients
    try:
        with torch.no_grad():
            pred = net2d.eval()(images2d).argmax(1)
        net2d.train()
        maps = ex.explain(net2d, images2d)  # None → predicted class, in eval mode
        assert ex.seen[-1][0] is False and torch.equal(ex.seen[-1][1], pred)
        assert net2d.training and all(m.training for m in net2d.modules())  # flags restored
        assert all(p.grad is None for p in net2d.parameters())  # the library's backward() left nothing
        assert maps.shape == (6, 32, 32) and float(maps.min()) >= 0 and float(maps.max()) <= 1
        every = ex.explain(net2d, images2d, all_classes=True)
        assert every.shape == (6, 4, 32, 32) and [int(t[0]) for _, t in ex.seen[-4:]] == [0, 1, 2, 3]
        t = torch.tensor([3, 2, 1, 0, 3, 2])
        assert torch.allclose(ex.explain(net2d, images2d, t), every[torch.arange(6), t])
    finally:
        net2d.eval()


def test_preamble_rejects_what_the_adapter_cannot_do(net2d, net3d, images2d, images3d):
    ex = GradTimesInput()
    with pytest.raises(UnsupportedError, match=r"'toy-grad-x-input' \(toylib\) is scoring-only"):
        ex.explain(net2d, images2d, create_graph=True)
    with pytest.raises(UnsupportedError, match="2D only in toylib"):
        ex.explain(net3d, images3d)
    with pytest.raises(ConfigError, match="B×C×H×W"):
        ex.explain(net2d, images2d[0])
    with pytest.raises(ConfigError, match="one target per sample"):
        ex.explain(net2d, images2d, torch.tensor([0, 1]))


def test_captum_shares_the_refusals(net2d, images2d):
    """Captum's explainers refuse through the same base (one preamble, their library named in the message)."""
    from xalbench.explain.captum_attr import CaptumExplainer, SaliencyExplainer

    assert issubclass(CaptumExplainer, ScoringOnly) and issubclass(ScoringAdapter, ScoringOnly)
    assert not {"refuse", "explain"} & (set(vars(CaptumExplainer)) | set(vars(ScoringAdapter)))
    with pytest.raises(UnsupportedError, match=r"'saliency' \(Captum\) is scoring-only and not differentiable"):
        SaliencyExplainer().explain(net2d, images2d, create_graph=True)
    with pytest.raises(ConfigError, match="B×C×H×W"):
        SaliencyExplainer().explain(net2d, images2d[0])
