"""Embedded generators: one options base, checked when the dataset is built (before any data), dataset seed."""

from __future__ import annotations

import numpy as np
import pytest

from xalbench.data import decoy_digits, synth_3d, synth_cxr, synth_lesion
from xalbench.data.decoy_digits import DecoyDigits
from xalbench.data.synth_3d import SynthLesion3D, lesion_fits_3d
from xalbench.data.synth_cxr import SynthCXRMultilabel
from xalbench.data.synth_lesion import SynthLesion2D, lesion_fits
from xalbench.data.synthetic import SyntheticDataset, SyntheticOptions
from xalbench.errors import OptionsError

GENERATORS = (SynthLesion2D, SynthLesion3D, SynthCXRMultilabel, DecoyDigits)

BAD = [
    (SynthLesion2D, {"n_train": 0}, "n_train must be ≥ 1, got 0"),
    (SynthLesion2D, {"size": 16}, "size must be ≥ 17 px"),
    (SynthLesion2D, {"class_priors": [0.5, 0.3, 0.1]}, "summing to 1"),
    (SynthLesion2D, {"rho": 1.5}, "rho must be in"),
    (SynthLesion3D, {"n_test": -1}, "n_test must be ≥ 1"),
    (SynthLesion3D, {"size": 16, "depth": 16}, "use size ≥ 17"),
    (SynthLesion3D, {"size": 64, "depth": 8}, "use depth ≥ 20"),
    (SynthLesion3D, {"class_priors": [1.0]}, "class_priors needs 3"),
    (SynthCXRMultilabel, {"n_val": 0}, "n_val must be ≥ 1"),
    (SynthCXRMultilabel, {"size": 20}, "size must be ≥ 24"),
    (SynthCXRMultilabel, {"prevalence": [0.2, 0.3]}, "prevalence needs 1 or 5"),
    (DecoyDigits, {"n_train": 1200, "n_val": 400, "n_test": 400}, "1797 digits"),
    (DecoyDigits, {"margin": 0}, "margin must be in"),
]


@pytest.fixture
def no_generation(monkeypatch):
    """Fail the test if any generator starts drawing data."""
    def boom(*args, **kwargs):
        raise AssertionError("data generated during validation")

    for module, fn in ((synth_lesion, "generate_lesion_2d"), (synth_3d, "generate_lesion_3d"),
                       (synth_cxr, "generate_cxr")):
        monkeypatch.setattr(module, fn, boom)
    monkeypatch.setattr(decoy_digits.DecoyDigits, "make", boom)


@pytest.mark.parametrize("cls, options, message", BAD)
def test_bad_values_fail_when_built_with_one_line_naming_the_dataset(no_generation, cls, options, message):
    with pytest.raises(OptionsError, match=message) as err:
        cls(options)
    text = str(err.value)
    assert text.startswith(f"dataset {cls.name!r}: ") and "\n" not in text


@pytest.mark.parametrize("cls", GENERATORS)
def test_every_generator_shares_the_base_and_has_a_dataset_seed(cls):
    assert issubclass(cls, SyntheticDataset) and issubclass(cls.Options, SyntheticOptions)
    assert cls.Options().seed == 0


def test_lesion_geometry_bounds_are_the_generators_own(tmp_path):
    assert not lesion_fits(16) and lesion_fits(17)
    assert lesion_fits_3d(17, 16) == (True, True) and not lesion_fits_3d(16, 16)[0]
    SynthLesion2D({"size": 17, "n_train": 400, "n_val": 2, "n_test": 2}).arrays(str(tmp_path))  # largest lesions fit


def test_dataset_seed_default_is_seed_zero_and_another_seed_redraws(tmp_path):
    small = {"size": 24, "n_train": 12, "n_val": 4, "n_test": 4}
    a = SynthCXRMultilabel(small).load(str(tmp_path / "a"))
    b = SynthCXRMultilabel({**small, "seed": 0}).load(str(tmp_path / "b"))
    c = SynthCXRMultilabel({**small, "seed": 1}).load(str(tmp_path / "c"))
    assert a.split_hash() == b.split_hash() != c.split_hash()
    assert b.meta.class_names == c.meta.class_names


def test_four_findings_generate(tmp_path):
    b = SynthCXRMultilabel({"size": 24, "n_findings": 4, "n_train": 16, "n_val": 4, "n_test": 4}).load(str(tmp_path))
    assert b.train.labels.shape == (16, 4) and b.train.class_roi.shape == (16, 4, 24, 24)
    roi = b.train.class_roi.numpy()
    assert np.array_equal(roi.any(1), b.train.roi.numpy() > 0)


def test_an_unreadable_disk_cache_regenerates_instead_of_failing(tmp_path, monkeypatch) -> None:
    """A confined process may see the cache file but not read it: it generates the arrays itself."""
    import numpy as np

    from xalbench.data import common

    def make() -> dict[str, np.ndarray]:
        return {"x": np.arange(4)}

    first = common.cached_arrays("probe", 1, {"a": 1}, make, tmp_path)
    assert list((tmp_path / "synthetic").glob("*.npz"))

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(common, "sha256_file", denied)
    again = common.cached_arrays("probe", 1, {"a": 1}, make, tmp_path)
    assert np.array_equal(again["x"], first["x"])
