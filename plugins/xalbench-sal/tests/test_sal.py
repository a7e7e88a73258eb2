"""SAL on xalbench's trainer and mask-source extension points: the paper's rules, checked one by one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xalbench.base import Batch, ExplainableNet
from xalbench.cli import main
from xalbench.plugins import load_registry
from xalbench.results import iter_results
from xalbench.training.masks import cam_masks


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict[str, dict]:
    """The sal-smoke suite, run once: entropy × the six SAL variants."""
    out = tmp_path_factory.mktemp("sal")
    assert main(["run", "--suite", "sal-smoke", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return {r["cell"]["method"]: r for r in iter_results(out)}


def _batch(n: int = 6) -> Batch:
    gen = torch.Generator().manual_seed(0)
    roi = torch.zeros(n, 16, 16)
    roi[:, 4:10, 4:10] = 1
    return Batch(images=torch.rand(n, 1, 16, 16, generator=gen), labels=torch.arange(n) % 3, task="multi-class",
                 roi=roi, has_roi=torch.ones(n, dtype=torch.bool))


def test_alpha_1_is_cross_entropy(registry) -> None:
    from xalbench.models.small_cnn import SmallCNN

    torch.manual_seed(0)
    net = SmallCNN({"width": 4, "n_blocks": 2}).build(1, 3).eval()  # no dropout: both losses see one forward
    batch = _batch()
    ce = registry.create("loss", "ce")(net, batch).total
    cyborg = registry.create("loss", "cyborg", {"alpha": 1.0})(net, batch).total
    assert torch.allclose(cyborg, ce)


def test_cam_equal_to_the_mask_gives_zero_saliency_loss(registry) -> None:
    loss = registry.create("loss", "cyborg", {"alpha": 0.5})
    maps = torch.rand(4, 5, 5)
    assert torch.all(loss.saliency_term(maps, maps) == 0)


def test_threshold_is_strict_after_min_max() -> None:
    maps = torch.tensor([[[0.0, 0.5, 1.0]]])  # already min-max normalised
    assert cam_masks(maps, 0.5).tolist() == [[[0.0, 0.0, 1.0]]]
    assert cam_masks(torch.tensor([[[2.0, 3.0, 4.0]]]), 0.5).tolist() == [[[0.0, 0.0, 1.0]]]  # min-max first


class _ShiftedIdentity(ExplainableNet):
    """Features = image − 0.3 (one channel at input resolution), classifier weights (1, −1), no bias:
    class 0's CAM is ``x − 0.3`` and goes negative wherever ``x < 0.3``."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = torch.nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.tensor([[1.0], [-1.0]]))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x - 0.3


def _ai_masks(registry, images: torch.Tensor, explainer: str, **options) -> torch.Tensor:
    from xalbench.training.base import MaskRequest, TrainedModels

    source = registry.create("mask_source", "model-cam", options)
    labels = torch.zeros(images.shape[0], dtype=torch.long)
    request = MaskRequest(0, np.arange(images.shape[0]), images, labels, TrainedModels(main=_ShiftedIdentity()),
                          registry.create("explainer", explainer, None), "multi-class", 2, torch.device("cpu"),
                          lambda kind, name, opts: registry.create(kind, name, opts))
    return source.generate(request)


@pytest.mark.parametrize("explainer", ["cam", "gradcam"])
def test_ai_masks_threshold_the_raw_cam_as_in_the_paper(registry, explainer) -> None:
    """SAL §6.1: the model's CAM (no ReLU), min-max normalised, > 0.5. With CAM = x − 0.3 over x in
    [0, 1] the cut is at x > 0.5 (the mid-point of −0.3 and 0.7); the ReLU reading (``map =
    "explainer"``) cuts at relu(x − 0.3) > 0.35, i.e. x > 0.65."""
    x = torch.linspace(0.0, 1.0, 64).reshape(1, 1, 8, 8)
    raw = _ai_masks(registry, x, explainer)
    relu = _ai_masks(registry, x, explainer, map="explainer")
    cam = x[:, 0] - 0.3
    by_hand = ((cam - cam.min()) / (cam.max() - cam.min()) > 0.5).float()
    assert torch.equal(raw, by_hand)
    assert torch.equal(raw, (x[:, 0] > 0.5).float())
    assert torch.equal(relu, (x[:, 0] > 0.65).float())
    differ = (raw != relu).sum().item()
    assert differ == int(((x > 0.5) & (x <= 0.65)).sum())  # the raw masks are larger: the pixels in between
    assert differ > 0 and bool((relu <= raw).all())


def test_ai_masks_equal_the_relu_reading_where_the_cam_is_non_negative(registry) -> None:
    x = torch.linspace(0.3, 1.0, 64).reshape(1, 1, 8, 8)  # CAM = x − 0.3 ≥ 0 everywhere
    assert torch.equal(_ai_masks(registry, x, "gradcam"), _ai_masks(registry, x, "gradcam", map="explainer"))


def test_exactly_c_rounds_of_human_masks_then_ai_masks(smoke) -> None:
    sal = smoke["entropy/SAL"]
    # pool 100, initial 10 %, queries 10 %, human budget 30 %: the initial set and the first 2 rounds' queries
    revealed = [r["n_masks_revealed"] for r in sal["rounds"]]
    generated = [r["n_masks_generated"] for r in sal["rounds"]]
    assert revealed == [10, 20, 30, 30, 30] and generated == [0, 0, 0, 10, 20]
    assert [("generated_mask_dice" in r) for r in sal["rounds"]] == [False, False, True, True, False]
    assert smoke["entropy/B2"]["rounds"][-1]["n_masks_revealed"] == 50  # B2: every mask human
    assert smoke["entropy/No-AI"]["rounds"][-1]["n_masks_generated"] == 0


