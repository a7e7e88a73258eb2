"""Regression: explanation losses must not drown the CE and hand the model to the shortcut.

synth-lesion-2d at 32 px, shortcut marker rho = 0.5 in the pool, uniform (independent of
the class) at test: a model that reads the marker scores chance. The former ``rrr``
default (pixel SUM, lam 10) had a parameter gradient ~10^3x the CE's and ended below
chance; the per-pixel mean with lam 1 (Ross et al.'s "same order as the CE") must keep
the accuracy ``ce`` reaches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xalbench.suite import TrainingSpec
from xalbench.training.epochs import make_batch, train_round

N = 96


@pytest.fixture(scope="module")
def lesion(registry):
    return registry.create("dataset", "synth-lesion-2d",
                           {"size": 32, "n_train": N, "n_val": 10, "n_test": 120, "rho": 0.5}).load()


def _accuracy(registry, bundle, name: str, opts: dict) -> float:
    torch.manual_seed(0)
    model = registry.create("model", "small-cnn", {"width": 8, "n_blocks": 3}).build(1, 3, 2)
    spec = TrainingSpec(epochs=10, batch_size=16, lr=3e-3, recalibrate_bn=True)
    train_round(model, registry.create("loss", name, opts), bundle.train, np.arange(N), np.ones(N, bool), spec,
                "multi-class", torch.Generator().manual_seed(0), torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        pred = model(bundle.test.images).argmax(1)
    return float((pred == bundle.test.labels).float().mean())


def test_rrr_default_keeps_ce_accuracy(registry, lesion):
    ce = _accuracy(registry, lesion, "ce", {})
    rrr = _accuracy(registry, lesion, "rrr", {})
    assert ce > 0.42, f"ce should beat chance (1/3) here, got {ce:.3f}"
    assert rrr > 0.40 and rrr >= ce - 0.05, f"rrr {rrr:.3f} vs ce {ce:.3f}"


def test_rrr_penalty_is_resolution_independent_and_ce_scaled(registry, lesion):
    """Mean reduction: same per-pixel penalty at 32 px; its gradient stays within 10x the CE's."""
    torch.manual_seed(0)
    model = registry.create("model", "small-cnn", {"width": 8, "n_blocks": 3, "dropout": 0.0}).build(1, 3, 2)
    ce_loss, opt = registry.create("loss", "ce"), torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(30):  # a CE-trained state, where the summed penalty used to explode
        b = make_batch(lesion.train, np.arange(step * 16, step * 16 + 16) % N, np.ones(16, bool), "multi-class",
                       torch.device("cpu"))
        out = ce_loss(model, b)
        opt.zero_grad()
        out.total.backward()
        opt.step()
    b = make_batch(lesion.train, np.arange(16), np.ones(16, bool), "multi-class", torch.device("cpu"))
    params = list(model.parameters())

    def gnorm(t: torch.Tensor) -> float:
        return float(torch.sqrt(sum((g**2).sum() for g in torch.autograd.grad(t, params, allow_unused=True)
                                    if g is not None)))

    g_ce = gnorm(ce_loss(model, b).total)
    mean = registry.create("loss", "rrr")(model, b)
    total = registry.create("loss", "rrr", {"reduction": "sum", "lam": 1.0})(model, b)
    assert total.terms["explanation"] == pytest.approx(mean.terms["explanation"] * 32 * 32, rel=1e-4)
    assert gnorm(mean.total) < 10 * g_ce


def test_res_default_is_foreground_only(registry):
    """Plain ROI masks: outside = unlabelled (0), as DUE and RES's {+1, 0} masks."""
    assert registry.get("loss", "res").Options().outside_negative is False
