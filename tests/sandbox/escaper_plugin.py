"""Source of the ``xalbench-escapers`` fixture distribution (installed by ``tests/sandbox/escapers.py`` as
the top-level module ``xalbench_escapers``): one strategy per way a plugin has reached past its process
from inside ``query`` — other processes' ``/proc`` entries and memory, other cells' files, the data
root, the interpreter's site-packages, the network, signals, ptrace — and one loss that tries the same
from the cell's own process.

Each escaper picks ``ctx.unlabelled[:k]`` (what ``honest-first`` picks) when its escape fails and the
*last* k when it succeeds, so its picks say what it reached; the loss logs one training term per escape
(1.0 = it worked). Targets (the results directory, a folder outside the sandbox, the data root, the
ports and socket the test listens on) come from ``$XALBENCH_ESCAPE_PLAN`` (JSON), which the test sets
for the harness; a secret-looking variable ``XALBENCH_TEST_TOKEN`` is in the harness's environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import socket
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

import xalbench
from xalbench.losses.common import classification_loss

TOKEN_NAME = "XALBENCH_TEST_TOKEN"


def plan() -> dict[str, Any]:
    return json.loads(os.environ.get("XALBENCH_ESCAPE_PLAN", "{}"))


def ancestors() -> list[int]:
    """The parent (always) and whatever further ancestors ``/proc/<pid>/stat`` reveals."""
    out, pid = [], os.getppid()
    while pid > 1 and pid not in out:
        out.append(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def read_environ() -> bool:
    return any(TOKEN_NAME.encode() in _read(f"/proc/{pid}/environ") for pid in ancestors())


def read_cmdline() -> bool:
    return any(b"--out" in _read(f"/proc/{pid}/cmdline") for pid in ancestors())


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def read_results() -> bool:
    return any(_read(p) for p in glob.glob(os.path.join(plan()["results"], "cells", "*.json")))


def tamper_results() -> bool:
    from xalbench.results import seal

    hit = False
    for path in glob.glob(os.path.join(plan()["results"], "cells", "*random*.json")):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(Path(path).read_text())
            for r in data.get("rounds", []):
                r["metrics"]["accuracy"] = 0.05
            Path(path).write_text(json.dumps(seal({k: v for k, v in data.items() if k != "content_sha256"})))
            hit = True
    return hit


def _write_probe(folder: str) -> bool:
    path = Path(folder) / f"xalbench-escape-probe-{os.getpid()}.txt"
    try:
        path.write_text("escaped")
    except OSError:
        return False
    path.unlink()
    return True


def write_outside() -> bool:
    return _write_probe(plan()["outside"])


def write_site_packages() -> bool:
    return _write_probe(sysconfig.get_paths()["purelib"]) or _write_probe(os.path.dirname(xalbench.__file__))


def read_memory() -> bool:
    for pid in ancestors():
        try:
            maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
            start = int(next(ln for ln in maps if "rw-p" in ln).split("-")[0], 16)
            with open(f"/proc/{pid}/mem", "rb") as mem:
                mem.seek(start)
                if mem.read(64):
                    return True
        except (OSError, StopIteration, ValueError):
            continue
    return False


def read_data_root() -> bool:
    return any(_read(p)[:16] for p in glob.glob(os.path.join(plan()["data_root"], "synthetic", "*")))


def tcp_connect() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", int(plan()["tcp"])), timeout=2):
            return True
    except OSError:
        return False


def udp_send() -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"escaped", ("127.0.0.1", int(plan()["udp"])))
        return True
    except OSError:
        return False


def unix_connect() -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(plan()["unix"])
        return True
    except OSError:
        return False


def signal_parent() -> bool:
    try:
        os.kill(os.getppid(), 0)
        return True
    except OSError:
        return False


def ptrace_parent() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    seize, detach = 0x4206, 17
    pid = os.getppid()
    if libc.ptrace(seize, pid, None, None) != 0:
        return False
    libc.ptrace(detach, pid, None, None)
    return True


ESCAPES = {
    "escape-environ": read_environ, "escape-cmdline": read_cmdline, "escape-results-read": read_results,
    "escape-results-tamper": tamper_results, "escape-write-outside": write_outside,
    "escape-site-packages": write_site_packages, "escape-proc-mem": read_memory, "escape-data-root": read_data_root,
    "escape-tcp": tcp_connect, "escape-udp": udp_send, "escape-unix": unix_connect, "escape-signal": signal_parent,
    "escape-ptrace": ptrace_parent,
}


def attempt(name: str) -> bool:
    try:
        return bool(ESCAPES[name]())
    except Exception:  # noqa: BLE001 - a failed escape is a failed escape
        return False


class _Escaper(xalbench.Strategy):
    summary: ClassVar[str] = "fixture strategy of the confinement tests"
    supports_multilabel: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        plan: str = ""  #: the escape plan as JSON (else ``$XALBENCH_ESCAPE_PLAN``)

    def query(self, ctx: Any, k: int) -> np.ndarray:
        if self.options.plan:
            os.environ["XALBENCH_ESCAPE_PLAN"] = self.options.plan
        n = min(k, len(ctx.unlabelled))
        if attempt(self.name):
            return ctx.unlabelled[len(ctx.unlabelled) - n:]
        return ctx.unlabelled[:n]


def _escaper(name: str) -> type:
    return type(name.replace("-", "_").title().replace("_", ""), (_Escaper,), {"name": name, "__module__": __name__})


ESCAPERS = [_escaper(name) for name in ESCAPES]
for _cls in ESCAPERS:
    globals()[_cls.__name__] = _cls


class HonestFirst(_Escaper):
    name: ClassVar[str] = "honest-first"

    def query(self, ctx: Any, k: int) -> np.ndarray:
        return ctx.unlabelled[: min(k, len(ctx.unlabelled))]


#: What the escaping loss tries from the cell's process (each logged as a training term).
LOSS_ESCAPES = {
    "seal_key": lambda: bool(_read(os.path.join(plan()["results"], ".xalbench", "seal.key"))),
    "results_read": read_results, "results_tamper": tamper_results, "write_outside": write_outside,
    "site_packages": write_site_packages, "tcp": tcp_connect, "udp": udp_send, "signal": signal_parent,
}


class EscapeLoss(xalbench.Loss):
    """Cross-entropy (so training is that of ``ce``) that tries every escape once per round."""

    name: ClassVar[str] = "escape-loss"
    summary: ClassVar[str] = "fixture loss of the confinement tests"
    supports_multilabel: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        pass

    def __call__(self, model: Any, batch: Any) -> Any:
        total = classification_loss(model.head(model.features(batch.images)), batch)
        if not getattr(self, "_tried", False):
            self._tried = True
            self._escaped = {f"escaped_{name}": float(_safe(fn)) for name, fn in LOSS_ESCAPES.items()}
        return xalbench.LossOutput(total, {"ce": float(total.detach()), **self._escaped})

    def on_round_start(self, info: Any) -> None:
        self._tried = False


def _safe(fn: Any) -> bool:
    try:
        return bool(fn())
    except Exception:  # noqa: BLE001
        return False


@xalbench.hookimpl
def register_strategies(register: Any) -> None:
    for cls in (*ESCAPERS, HonestFirst):
        register(cls)


@xalbench.hookimpl
def register_losses(register: Any) -> None:
    register(EscapeLoss)


__all__ = ["ESCAPERS", "ESCAPES", "EscapeLoss", "HonestFirst", "LOSS_ESCAPES", "attempt", "torch"]
