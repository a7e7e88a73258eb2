"""What lifecycle hooks receive: :class:`RunInfo` (a planned run) and :class:`CellInfo` (one cell)."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["CellInfo", "RunInfo"]


@dataclasses.dataclass(frozen=True)
class CellInfo:
    """One cell as a listener sees it (no data, no registry)."""

    key: str
    suite: str
    dataset: str
    method: str
    strategy: str
    loss: str
    seed: int
    out_dir: str
    identity_sha256: str
    identity: dict[str, Any]
    resumed_rounds: int = 0

    @classmethod
    def of(cls, spec: Any, resumed_rounds: int = 0) -> CellInfo:
        return cls(key=spec.key, suite=spec.config.suite, dataset=spec.dataset.display, method=spec.method.display,
                   strategy=spec.method.strategy.name, loss=spec.method.loss.name, seed=spec.seed,
                   out_dir=spec.out_dir, identity_sha256=spec.identity_sha256, identity=spec.identity,
                   resumed_rounds=resumed_rounds)


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """A planned run: the suite, where results go, and every cell with its status."""

    suite: str
    suite_hash: str
    out_dir: str
    cells: tuple[tuple[str, str], ...]  #: (cell key, "finished" | "resume" | "run")
    plugins: dict[str, Any]
    suite_spec: Any = None

    @property
    def counts(self) -> dict[str, int]:
        out = {"finished": 0, "resume": 0, "run": 0}
        for _, status in self.cells:
            out[status] = out.get(status, 0) + 1
        return out
