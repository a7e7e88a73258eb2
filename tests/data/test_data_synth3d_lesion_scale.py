"""synth-lesion-3d's lesion_scale: 1 draws what the generator always drew; a smaller field of view with a
larger scale keeps the lesions' size in voxels; a lesion that cannot fit is one clear error."""

from __future__ import annotations

import numpy as np
import pytest

from xalbench.data.common import split_rng
from xalbench.data.synth_3d import SynthLesion3D, generate_lesion_3d
from xalbench.errors import OptionsError

SMALL = {"n_train": 45, "n_val": 2, "n_test": 2, "annotate_every": 3, "rho": 0.8}


def _train(options: dict) -> dict[str, np.ndarray]:
    return SynthLesion3D({**SMALL, **options}).make()


def test_scale_one_is_the_default_draw() -> None:
    a = generate_lesion_3d(split_rng(0, "train", salt=3), 6, 12, 24, 3, np.full(3, 1 / 3), 0.8, 0.03, 3)
    b = generate_lesion_3d(split_rng(0, "train", salt=3), 6, 12, 24, 3, np.full(3, 1 / 3), 0.8, 0.03, 3, 1.0)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_smaller_field_of_view_keeps_the_lesions_size() -> None:
    def voxels(options: dict) -> np.ndarray:
        arrays = _train(options)
        roi, labels = arrays["train_roi"], arrays["train_labels"]
        return np.array([roi[labels == c].reshape((labels == c).sum(), -1).sum(1).mean() for c in range(3)])

    full = voxels({"size": 24, "depth": 12})
    small = voxels({"size": 20, "depth": 12, "lesion_scale": 1.2})
    plain = voxels({"size": 20, "depth": 12})
    assert np.allclose(small, full, rtol=0.15)  # same radius distribution, other draws
    assert (plain < 0.75 * small).all()  # without the scale the lesions shrink with the volume


@pytest.mark.parametrize(("options", "message"), [({"size": 18, "depth": 12, "lesion_scale": 1.2}, "use size ≥ 20"),
                                                   ({"size": 20, "depth": 11, "lesion_scale": 1.2}, "use depth ≥ 12"),
                                                   ({"size": 24, "depth": 12, "lesion_scale": 3.0}, "lesion_scale must be")])
def test_a_lesion_that_cannot_fit_is_one_error(options: dict, message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        SynthLesion3D({**SMALL, **options})
