"""Progress of a run: a round-level bar in a terminal, one line per finished cell otherwise.

Cells may run in other processes or on other machines, so rounds are counted from what every
cell leaves on disk (its checkpoint), read by a background thread about once a second —
the same for every executor.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["Progress", "format_seconds"]


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Tracks ``cells`` (CellSpecs to run or resume) of which ``rounds_each`` rounds each."""

    def __init__(self, cells: list[Any], rounds_each: dict[str, int], *, quiet: bool = False,
                 stream: TextIO | None = None, poll_seconds: float = 1.0) -> None:
        self.cells = {c.key: c for c in cells}
        self.rounds_each = rounds_each
        self.total_rounds = sum(rounds_each.values())
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.poll_seconds = poll_seconds
        self.start = time.monotonic()
        self.finished: dict[str, float] = {}
        self._rounds_seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Any = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Progress:
        if self.quiet or not self.cells:
            return self
        if self.tty:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total_rounds, unit="round", file=self.stream, dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} rounds [{elapsed}<{remaining}] {postfix}")
        self._thread = threading.Thread(target=self._poll, name="xalbench-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._bar is not None:
            self._bar.close()

    # ------------------------------------------------------------------ reading the cells' files
    def _rounds_on_disk(self, cell: Any) -> int:
        path: Path = cell.partial_path
        try:
            return len(json.loads(path.read_text(encoding="utf-8")).get("rounds", []))
        except (OSError, ValueError):
            return self._rounds_seen.get(cell.key, 0)

    def _running(self) -> list[str]:
        return [key for key, c in self.cells.items() if key not in self.finished and c.partial_path.exists()]

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            for key, cell in self.cells.items():
                if key not in self.finished:
                    self._rounds_seen[key] = self._rounds_on_disk(cell)
            self._refresh()

    def _done_rounds(self) -> int:
        return sum(self.rounds_each[k] if k in self.finished else min(self._rounds_seen.get(k, 0), self.rounds_each[k])
                   for k in self.cells)

    def _refresh(self) -> None:
        if self._bar is None:
            return
        self._bar.n = self._done_rounds()
        running = self._running()
        shown = ", ".join(running[:2]) + (f" +{len(running) - 2}" if len(running) > 2 else "")
        self._bar.set_postfix_str(f"{len(self.finished)}/{len(self.cells)} cells; running: {shown or '-'}",
                                  refresh=False)
        self._bar.refresh()

    def eta(self) -> float | None:
        """Seconds left, from the pace of finished cells (``None`` before the first one)."""
        done = len(self.finished)
        if not done:
            return None
        elapsed = time.monotonic() - self.start
        return elapsed / done * (len(self.cells) - done)

    # ------------------------------------------------------------------ events
    def cell_done(self, result: dict[str, Any]) -> None:
        key = result["cell"]["key"]
        if key not in self.cells or key in self.finished:
            return
        self.finished[key] = time.monotonic()
        if self.quiet:
            return
        if self._bar is not None:
            self._refresh()
            return
        timings = [r.get("timings", {}) for r in result.get("rounds", [])]
        took = sum(sum(v for v in t.values() if isinstance(v, (int, float))) for t in timings)
        eta = self.eta()
        line = (f"[{len(self.finished)}/{len(self.cells)}] {key} {result['status']} {took:.1f} s "
                f"(elapsed {format_seconds(time.monotonic() - self.start)}, "
                f"ETA {format_seconds(eta) if eta is not None else '?'})")
        print(line, file=self.stream, flush=True)
