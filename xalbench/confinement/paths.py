"""What the running interpreter needs to read: its code, the system libraries, a few system files.

:func:`code_paths` — read + execute, whole trees: ``sys.prefix``/``sys.base_prefix`` (and exec
prefixes), ``/usr``, ``/lib``, ``/lib64``, every ``sys.path`` entry inside one of those, the
directories of imported packages (editable installs included) and every shared library
(``*.so``) mapped into the process that lies elsewhere — the file itself, not its directory; other
mapped files (data arrays) are never granted.

A ``sys.path`` entry *outside* the installation (the current directory, a source checkout, an
editable project root) may hold results or data next to the code, so it is granted only by its
importable members (packages with ``__init__.py``, module and extension files, ``__pycache__``,
``*.dist-info``/``*.egg-info``, ``*.pth``), never by its whole tree; its directory listing is
cached (in the import system) before confinement so later imports from it still resolve.

:data:`SYSTEM_READ` — read only: the ``/etc`` files the C library and Python read at run time
(loader cache, name service, time zone), ``/proc/cpuinfo``, ``/proc/meminfo``, the CPU and NUMA
topology under ``/sys`` and the cgroup CPU quota files (scikit-learn's process pool reads them),
``/etc/fonts``; :func:`system_reads` adds matplotlib's cache directory (its font list: pytorch-grad-cam
and MONAI import ``matplotlib.pyplot``, which otherwise rebuilds the font list in every confined
process, runs ``fc-list`` and prints that it cannot save the cache).
:data:`DEVICES` — ``/dev/null`` read-write, ``/dev/zero``, ``/dev/urandom``, ``/dev/random`` read.
"""

from __future__ import annotations

import importlib.machinery
import os
import re
import sys
from collections.abc import Iterable, Iterator

__all__ = ["DEVICES_READ", "DEVICES_WRITE", "SYSTEM_CODE", "SYSTEM_READ", "code_paths", "existing", "importable_members",
           "mapped_files", "matplotlib_cache", "minimal_roots", "prepare_imports", "system_reads"]

SYSTEM_CODE = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
SYSTEM_READ = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
    "/etc/localtime", "/etc/timezone", "/etc/os-release", "/etc/mime.types", "/etc/locale.alias", "/etc/fonts",
    "/proc/cpuinfo", "/proc/meminfo",
    "/sys/devices/system/cpu", "/sys/devices/system/node",
    "/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
)
DEVICES_WRITE = ("/dev/null",)
DEVICES_READ = ("/dev/zero", "/dev/urandom", "/dev/random")

_IMPORTABLE_SUFFIXES = tuple(importlib.machinery.all_suffixes()) + (".pth",)
_META_SUFFIXES = (".dist-info", ".egg-info", ".egg")
_SHARED_LIBRARY = re.compile(r"\.so(\.|$)")


def matplotlib_cache() -> str:
    """matplotlib's cache directory as ``matplotlib.get_cachedir()`` finds it on Linux (``$MPLCONFIGDIR``,
    else ``$XDG_CACHE_HOME/matplotlib``, else ``~/.cache/matplotlib``), without importing matplotlib."""
    if os.environ.get("MPLCONFIGDIR"):
        return os.environ["MPLCONFIGDIR"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "matplotlib")


def system_reads() -> tuple[str, ...]:
    """:data:`SYSTEM_READ` and matplotlib's cache directory (read only; module docstring)."""
    return (*SYSTEM_READ, matplotlib_cache())


def existing(paths: Iterable[str]) -> Iterator[str]:
    """The paths that exist, resolved (symlinks followed), in order, once each."""
    seen: set[str] = set()
    for path in paths:
        if path and os.path.exists(path):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                yield real


def minimal_roots(paths: Iterable[str]) -> tuple[str, ...]:
    """``paths`` without those beneath another one (a rule on a directory covers its whole tree)."""
    kept: list[str] = []
    for path in sorted(set(paths)):
        if not any(path == root or path.startswith(root.rstrip("/") + "/") for root in kept):
            kept.append(path)
    return tuple(kept)


def _beneath(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def importable_members(directory: str) -> list[str]:
    """What the import system may open in ``directory`` (not data or result folders next to it)."""
    out: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return out
    for entry in entries:
        name = entry.name
        if entry.is_dir():
            if (name == "__pycache__" or name.endswith(_META_SUFFIXES)
                    or os.path.isfile(os.path.join(entry.path, "__init__.py"))):
                out.append(entry.path)
        elif name.endswith(_IMPORTABLE_SUFFIXES) or name.endswith(_META_SUFFIXES):
            out.append(entry.path)
    return out


def mapped_files() -> list[str]:
    """Every regular file mapped into this process (shared libraries, extension modules)."""
    files: set[str] = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    path = parts[5].rstrip("\n")
                    if not path.endswith(" (deleted)"):
                        files.add(path)
    except OSError:
        pass
    return sorted(files)


def _package_dirs() -> Iterator[str]:
    """Directories of every imported top-level package (namespace and editable ones included)."""
    for name, module in list(sys.modules.items()):
        if module is None or "." in name:
            continue
        for entry in list(getattr(module, "__path__", None) or ()):
            if isinstance(entry, str):
                yield entry
        mapping = getattr(module, "MAPPING", None)  # setuptools' editable finder (__editable___*_finder)
        if name.startswith("__editable__") and isinstance(mapping, dict):
            yield from (str(v) for v in mapping.values())


def _outside_entries(installed: tuple[str, ...]) -> list[str]:
    """``sys.path`` directories (``""`` = the current one) outside the installation trees."""
    out = []
    for entry in sys.path:
        path = os.path.realpath(entry or os.getcwd())
        if os.path.isdir(path) and not _beneath(path, installed):
            out.append(path)
    return out


def prepare_imports() -> None:
    """Fill the import system's directory caches for every ``sys.path`` entry (an import after
    confinement then needs no listing of an entry whose directory is not granted)."""
    for entry in list(sys.path):
        if isinstance(entry, str):
            importlib.machinery.PathFinder.find_spec("__xalbench_no_such_module__", [entry])


def code_paths() -> tuple[str, ...]:
    """The read + execute set of the running interpreter (see the module docstring), minimal roots."""
    prefixes = tuple(existing([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))
    system = tuple(existing(SYSTEM_CODE))
    installed = minimal_roots(prefixes + system)
    grant: list[str] = list(installed)
    for path in _outside_entries(installed):
        grant.extend(importable_members(path))
    for path in existing(_package_dirs()):
        if not _beneath(path, installed):
            grant.append(path)
    for path in existing(sys.path):
        if os.path.isfile(path):  # a zip archive on the import path
            grant.append(path)
    for path in mapped_files():
        if _SHARED_LIBRARY.search(os.path.basename(path)) and not _beneath(path, installed) and os.path.isfile(path):
            grant.append(path)
    return minimal_roots(existing(grant))
