"""The maintainers' reference file (``leaderboard/reference.json``): which suites the board takes,
the xalbench version pinned for each, and each dataset's canary band.

The band is the range the built-in ``random+ce`` canary's AULC (mean over the board's seeds) must
fall in for a submission to be accepted — an MLPerf-style reference-convergence check that catches
changed splits, a different environment or a tampered harness. :func:`canary_bands` sets it from a
maintainer run of the canary on several seeds: mean ± max(floor, width · sd / √n), with ``sd`` the
per-seed standard deviation and ``n`` the number of seeds a submission averages over: the board's
``seeds`` for the suite when the maintainers set them (``--board-seeds``), else the suite's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xalbench.errors import ConfigError
from xalbench.leaderboard import CANARY_METHOD, SCHEMA_VERSION
from xalbench.leaderboard.adapter import Adapter, read_run
from xalbench.leaderboard.submit import cell_record, write_json

if TYPE_CHECKING:
    from xalbench.harness.runtime import Runtime

__all__ = ["canary_bands"]


def canary_bands(run_dir: str | Path, path: Path, *, runtime: Runtime, width: float = 3.0, floor: float = 0.03,
                 key: str = "acc", board_seeds: int | None = None) -> tuple[str, dict[str, list[float]]]:
    """Set each dataset's canary band in the reference file ``path`` from the canary cells of ``run_dir``
    (its suite and metrics those registered in ``runtime``); returns the suite's name and the bands.

    ``board_seeds``: every submission of the suite must run seeds ``0 … board_seeds − 1`` (written as the
    entry's ``seeds``; more than the suite's default when the board wants narrower intervals than the
    default run gives); ``None`` keeps the entry's seeds, or the suite's."""
    if board_seeds is not None and board_seeds < 3:
        raise ConfigError(f"--board-seeds must be at least 3 (a paired test needs 3 seeds), got {board_seeds}")
    adapter = Adapter(runtime)
    run = read_run(run_dir)
    shipped = adapter.shipped_suite(run.suite_name)
    cells = [c for c in run.cells if c.method == CANARY_METHOD and c.status == "ok"]
    if not cells:
        raise ConfigError(f"{run_dir} has no finished {CANARY_METHOD} cell; run the suite with "
                          "--strategies random --losses ce --n-seeds 6")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    entry = data.setdefault("suites", {}).setdefault(shipped.name, {})
    if board_seeds is not None:
        entry["seeds"] = list(range(board_seeds))
    n = max(1, len(entry.get("seeds") or shipped.seeds))
    bands: dict[str, list[float]] = {}
    for dataset in sorted({c.dataset for c in cells}):
        values = [adapter.recompute_aulc(cell_record(c, adapter)["rounds"]).get(key)
                  for c in cells if c.dataset == dataset]
        xs = [v for v in values if v is not None]
        if len(xs) < 2:
            raise ConfigError(f"{dataset}: need the canary on at least 2 seeds to set a band, found {len(xs)}")
        mean = math.fsum(xs) / len(xs)
        sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
        half = max(floor, width * sd / math.sqrt(n))
        bands[dataset] = [round(max(0.0, mean - half), 4), round(min(1.0, mean + half), 4)]
    data.setdefault("schema_version", SCHEMA_VERSION)
    entry["xalbench_version"] = cells[0].xalbench_version
    entry.setdefault("xalbench_source_sha256", None)
    entry["canary"] = {d: {key: band} for d, band in bands.items()}
    write_json(path, data)
    return shipped.name, bands
