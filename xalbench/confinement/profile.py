"""What a confined process may reach: :class:`Profile` (paths by access kind, limits, switches)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

from xalbench.confinement import landlock
from xalbench.confinement.limits import Limits
from xalbench.confinement.paths import DEVICES_READ, DEVICES_WRITE, code_paths, existing, system_reads
from xalbench.errors import ConfinementError

__all__ = ["Profile"]


def _paths(values: Iterable[str | os.PathLike[str]], field: str) -> tuple[str, ...]:
    out = []
    for value in values:
        text = os.fspath(value)
        if not os.path.isabs(text):
            raise ConfinementError(f"Profile.{field}: {text!r} is not an absolute path; pass absolute paths")
        out.append(text)
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Profile:
    """Everything a confined process may reach; nothing else on the filesystem is reachable.

    * ``code`` — read + execute (the interpreter, the import path, shared libraries:
      :func:`~xalbench.confinement.paths.code_paths`);
    * ``read`` — read-only data the caller grants (a mapped pool file, a plugin's declared weight
      file); each must exist;
    * ``write`` — read-write, whole trees (a private scratch directory); each must exist;
    * ``system`` / ``devices_read`` / ``devices_write`` — the few system files and devices the C
      library, Python, torch and scikit-learn read (or write: ``/dev/null``) at run time; missing
      ones are skipped;
    * ``proc_self`` — read the process's own ``/proc/<pid>`` (never ``/proc`` as a whole);
    * ``limits`` — resource limits; ``network`` — allow network (default: none at all);
      ``seccomp`` — install the system call filter; ``drop_uid`` — as root, drop to an
      unprivileged id where the code stays readable.
    """

    code: tuple[str, ...]
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    system: tuple[str, ...] = dataclasses.field(default_factory=system_reads)
    devices_read: tuple[str, ...] = DEVICES_READ
    devices_write: tuple[str, ...] = DEVICES_WRITE
    proc_self: bool = True
    limits: Limits = Limits()
    network: bool = False
    seccomp: bool = True
    drop_uid: bool = True
    _static: tuple[landlock.Rule, ...] = dataclasses.field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        for name in ("code", "read", "write", "system", "devices_read", "devices_write"):
            object.__setattr__(self, name, _paths(getattr(self, name), name))
        fs = landlock.FS
        groups = ((self.code, landlock.READ_EXECUTE), (self.system, landlock.READ), (self.devices_read, fs.READ_FILE),
                  (self.devices_write, fs.READ_FILE | fs.WRITE_FILE | fs.TRUNCATE))
        # the defaults are resolved once (missing ones skipped); declared paths at each use
        object.__setattr__(self, "_static", tuple(landlock.Rule(path, rights) for paths, rights in groups
                                                  for path in existing(paths)))

    @classmethod
    def for_interpreter(cls, *, read: Iterable[str | os.PathLike[str]] = (),
                        write: Iterable[str | os.PathLike[str]] = (), **options: object) -> Profile:
        """The running interpreter's code set (:func:`code_paths`) plus ``read`` and ``write``."""
        return cls(code=code_paths(), read=tuple(os.fspath(p) for p in read),
                   write=tuple(os.fspath(p) for p in write), **options)  # type: ignore[arg-type]

    def missing(self) -> list[str]:
        """Declared ``read``/``write`` paths that do not exist (an error: they were asked for)."""
        return [p for p in self.read + self.write if not os.path.exists(p)]

    def readable(self) -> tuple[str, ...]:
        """Every existing path granted for reading (code, data, system, devices), resolved."""
        return tuple(rule.path for rule in self._static) + tuple(existing(self.read))

    def rules(self) -> list[landlock.Rule]:
        """The Landlock rules of this profile: the defaults as resolved when it was made, the
        declared ``read``/``write`` paths and ``/proc/self`` resolved now (in the calling process)."""
        declared = [(self.read, landlock.READ), (self.write, landlock.READ_WRITE)]
        if self.proc_self:
            declared.append((("/proc/self",), landlock.READ))
        return list(self._static) + [landlock.Rule(path, rights) for paths, rights in declared
                                     for path in existing(paths)]
