"""What a strategy *tried* to reach from its sandbox (the conformance kit's view of escape attempts).

Confinement makes an escape fail; it does not say that one was tried. For the kit
(``xalbench check-plugin``), the sandbox also installs a Python audit hook
(:func:`sys.addaudithook`, PEP 578) while the strategy answers, and records the attempts a
strategy has no business making: opening a path outside what the sandbox grants (another
process's ``/proc`` entry, a results directory, the data root, site-packages for writing),
listing ``/proc`` or a folder outside the sandbox, creating a socket, signalling another process, and calling ``ptrace``,
``process_vm_readv`` or raw ``syscall`` through ctypes. The kit names each one and fails the
strategy. The hook sees what goes through Python's own audited calls; native code that makes
system calls directly is not seen (it still fails under the kernel's confinement).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["AttemptLog"]

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_NATIVE = (b"ptrace", b"process_vm_readv", b"process_vm_writev", b"syscall")
_SYSTEM_PREFIXES = ("/proc/self/", "/proc/thread-self/", "/dev/", "/sys/devices/system/", "/sys/fs/cgroup/",
                    "/etc/")


class AttemptLog:
    """Records escape attempts while :attr:`active` (one hook per process; it cannot be removed)."""

    def __init__(self, readable: Sequence[str], writable: Sequence[str]) -> None:
        self.readable = tuple(os.path.realpath(p) for p in readable)
        self.writable = tuple(os.path.realpath(p) for p in writable)
        self.attempts: list[str] = []
        self.active = False
        sys.addaudithook(self._hook)

    def take(self) -> tuple[str, ...]:
        """The attempts recorded since the last call (each once, in order)."""
        out = tuple(dict.fromkeys(self.attempts))
        self.attempts.clear()
        return out

    @staticmethod
    def _beneath(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    def _path(self, target: Any) -> str | None:
        if isinstance(target, int):
            return None
        try:
            text = os.fsdecode(target)
        except TypeError:
            return None
        return os.path.realpath(text) if os.path.isabs(text) else os.path.realpath(os.path.join(os.getcwd(), text))

    def _note(self, what: str) -> None:
        if len(self.attempts) < 100:
            self.attempts.append(what)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        self.active = False  # the checks below must not audit themselves
        try:
            self._check(event, args)
        finally:
            self.active = True

    @staticmethod
    def _own_process(path: str) -> bool:
        """``/proc/<pid>/…`` of this process or one it started (its own process group: the sandbox)."""
        parts = path.split("/")
        if len(parts) < 3 or not parts[2].isdigit():
            return False
        try:
            return os.getpgid(int(parts[2])) == os.getpgid(0)
        except OSError:
            return False

    def _import_path(self, path: str) -> bool:
        """A directory of the import path (the import system lists and stats them)."""
        return any(os.path.realpath(e or os.getcwd()) == path for e in list(sys.path) if isinstance(e, str))

    def _check(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and args:
            path = self._path(args[0])
            if path is None:
                return
            mode, flags = (args[1] if len(args) > 1 else "r") or "r", args[2] if len(args) > 2 else 0
            writes = any(c in str(mode) for c in "wax+") or bool(int(flags or 0) & _WRITE_FLAGS)
            if path.startswith("/proc/"):
                own = path.startswith(("/proc/self", f"/proc/{os.getpid()}/", "/proc/thread-self", "/proc/cpuinfo",
                                       "/proc/meminfo")) or self._own_process(path)
                if not own:
                    self._note(f"read {path} (another process)")
            elif writes:
                if not self._beneath(path, self.writable) and path != "/dev/null":
                    self._note(f"write {path}")
            elif os.path.lexists(path) and not self._beneath(path, self.readable + self.writable) \
                    and not path.startswith(_SYSTEM_PREFIXES) and not self._import_path(path):
                self._note(f"read {path}")
        elif event in ("os.listdir", "os.scandir", "glob.glob") and args and args[0] is not None:
            path = self._path(args[0])
            if path == "/proc":
                self._note("list /proc (other processes)")
            elif path is not None and os.path.lexists(path.split("*")[0].rstrip("/") or "/") \
                    and not self._beneath(path, self.readable + self.writable) \
                    and not path.startswith(_SYSTEM_PREFIXES) and not self._import_path(path):
                self._note(f"list {path}")
        elif event in ("socket.__new__", "socket.connect", "socket.sendto", "socket.bind"):
            detail = args[1:] if event != "socket.__new__" else args[1:3]
            self._note(f"{event.split('.')[1].strip('_') or 'socket'} {detail!r}")
        elif event == "os.kill" and args and args[0] not in (0, os.getpid()):
            self._note(f"signal {args[1]} to pid {args[0]}")
        elif event == "ctypes.dlsym" and len(args) > 1:
            name = args[1].encode() if isinstance(args[1], str) else args[1]
            if isinstance(name, bytes) and name in _NATIVE:
                self._note(f"native call {name.decode()}")
        elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn"):
            self._note(f"start a process ({event})")
