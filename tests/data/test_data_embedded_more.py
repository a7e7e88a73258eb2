"""synth-lesion-3d, synth-cxr-multilabel, decoy-digits, and the three suite TOMLs."""

from __future__ import annotations

import numpy as np
import pytest

from xalbench.data.decoy_digits import DecoyDigits, read_swatch
from xalbench.data.synth_3d import SynthLesion3D, annotated_roi
from xalbench.data.synth_cxr import FINDINGS, SynthCXRMultilabel
from xalbench.planning import plan_suite
from xalbench.plugins import load_registry
from xalbench.suites.plugin import suite_sources


@pytest.fixture(scope="module")
def vol(tmp_path_factory):
    return SynthLesion3D({"size": 24, "depth": 12, "n_train": 120, "n_val": 10, "n_test": 60,
                          "annotate_every": 3}).load(str(tmp_path_factory.mktemp("r3")))


def test_3d_shapes_roi_and_annotated_slices(vol):
    tr = vol.train
    assert tr.images.shape == (120, 1, 12, 24, 24) and tr.roi.shape == (120, 12, 24, 24)
    assert vol.meta.spatial_dims == 3 and vol.meta.synthetic and vol.meta.has_roi
    ann = tr.annotated_slices.numpy()
    assert ann.shape == (120, 12) and ann.dtype == bool
    assert (ann.sum(1) == 4).all()  # every 3rd of 12 slices
    x, r = tr.images[:, 0].numpy(), tr.roi.numpy()
    assert (x * r).sum() / r.sum() > (x * (1 - r)).sum() / (1 - r).sum() + 0.3
    part = annotated_roi(tr.roi, tr.annotated_slices).numpy()
    assert part.sum() < r.sum() and (part <= r).all()
    assert (part.sum((2, 3))[~ann] == 0).all()
    assert ((r.sum((2, 3)) > 0) & ann).any(1).mean() > 0.9  # most lesions touch an annotated slice


def test_3d_determinism(tmp_path, vol):
    again = SynthLesion3D({"size": 24, "depth": 12, "n_train": 120, "n_val": 10, "n_test": 60,
                           "annotate_every": 3}).load(str(tmp_path))
    assert again.split_hash() == vol.split_hash()
    assert bool((again.train.annotated_slices == vol.train.annotated_slices).all())


def test_cxr_multilabel_rois_per_finding(tmp_path):
    b = SynthCXRMultilabel({"size": 32, "n_train": 800, "n_val": 10, "n_test": 10}).load(str(tmp_path))
    tr = b.train
    y, cr, x = tr.labels.numpy(), tr.class_roi.numpy(), tr.images[:, 0].numpy()
    assert b.meta.task == "multi-label" and b.meta.class_names == FINDINGS
    assert y.shape == (800, 5) and cr.shape == (800, 5, 32, 32)
    present = cr.reshape(800, 5, -1).max(-1) > 0
    assert (present == (y > 0)).all()  # one ROI exactly for each present finding
    assert np.array_equal(tr.roi.numpy(), cr.max(1))
    assert (y.sum(1) >= 2).mean() > 0.1  # findings co-occur
    assert np.corrcoef(y.T)[np.triu_indices(5, 1)].mean() > 0.05
    rows = [np.argwhere(cr[:, k] > 0)[:, 1].mean() for k in range(5)]
    lateral = [np.abs(np.argwhere(cr[:, k] > 0)[:, 2] - 15.5).mean() for k in range(5)]
    nodule, effusion, cardio, ptx, consol = range(5)
    assert rows[nodule] < rows[consol] < rows[effusion] and rows[ptx] < rows[consol]  # apex → base
    assert lateral[cardio] < min(lateral[k] for k in (nodule, effusion, ptx, consol))  # heart is central
    assert lateral[ptx] > lateral[nodule]  # pneumothorax at the lateral rim
    nod = cr[:, 0] > 0
    assert x[nod].mean() > x[~nod & (cr.max(1) == 0)].mean() + 0.2


def test_decoy_digits_swatch_statistics(tmp_path):
    b = DecoyDigits({"size": 32, "n_val": 100, "n_test": 400}).load(str(tmp_path))
    assert b.meta.num_classes == 10 and b.meta.synthetic and "real handwritten" in b.meta.notes
    assert len(b.train) == 1797 - 500
    tr, te = b.train, b.test
    assert (read_swatch(tr.images.numpy(), 4) == tr.labels.numpy()).mean() == 1.0  # rho = 1 (Ross et al.)
    assert abs((read_swatch(te.images.numpy(), 4) == te.labels.numpy()).mean() - 0.1) < 0.05
    x, r = tr.images[:, 0].numpy(), tr.roi.numpy()
    assert (r[:, :4, :4] == 0).all() and (r[:, -4:, -4:] == 0).all()  # swatch corners outside the ROI
    assert (x * r).sum() / r.sum() > 0.4
    half = DecoyDigits({"size": 32, "n_val": 100, "n_test": 400, "rho": 0.5}).load(str(tmp_path))
    agree = (read_swatch(half.train.images.numpy(), 4) == half.train.labels.numpy()).mean()
    assert agree == pytest.approx(0.5 + 0.5 / 10, abs=0.05)


@pytest.mark.parametrize("name", ["medical", "medical-paper", "shortcut"])
def test_suites_plan_offline(tmp_path, name):
    source = next(s for s in suite_sources() if s.name == name)
    suite = source.load()
    plan = plan_suite(load_registry(), suite, out_dir=str(tmp_path / "out"), data_root=str(tmp_path / "empty"))
    skipped = {d for d, _ in plan.skipped_datasets}
    embedded = {c.dataset.display for c in plan.cells}
    assert all(d.optional for d in suite.datasets if d.label in skipped)
    if name == "medical":
        assert embedded == {"synth-lesion-2d", "synth-lesion-2d-imbalanced", "synth-cxr-multilabel", "synth-lesion-3d"}
        assert {"ham10000", "vindr-cxr", "brats", "medmnist:dermamnist@28"} <= skipped
        assert {m.loss.name for m in plan.suite.methods} >= {"ce", "dice", "rrr", "gradia", "haics", "res", "cyborg"}
    if name == "shortcut":
        assert any("decoy" in d for d in embedded) and len(embedded) == 5
    if name == "medical-paper":
        assert not plan.cells and len(skipped) == len(suite.datasets)
