"""The ``ray`` executor (optional extra): a local Ray instance gives bitwise the results of ``local``."""

from __future__ import annotations

import pytest

from tests.execution.conftest import run_with

ray = pytest.importorskip("ray", reason="Ray is not installed (optional extra xalbench[ray])")


@pytest.mark.slow
def test_local_ray_equals_local(planned, reference, tmp_path) -> None:
    from xalbench.execution.ray import RayExecutor

    assert run_with(RayExecutor({"num_cpus": 2}), planned, tmp_path) == reference
    assert not ray.is_initialized()  # the run started Ray, so it shut it down
