"""``--executor-option KEY=VALUE``: typed by the executor's options, misspellings rejected in one line."""

from __future__ import annotations

import pytest

from xalbench.cli import main
from xalbench.errors import ConfigError
from xalbench.execution.common import parse_cli_options
from xalbench.execution.dask import DaskExecutor
from xalbench.execution.submitit import SubmititExecutor


def test_values_are_typed_by_the_options_fields() -> None:
    opts = parse_cli_options(DaskExecutor, ["n_workers=2", "processes=false", "memory_limit=4GiB",
                                            "scheduler=tcp://10.1.2.3:8786"])
    assert opts == {"n_workers": 2, "processes": False, "memory_limit": "4GiB", "scheduler": "tcp://10.1.2.3:8786"}
    assert DaskExecutor(opts).options.n_workers == 2
    slurm = parse_cli_options(SubmititExecutor, ["partition=123", "time=90", "poll_seconds=2.5"])
    assert slurm == {"partition": "123", "time": 90, "poll_seconds": 2.5}  # a numeric partition name stays text


@pytest.mark.parametrize("pairs, match", [
    (["n_workers"], "KEY=VALUE"),
    (["n_workers=two"], "integer"),
    (["processes=maybe"], "true or false"),
    (["n_workers=1", "n_workers=2"], "twice"),
])
def test_malformed_pairs_are_config_errors(pairs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_cli_options(DaskExecutor, pairs)


def test_cli_rejects_a_misspelled_slurm_option_before_planning(write_suite, capsys) -> None:
    code = main(["run", "--suite", str(write_suite()), "--executor", "submitit",
                 "--executor-option", "partiton=gpu", "--dry-run"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "did you mean 'partition'" in err[0] and "valid options are" in err[0]


def test_cli_passes_options_to_the_executor(write_suite, tmp_path, capsys) -> None:
    code = main(["run", "--suite", str(write_suite()), "--executor", "dask", "--executor-option", "n_workers=1",
                 "--executor-option", "processes=false", "--out", str(tmp_path / "out"), "--dry-run"])
    assert code == 0, capsys.readouterr().err
