"""The ``submitit`` executor offline: the sbatch script, array tasks run as SLURM would, requeue, debug jobs."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.execution.conftest import comparable, retarget
from xalbench.errors import OptionsError

pytestmark = pytest.mark.cost(16)  # seconds on 2 cores: files start longest first (tests/conftest.py)

pytest.importorskip("submitit", reason="install xalbench[slurm] to test the submitit executor")

from submitit.core import submission  # noqa: E402
from submitit.slurm.test_slurm import mocked_slurm  # noqa: E402

from xalbench.execution.submitit import SubmititExecutor  # noqa: E402

SLURM = {"partition": "gpu", "time": 30, "gpus_per_node": 1, "cpus_per_task": 2, "mem": "16G",
         "account": "lab", "array_parallelism": 1, "setup": "module load cuda; echo ready"}


@pytest.fixture
def keep_signals():
    """submitit installs handlers for SIGUSR2/SIGTERM/SIGCONT when it runs a job in this process."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR2, signal.SIGTERM, signal.SIGCONT)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def _script(folder: Path) -> str:
    [path] = list(folder.glob("*/*_submission.sh"))  # one script: the job array's
    return path.read_text()


def test_sbatch_script_is_one_array_with_the_options(planned, tmp_path) -> None:
    cells = retarget(planned.cells, tmp_path)
    with mocked_slurm():
        pairs = SubmititExecutor(SLURM).submit(cells)
    assert [c.key for _, c in pairs] == [c.key for c in cells]
    script = _script(tmp_path / "submitit")
    lines = [ln.strip() for ln in script.splitlines() if ln.startswith("#SBATCH")]
    for expected in ("--array=0-1%1", "--gpus-per-node=1", "--partition=gpu", "--time=30", "--signal=USR2@90",
                     "--mem=16G", "--account=lab", "--cpus-per-task=2", "--open-mode=append"):
        assert f"#SBATCH {expected}" in lines, (expected, lines)
    assert "module load cuda\necho ready" in script
    assert str(tmp_path / "submitit") in script  # logs next to the results by default


def test_gpus_default_to_one_per_task_with_cuda_cells(planned, tmp_path) -> None:

    cells = [c.evolve(device="cuda") for c in retarget(planned.cells, tmp_path)]
    assert SubmititExecutor().parameters(cells)["gpus_per_node"] == 1
    assert SubmititExecutor().parameters(planned.cells)["gpus_per_node"] == 0


def test_misspelled_or_bad_slurm_options_fail_in_one_line() -> None:
    with pytest.raises(OptionsError, match="did you mean 'partition'") as err:
        SubmititExecutor({"partiton": "gpu"})
    assert "\n" not in str(err.value)
    with pytest.raises(OptionsError, match="16 GB"):
        SubmititExecutor({"mem": "16 GB"})
    with pytest.raises(OptionsError, match="minutes"):
        SubmititExecutor({"time": 0})


def test_array_tasks_run_as_slurm_runs_them_give_the_local_results(planned, reference, tmp_path, keep_signals) -> None:
    cells = retarget(planned.cells, tmp_path)
    with mocked_slurm() as mock:
        executor = SubmititExecutor({**SLURM, "poll_seconds": 0.01})
        pairs = executor.submit(cells)
        for job, _ in pairs:
            with mock.job_context(job.job_id):
                submission.process_job(job.paths.folder)
        array_id = pairs[0][0].job_id.split("_")[0]
        mock.set_job_state(array_id, "COMPLETED", len(pairs))
        results = list(executor.collect(pairs))
    assert comparable(results) == reference
    assert all(c.result_path.exists() for c in cells)


def test_preempted_task_is_requeued_and_resumes_from_its_checkpoint(planned, reference, tmp_path, keep_signals,
                                                                    monkeypatch) -> None:
    """SIGUSR2 after round 0 (what SLURM sends before preemption): submitit checkpoints the task,
    requeues it and exits; the requeued task resumes at round 1 and ends with the uninterrupted bits."""
    from unittest.mock import patch

    from xalbench.results import read_verified

    cell = retarget(planned.cells, tmp_path)[0]
    flag = tmp_path / "preempted"
    monkeypatch.setenv("XALBENCH_TEST_PREEMPT_FLAG", str(flag))
    with mocked_slurm() as mock, patch("submitit.slurm.slurm.SlurmJobEnvironment._requeue") as requeue:
        executor = SubmititExecutor({"time": 30, "poll_seconds": 0.01})
        [(job, _)] = executor.submit([cell])
        with mock.job_context(job.job_id), pytest.raises(SystemExit):
            submission.process_job(job.paths.folder)
        assert flag.read_text() == cell.key and requeue.call_count == 1
        assert not cell.result_path.exists() and cell.partial_path.exists()
        assert not cell.lock_path.exists()  # the dying task released its claim
        first_round = read_verified(cell.partial_path)["rounds"]
        assert len(first_round) == 1
        with mock.job_context(job.job_id):
            submission.process_job(job.paths.folder)  # the requeued task
        mock.set_job_state(job.job_id, "COMPLETED")
        [result] = list(executor.collect([(job, cell)]))
    assert comparable([result])[cell.key] == reference[cell.key]
    assert result["rounds"][0]["timings"] == first_round[0]["timings"]  # resumed, not redone


def test_debug_cluster_runs_the_cells_in_this_process(planned, reference, tmp_path, keep_signals) -> None:
    import dataclasses

    from xalbench.runner import run_plan

    plan = dataclasses.replace(planned, cells=retarget(planned.cells, tmp_path))
    executor = SubmititExecutor({"cluster": "debug", "poll_seconds": 0.01})
    assert comparable(run_plan(plan, workers=2, quiet=True, executor=executor)) == reference
    assert (Path(tmp_path) / "submitit").is_dir()


@pytest.mark.slow
def test_local_cluster_runs_each_cell_in_its_own_subprocess(planned, reference, tmp_path) -> None:
    import dataclasses

    from xalbench.runner import run_plan

    plan = dataclasses.replace(planned, cells=retarget(planned.cells, tmp_path))
    executor = SubmititExecutor({"cluster": "local", "poll_seconds": 0.5})
    assert comparable(run_plan(plan, workers=2, quiet=True, executor=executor)) == reference
    logs = sorted((tmp_path / "submitit").glob("*/*_log.out"))
    assert len(logs) == 2  # one job (process) per cell
