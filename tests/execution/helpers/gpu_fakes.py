"""Stand-ins for cells and the cell task, to check GPU queues without GPUs (test helper)."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class FakeCell:
    key: str
    log_dir: str
    seconds: float = 0.05
    device: str = "cuda"


def fake_task(cell: FakeCell) -> dict[str, Any]:
    """Record which process ran ``cell`` on which device, and when."""
    start = time.time()
    time.sleep(cell.seconds)
    record = {"key": cell.key, "device": cell.device, "pid": os.getpid(), "start": start, "end": time.time()}
    Path(cell.log_dir, f"{cell.key}.json").write_text(json.dumps(record), encoding="utf-8")
    return {"cell": {"key": cell.key}, "status": "ok", "device": cell.device}
