"""GPU selection without GPUs: CUDA_VISIBLE_DEVICES parsing, one running cell per GPU, provenance."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from xalbench.errors import ConfigError
from xalbench.execution.gpus import (
    GpuQueues,
    cuda_settings,
    parse_visible_devices,
    prepare_device,
    visible_gpus,
)


@pytest.mark.parametrize("value, expected", [
    (None, None),
    ("", []),
    ("-1", []),
    ("0,2", ["0", "2"]),
    (" 1 , 3 ", ["1", "3"]),
    ("1,-1,2", ["1"]),
    ("1,,2", ["1"]),
    ("1gpu,2", ["1", "2"]),
    ("0,1,0", []),
    ("GPU-aa11,GPU-bb22", ["GPU-aa11", "GPU-bb22"]),
    ("GPU-aa11,3", ["GPU-aa11"]),
    ("MIG-x1,MIG-x1", []),
])
def test_visible_devices_are_read_as_cuda_reads_them(value, expected) -> None:
    assert parse_visible_devices(value) == expected


def test_visible_gpus_combines_the_variable_with_the_device_count() -> None:
    assert visible_gpus({}, lambda: 3) == ["0", "1", "2"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "4,6"}, lambda: 2) == ["4", "6"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "4,6,9"}, lambda: 2) == ["4", "6"]  # 9 does not exist
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "4,6"}, lambda: 0) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, lambda: 4) == []


def _simulate(queues: GpuQueues, seed: int) -> list[tuple[str, str]]:
    """Finish running cells in a random order; check the invariant after every step."""
    rng = random.Random(seed)
    assigned = []
    running = dict(queues.start())
    assigned += [(d, c.key) for d, c in running.items()]
    while running:
        assert len(set(running)) == len(running)
        device = rng.choice(sorted(running))
        del running[device]
        following = queues.next(device)
        if following is not None:
            assert following[0] == device and following[0] not in running
            running[following[0]] = following[1]
            assigned.append((following[0], following[1].key))
    return assigned


@pytest.mark.parametrize("n_cells, n_gpus, workers", [(7, 3, 0), (2, 4, 0), (5, 4, 2), (1, 1, 0)])
def test_queues_never_share_a_gpu_and_run_every_cell_once(n_cells, n_gpus, workers, tmp_path) -> None:
    from gpu_fakes import FakeCell

    cells = [FakeCell(f"c{i}", str(tmp_path)) for i in range(n_cells)]
    queues = GpuQueues.for_run(cells, workers, environ={}, device_count=lambda: n_gpus)
    expected = min(n_gpus, n_cells, workers or n_gpus)
    assert queues.devices == [f"cuda:{i}" for i in range(expected)]
    for seed in range(5):
        queues = GpuQueues.for_run(cells, workers, environ={}, device_count=lambda: n_gpus)
        assigned = _simulate(queues, seed)
        assert sorted(k for _, k in assigned) == sorted(c.key for c in cells)
        assert {d for d, _ in assigned} <= set(queues.devices)


@pytest.fixture(autouse=True)
def _helpers(helpers_on_path):
    return helpers_on_path


def test_no_visible_gpu_is_a_one_line_config_error(tmp_path) -> None:
    from gpu_fakes import FakeCell

    with pytest.raises(ConfigError, match="no GPU is visible"):
        GpuQueues.for_run([FakeCell("a", str(tmp_path))], 0, environ={"CUDA_VISIBLE_DEVICES": "-1"},
                          device_count=lambda: 2)


def test_local_gpu_queues_run_one_cell_at_a_time_per_gpu_in_its_own_process(tmp_path) -> None:
    from gpu_fakes import FakeCell, fake_task

    from xalbench.execution.local import run_gpu_queues

    cells = [FakeCell(f"c{i}", str(tmp_path), seconds=0.3) for i in range(6)]
    queues = GpuQueues.for_run(cells, 0, environ={}, device_count=lambda: 2)
    results = list(run_gpu_queues(queues, task=fake_task))
    assert sorted(r["cell"]["key"] for r in results) == [c.key for c in cells]
    records = [json.loads(p.read_text()) for p in Path(tmp_path).glob("*.json")]
    by_device: dict[str, list[dict]] = {}
    for rec in records:
        by_device.setdefault(rec["device"], []).append(rec)
    assert set(by_device) == {"cuda:0", "cuda:1"}
    for recs in by_device.values():
        recs.sort(key=lambda r: r["start"])
        assert len({r["pid"] for r in recs}) == 1  # one worker process per GPU
        assert all(a["end"] <= b["start"] for a, b in zip(recs, recs[1:], strict=False))  # never two at once
    assert len({recs[0]["pid"] for recs in by_device.values()}) == 2


def test_prepare_device_sets_the_cublas_workspace_before_any_cuda_work(monkeypatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    prepare_device("cpu")
    import os

    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    prepare_device("cuda")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_cuda_settings_name_the_physical_gpu_and_determinism() -> None:
    assert cuda_settings("cpu") == {}
    rec = cuda_settings("cuda:1", environ={"CUDA_VISIBLE_DEVICES": "4,6", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"})
    assert rec["physical_gpu"] == "6" and rec["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert {"deterministic_algorithms", "cudnn_deterministic", "cudnn_benchmark"} <= set(rec)
    assert cuda_settings("cuda", environ={})["physical_gpu"] == "0"


def test_local_executor_refuses_cuda_cells_without_a_gpu(planned, monkeypatch) -> None:

    from xalbench.execution.local import LocalExecutor

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    cells = [c.evolve(device="cuda") for c in planned.cells]
    with pytest.raises(ConfigError, match="no GPU is visible"):
        list(LocalExecutor().run(cells, workers=2, runtime=None))
