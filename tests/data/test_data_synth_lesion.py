"""synth-lesion-2d: shapes, ROI alignment, determinism, shortcut statistics, options."""

from __future__ import annotations

import numpy as np
import pytest

from xalbench.data.synth_lesion import SynthLesion2D, read_marker
from xalbench.errors import OptionsError

OPTS = {"size": 32, "n_train": 1500, "n_val": 50, "n_test": 1500, "n_classes": 3, "rho": 0.9, "seed": 3}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return SynthLesion2D(OPTS).load(str(tmp_path_factory.mktemp("root")))


def test_shapes_dtypes_and_meta(bundle):
    tr = bundle.train
    assert tr.images.shape == (1500, 1, 32, 32) and str(tr.images.dtype) == "torch.float32"
    assert tr.labels.shape == (1500,) and str(tr.labels.dtype) == "torch.int64"
    assert tr.roi.shape == (1500, 32, 32) and bool(tr.has_roi.all())
    assert float(tr.images.min()) >= 0.0 and float(tr.images.max()) <= 1.0
    assert set(np.unique(tr.roi.numpy())) == {0.0, 1.0}
    assert len(bundle.val) == 50 and len(bundle.test) == 1500
    m = bundle.meta
    assert (m.task, m.synthetic, m.has_roi, m.spatial_dims, m.in_channels, m.num_classes) == (
        "multi-class", True, True, 2, 1, 3)
    assert set(np.unique(tr.labels.numpy())) == {0, 1, 2}


def test_roi_marks_the_lesion(bundle):
    x, r = bundle.test.images[:, 0].numpy(), bundle.test.roi.numpy()
    inside = (x * r).sum((1, 2)) / r.sum((1, 2))
    outside = (x * (1 - r)).sum((1, 2)) / (1 - r).sum((1, 2))
    assert (inside > outside + 0.15).mean() > 0.97


def test_marker_is_outside_the_roi(bundle):
    x, r = bundle.train.images[:, 0].numpy(), bundle.train.roi.numpy()
    assert not ((x == 1.0) & (r > 0)).any()


def test_shortcut_statistics(bundle):
    k, rho = 3, OPTS["rho"]
    agree_train = (read_marker(bundle.train.images.numpy(), k) == bundle.train.labels.numpy()).mean()
    agree_test = (read_marker(bundle.test.images.numpy(), k) == bundle.test.labels.numpy()).mean()
    assert agree_train == pytest.approx(rho + (1 - rho) / k, abs=0.03)
    assert agree_test == pytest.approx(1 / k, abs=0.04)


def test_determinism_and_seed_sensitivity(tmp_path):
    a = SynthLesion2D({**OPTS, "n_train": 64, "n_test": 32}).load(str(tmp_path / "a"))
    b = SynthLesion2D({**OPTS, "n_train": 64, "n_test": 32}).load(str(tmp_path / "b"))
    c = SynthLesion2D({**OPTS, "n_train": 64, "n_test": 32, "seed": 4}).load(str(tmp_path / "a"))
    assert a.split_hash() == b.split_hash()
    assert bool((a.train.images == b.train.images).all())
    assert a.split_hash() != c.split_hash()
    # the pool does not depend on the test size
    d = SynthLesion2D({**OPTS, "n_train": 64, "n_test": 16}).load(str(tmp_path / "a"))
    assert a.train.fingerprint() == d.train.fingerprint()


def test_class_priors_make_an_imbalanced_pool(tmp_path):
    ds = SynthLesion2D({**OPTS, "n_train": 2000, "class_priors": [0.8, 0.15, 0.05]})
    counts = np.bincount(ds.load(str(tmp_path)).train.labels.numpy(), minlength=3) / 2000
    assert counts == pytest.approx([0.8, 0.15, 0.05], abs=0.03)


def test_eight_classes_and_bad_options(tmp_path):
    b = SynthLesion2D({"size": 32, "n_train": 80, "n_val": 8, "n_test": 8, "n_classes": 8}).load(str(tmp_path))
    assert b.meta.num_classes == 8 and len(set(b.meta.class_names)) == 8
    with pytest.raises(OptionsError, match="n_classes"):
        SynthLesion2D({"n_classes": 9}).load(str(tmp_path))
    with pytest.raises(OptionsError, match="class_priors"):
        SynthLesion2D({"class_priors": [1.0, 2.0]}).load(str(tmp_path))
    with pytest.raises(OptionsError, match="unknown option"):
        SynthLesion2D({"rh0": 0.5})
