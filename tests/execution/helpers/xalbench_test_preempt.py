"""A listener that preempts its own SLURM task once, after round 0 of a cell (test helper).

Active only when ``XALBENCH_TEST_PREEMPT_FLAG`` names a file that does not exist yet: it writes
the file, then sends this process ``SIGUSR2`` — what SLURM sends before preempting a task or
before its time limit — so submitit checkpoints and requeues the task mid-cell.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from xalbench import hookimpl


@hookimpl
def round_finished(cell: Any, round: dict[str, Any]) -> None:  # noqa: A002 - the hook's argument name
    flag = os.environ.get("XALBENCH_TEST_PREEMPT_FLAG")
    if flag and round["round"] == 0 and not Path(flag).exists():
        Path(flag).write_text(cell.key, encoding="utf-8")
        os.kill(os.getpid(), signal.SIGUSR2)
