"""eval_mode / grads_restored restore module state; one soft Dice serves the loss and the metric."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xalbench.losses.supervision import soft_dice as loss_soft_dice
from xalbench.metrics.functions import soft_dice as metric_soft_dice
from xalbench.utils.overlap import soft_dice
from xalbench.utils.torch_modes import eval_mode, grads_restored


def _net() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
    net.train()
    net[1].eval()  # mixed flags: each module's own flag must come back, not net.train()
    return net


def test_eval_mode_restores_every_flag_also_on_error():
    net = _net()
    before = [m.training for m in net.modules()]
    with eval_mode(net) as inside:
        assert inside is net and not any(m.training for m in net.modules())
    assert [m.training for m in net.modules()] == before
    with pytest.raises(RuntimeError), eval_mode(net):
        raise RuntimeError("boom")
    assert [m.training for m in net.modules()] == before


def test_grads_restored_puts_back_none_and_existing_grads():
    net = _net()
    net(torch.rand(2, 1, 5, 5)).sum().backward()
    kept = net[0].weight.grad.clone()
    net[1].weight.grad = None
    with grads_restored(net):
        net(torch.rand(2, 1, 5, 5)).pow(2).sum().backward()
        assert net[1].weight.grad is not None
    assert torch.equal(net[0].weight.grad, kept) and net[1].weight.grad is None


def test_one_soft_dice_keeps_each_callers_numbers():
    g = torch.Generator().manual_seed(0)
    maps, roi = torch.rand(4, 8, 8, generator=g), (torch.rand(4, 8, 8, generator=g) > 0.6).float()
    assert torch.equal(loss_soft_dice(maps, roi), soft_dice(maps, roi, 1e-6))  # the dice loss's eps
    flat_s, flat_m = maps.reshape(4, -1).double(), (roi.reshape(4, -1) > 0.5).double()
    assert torch.equal(metric_soft_dice(maps, roi), soft_dice(flat_s, flat_m, 1e-8))  # the metric's eps
    assert soft_dice(torch.ones(1, 4), torch.ones(1, 4), 0.0).item() == 1.0