def test_trainers_train_the_models_their_variant_needs(smoke) -> None:
    def terms(method: str) -> list[dict]:
        return [r["train_terms"] for r in smoke[method]["rounds"]]

    assert all(any(k.startswith("interp.") for k in t) for t in terms("entropy/SAL"))
    assert not any(k.startswith(("interp.", "generator.")) for t in terms("entropy/SAL-Single") for k in t)
    tait = terms("entropy/TAIT")
    assert [t["generator.frozen"] for t in tait] == [0.0, 0.0, 0.0, 1.0, 1.0]  # frozen once past the change point


def test_tait_generator_parameters_frozen_after_the_change_point(registry) -> None:
    from xalbench_sal.trainers import TAITTrainer

    from xalbench.training.base import TrainedModels, TrainJob

    trainer = TAITTrainer()
    frozen = torch.nn.Linear(2, 2)
    before = {k: v.clone() for k, v in frozen.state_dict().items()}

    class _Loss:
        def on_round_start(self, info):
            pass

    calls: list[str] = []

    def fake_fit(job, loss, model, stream="", continued=False):
        calls.append(stream)
        return {"loss": 0.0}

    import xalbench_sal.trainers as module

    original = module.fit_one
    module.fit_one = fake_fit
    try:
        job = TrainJob(round_index=5, data=None, index=np.arange(40), n_pool=100, cell_seed=0, task="multi-class",  # type: ignore[arg-type]
                       num_classes=3, spatial_dims=2, training=None, device=torch.device("cpu"), loss=_Loss(),  # type: ignore[arg-type]
                       new_model=lambda: torch.nn.Linear(2, 2), derive=lambda *p: 0, create=lambda *a: _Loss(),
                       previous=TrainedModels(main=torch.nn.Linear(2, 2), extra={"generator": frozen}), mask_limit=30)
        out = trainer.fit(job)
    finally:
        module.fit_one = original
    assert calls == [""]  # only M_acc trained
    assert out.extra["generator"] is frozen
    assert all(torch.equal(before[k], v) for k, v in out.extra["generator"].state_dict().items())


def test_ai_masks_change_with_m_interp_each_round(registry, tmp_path) -> None:
    """The masks drawn after C come from that round's M_interp: the same samples get other masks
    from round 1's M_interp than from round 0's."""
    from xalbench.harness.state import CellRun
    from xalbench.planning import load_suite, plan_suite
    from xalbench.training.base import MaskRequest

    plan = plan_suite(registry, load_suite(registry, "sal-smoke"), out_dir=str(tmp_path), strategies=["entropy"])
    spec = next(c for c in plan.cells if c.method.display == "entropy/SAL")
    run = CellRun(spec, plan.runtime.dataset(spec.dataset, None), registry)
    pool = run.bundle.train
    rest = np.setdiff1d(np.arange(len(pool)), run.initial)
    new = rest[:8]

    def masks_after(r: int, labelled: np.ndarray) -> torch.Tensor:
        trained = run.train(r, labelled)
        assert set(trained.extra) == {"interp"}
        idx = torch.as_tensor(new)
        request = MaskRequest(r, new, pool.images[idx], pool.labels[idx], trained, run.explainer, "multi-class", 2,
                              torch.device("cpu"), run._create)
        return run.mask_source.generate(request)

    first = masks_after(0, run.initial)
    second = masks_after(1, np.concatenate([run.initial, rest[8:18]]))
    assert first.shape == (8, 32, 32) and set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)


def test_sal_suites_parse_with_six_criteria_and_six_variants(registry) -> None:
    suite = registry.get("suite", "sal-paper").load()
    labels = {m.display for m in suite.methods}
    assert len(labels) == 36
    assert {"random/B1", "badge/SAL", "coreset/TAIT", "margin/SAL-Single", "entropy/No-AI", "least-confidence/B2"} <= labels
    ssim = registry.get("suite", "sal-paper-ssim").load()
    assert {m.loss.name for m in ssim.methods} == {"ce", "cyborg-ssim-l1"}


@pytest.mark.parametrize("warm", [False, True])
def test_dual_trainer_continues_both_models_under_warm_start(warm: bool) -> None:
    """With training.warm_start, M_acc and M_interp continue from the previous round's weights (as the
    standard trainer's model does); without it both start again from the initial weights."""
    import dataclasses

    import xalbench_sal.trainers as module
    from xalbench_sal.trainers import DualTrainer

    from xalbench.suite import TrainingSpec
    from xalbench.training.base import TrainedModels, TrainJob

    class _Loss:
        def on_round_start(self, info):
            pass

    trained: list[torch.nn.Module] = []

    def fake_fit(job, loss, model, stream="", continued=False):
        trained.append((model, continued))
        return {"loss": 0.0}

    acc, interp = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    original = module.fit_one
    module.fit_one = fake_fit
    try:
        job = TrainJob(round_index=2, data=None, index=np.arange(40), n_pool=100, cell_seed=0, task="multi-class",  # type: ignore[arg-type]
                       num_classes=3, spatial_dims=2, training=dataclasses.replace(TrainingSpec(), warm_start=warm),
                       device=torch.device("cpu"), loss=_Loss(), new_model=lambda: torch.nn.Linear(2, 2),
                       derive=lambda *p: 0, create=lambda *a: _Loss(),
                       previous=TrainedModels(main=acc, extra={"interp": interp}), mask_limit=30)
        out = DualTrainer().fit(job)
    finally:
        module.fit_one = original
    assert (out.main is acc, out.extra["interp"] is interp) == (warm, warm)
    assert trained == [(out.main, warm), (out.extra["interp"], warm)] and DualTrainer.keeps_state
