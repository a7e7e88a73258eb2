"""The MONAI-based slice interpolator and Algorithm 1 behave as DUE's method requires."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xalbench_due.diffusion import DiffusionConfig, SliceDiffusion
from xalbench_due.imputation import ImputeConfig, Imputer, Volume

from .conftest import TINY, ball_volume, sparse  # noqa: TID252

pytestmark = pytest.mark.slow  # the session fixture trains a tiny interpolator once


def _model(trained) -> SliceDiffusion:
    imputer, vols = trained
    return imputer.interpolator(vols, [v.digest for v in vols])  # the session's fixed interpolator


def test_condition_drop_rate_is_about_one_half(trained):
    model = _model(trained)
    assert 0.45 < model.last_mask_rate < 0.55  # 300 steps × 16 × 2 Bernoulli(1/2) draws
    never = SliceDiffusion(DiffusionConfig(channels=(8, 16), train_steps=2, batch_size=4, p_mask=0.0, downsample=2))
    x = torch.zeros(3, 16, 16)
    assert never.fit(x, x, x, seed=0).last_mask_rate == 0.0


def test_training_uses_monai_generative_components(trained):
    from monai.inferers import DiffusionInferer
    from monai.networks.nets import DiffusionModelUNet
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

    model = _model(trained)
    assert isinstance(model.net, DiffusionModelUNet) and isinstance(model.inferer, DiffusionInferer)
    assert isinstance(model.ddpm, DDPMScheduler) and isinstance(model.ddim, DDIMScheduler)
    assert float(np.mean(model.losses[-30:])) < 0.5 * float(np.mean(model.losses[:30]))


def _draw(model: SliceDiffusion, prev: torch.Tensor, nxt: torch.Tensor | None, t: int, seed: int) -> torch.Tensor:
    has_next = torch.full((t,), nxt is not None)
    nxt = prev if nxt is None else nxt
    noise = torch.randn(model.noise_shape(t, tuple(prev.shape[-2:])), generator=torch.Generator().manual_seed(seed))
    return model.sample(prev[None].expand(t, -1, -1), nxt[None].expand(t, -1, -1), torch.ones(t, dtype=torch.bool),
                        has_next, noise)


def test_identical_context_slices_give_the_same_slice_with_near_zero_variance(trained):
    model = _model(trained)
    s = ball_volume(1, 16, 4.5, 0, 8, 8)[0]
    other = ball_volume(1, 16, 2.5, 0, 6, 10)[0]
    draws = _draw(model, s, s, 8, seed=0)
    on_grid = model._up(model._down(s[None]), (16, 16))[0]  # the slice as the model's 8×8 grid represents it
    assert float((draws.mean(0) - on_grid).abs().mean()) < 0.08
    assert float((draws.mean(0) - s).abs().mean()) < 0.6 * float((draws.mean(0) - other).abs().mean())
    assert float(draws.var(0, unbiased=False).mean()) < 0.01  # std < 0.1 on a [0, 1] mask
    assert torch.equal(draws, _draw(model, s, s, 8, seed=0))  # seeded noise → same draws (DDIM, eta = 0)


def test_variance_grows_away_from_the_context(trained):
    imputer, _ = trained
    roi = ball_volume(9, 16, 4.5, 2.0, 8, 8)
    pos = np.array([0, 2, 4])  # tail 5..8 extrapolated from slice 4 outward
    out = imputer([Volume(sparse(roi, pos), pos)])[0]
    per_slice = out.variance.flatten(1).mean(1)
    assert float(per_slice[pos].abs().max()) == 0.0  # annotated slices are known
    assert float(per_slice[5]) > 0
    assert float(per_slice[7:9].mean()) > float(per_slice[5])  # farther from the context: more spread


def test_imputed_target_keeps_annotations_and_weights_are_one_there(trained):
    imputer, vols = trained
    out = imputer(vols[:2])
    for v, o in zip(vols[:2], out, strict=True):
        idx = torch.as_tensor(v.positions)
        assert torch.equal(o.target[idx], v.roi[idx]) and torch.equal(o.weight[idx], torch.ones_like(o.weight[idx]))
        assert float(o.weight.min()) >= 0.0 and float(o.weight.max()) <= 1.0
        assert o.target.shape == v.roi.shape


def test_empty_contexts_are_skipped_exactly_and_weighted_one(trained):
    imputer, _ = trained
    roi = torch.zeros(9, 16, 16)
    roi[4] = ball_volume(1, 16, 3.0, 0, 8, 8)[0]
    pos = np.array([0, 4, 8])
    out = imputer([Volume(roi, pos)])[0]
    assert out.target.sum() > 0  # slices 1..7 next to the lesion were sampled
    none = torch.zeros(9, 16, 16)
    none[0, 8, 8] = 1.0  # a one-voxel mask on slice 0; slices 4 and 8 empty
    gap = imputer([Volume(none, pos)])[0]
    assert torch.equal(gap.target[5:8], torch.zeros(3, 16, 16)) and torch.equal(gap.weight[5:8], torch.ones(3, 16, 16))


def test_cache_in_memory_and_on_disk_is_exact(interpolator, tmp_path):
    model, vols = interpolator
    from xalbench_due import imputation
    from xalbench_due.predictor import PredictorConfig

    cfg = ImputeConfig(n_samples=3, variance="predictor", predictor_volumes=2, target_samples=1, diffusion=TINY,
                       seed=1, cache_dir=str(tmp_path), predictor=PredictorConfig(steps=20))
    first = Imputer(cfg, interpolator=model)(vols[:4])
    again = Imputer(cfg, interpolator=model)
    second = again(list(reversed(vols[:4])))[::-1]  # order does not matter
    assert again.stats["cache_hit"] == 1.0
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a.target, b.target) and torch.equal(a.weight, b.weight)
    imputation.clear_memory_cache()
    disk = Imputer(cfg, interpolator=model)
    third = disk(vols[:4])
    assert disk.stats["cache_hit"] == 1.0 and any(tmp_path.iterdir())
    assert all(torch.equal(a.variance, b.variance) for a, b in zip(first, third, strict=True))
    imputation.clear_memory_cache()
    fresh = Imputer(type(cfg)(**{**cfg.__dict__, "cache_dir": ""}), interpolator=model)
    recomputed = fresh(vols[:4])  # no cache at all: the same numbers (everything is seeded by the content)
    assert fresh.stats["cache_hit"] == 0.0
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(first, recomputed, strict=True))
    # the predictor path gives a variance for every missing slice of the non-empty blocks
    assert all(float(o.variance.sum()) > 0 for o in first)


def test_bad_options_are_one_clear_error():
    with pytest.raises(ValueError, match="multiple of norm_num_groups"):
        DiffusionConfig(channels=(8, 12)).check()
    with pytest.raises(ValueError, match="n_samples"):
        ImputeConfig(n_samples=1).check()
