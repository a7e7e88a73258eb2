"""Shared fixtures of the confinement tests: what the kernel offers, and a scratch tree."""

from __future__ import annotations

import pytest

from xalbench.confinement import landlock, seccomp


def landlock_abi() -> int:
    abi, _ = landlock.abi_version()
    return abi or 0


def need_landlock(min_abi: int) -> pytest.MarkDecorator:
    abi, why = landlock.abi_version()
    return pytest.mark.skipif((abi or 0) < min_abi, reason=f"needs Landlock ABI >= {min_abi}; here: {why}")


need_seccomp = pytest.mark.skipif(not seccomp.available()[0], reason=f"needs libseccomp: {seccomp.available()[1]}")
