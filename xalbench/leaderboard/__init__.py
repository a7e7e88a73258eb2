"""The public leaderboard: package a finished run (``submit``), validate a submission
(``check``), re-run a sample and held-out data (``verify``) and render the board (``build``).

Modules: :mod:`.canonical` (canonical JSON + hashes), :mod:`.reasons` (rejection codes),
:mod:`.schema` (strict JSON and the two file schemas), :mod:`.names` (name checks),
:mod:`.paths` (folder confinement), :mod:`.adapter` (everything that reads run directories
or asks the harness/registry), :mod:`.submit`, :mod:`.check`, :mod:`.verify`,
:mod:`.rerun` (the single runner call site), :mod:`.stats`, :mod:`.plots`, :mod:`.build`,
:mod:`.cli`. Nothing here imports torch at import time.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
CANARY_METHOD = "random+ce"

__all__ = ["SCHEMA_VERSION", "CANARY_METHOD"]
