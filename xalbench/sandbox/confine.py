"""The kernel confinement of a strategy's sandbox (``--isolation confined``).

Applied in the sandbox process after the strategy's code is imported and before any data
arrives (:func:`confine_sandbox`, called by :func:`xalbench.sandbox.child.main`):

* **files** (Landlock): read + execute on the interpreter's code only
  (:func:`~xalbench.confinement.paths.code_paths`); read-only on the cell's data directory (the
  copies the harness wrote for this sandbox), on a mapped pool's cache file and on the files the
  strategy declared (:meth:`xalbench.base.Strategy.reads`); read-write on a private scratch
  directory inside the data directory (``TMPDIR``), deleted with the sandbox. No results
  directory, no data root, no home, no ``/proc`` of another process, no site-packages writes;
* **network**: none — its own network namespace where the run may create one, and no
  ``socket()`` at all (seccomp), so neither TCP nor UDP nor a unix socket (the fork server's);
* **processes**: no signals or ptrace outside the sandbox (Landlock scoping, seccomp),
  ``no_new_privs``, resource limits; as root, an unprivileged user id where the code stays
  readable (else recorded why not).

The record of what was applied travels back in :class:`~xalbench.sandbox.messages.Ready` and
into every cell's provenance.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from xalbench.confinement import Limits, Profile, apply

__all__ = ["SCRATCH", "confine_sandbox", "sandbox_profile"]

#: Sub-directory of the sandbox's data directory that it may write (its ``TMPDIR``).
SCRATCH = "scratch"


def sandbox_profile(data_dir: str, reads: tuple[str, ...], memory_limit: int | None) -> Profile:
    """What a strategy's sandbox may reach (see the module docstring)."""
    scratch = Path(data_dir) / SCRATCH
    scratch.mkdir(mode=0o700, exist_ok=True)
    return Profile.for_interpreter(read=(data_dir, *reads), write=(str(scratch),),
                                   limits=Limits(address_space=memory_limit))


def confine_sandbox(data_dir: str, reads: tuple[str, ...], memory_limit: int | None) -> dict[str, Any]:
    """Confine this (single-threaded, freshly forked) sandbox process; return what was applied.

    Raises :class:`~xalbench.errors.ConfinementError` (nothing applied) when the kernel lacks
    Landlock ABI ≥ 4 or a granted path is missing — the cell then fails rather than run unconfined."""
    profile = sandbox_profile(data_dir, reads, memory_limit)
    os.environ["TMPDIR"] = profile.write[0]
    tempfile.tempdir = None  # the fork server cached /tmp: the next gettempdir() reads TMPDIR
    os.environ.setdefault("LOKY_MAX_CPU_COUNT", "1")  # loky would run `lscpu`, which needs all of /proc
    return apply(profile, required=True).as_dict()
