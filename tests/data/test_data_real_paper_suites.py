"""The paper-grade suites: real datasets only (all optional), 5 seeds, the papers' backbones, and a
compute estimate that says it is one."""

from __future__ import annotations

import pytest

from xalbench.planning import load_suite
from xalbench.plugins import load_registry

REG = load_registry()
CXR = {"vindr-cxr", "siim-covid19", "nih-cxr14", "rsna-pneumonia", "siim-acr-pneumothorax", "chexpert",
       "medmnist:chestmnist@224", "medmnist:pneumoniamnist@224"}
BACKBONE = {"medical-paper": "densenet121", "medical-paper-other": "resnet18", "medical-paper-egal": "densenet121",
            "medical-paper-sal": "resnet50", "medical-paper-aeig": "resnet18"}
PROTOCOL = {"medical-paper": "sal", "medical-paper-other": "sal", "medical-paper-egal": "egal",
            "medical-paper-sal": "sal", "medical-paper-aeig": "aeig"}


@pytest.mark.parametrize("name", sorted(BACKBONE))
def test_paper_suite_is_real_full_scale_and_states_its_compute(name):
    suite = load_suite(REG, name)
    assert suite.model.name == BACKBONE[name] and suite.protocol_base == PROTOCOL[name]
    assert not suite.protocol_overrides  # the paper's budget, unscaled
    assert len(suite.seeds) == 5 and suite.datasets
    for d in suite.datasets:
        cls = REG.get("dataset", d.name.split(":")[0])
        assert d.optional and not getattr(getattr(cls, "obj", cls), "synthetic", True)
        assert ("@224" in d.name) if d.name.startswith("medmnist") else d.options.get("size") == 224
    for m in suite.methods:
        REG.create("strategy", m.strategy.name, m.strategy.options)
        REG.create("loss", m.loss.name, m.loss.options)
    REG.create("model", suite.model.name, suite.model.options)
    text = " ".join(suite.description.split())
    assert "GPU-hours" in text and "an estimate" in text and "Derivation" in text and "seed 00" not in text


def test_chest_xray_datasets_get_densenet_and_the_rest_resnet():
    cxr = {d.name for d in load_suite(REG, "medical-paper").datasets}
    other = {d.name for d in load_suite(REG, "medical-paper-other").datasets}
    assert cxr == CXR and not other & CXR
    assert len(load_suite(REG, "medical-paper").methods) == len(load_suite(REG, "medical-paper-other").methods) == 22
