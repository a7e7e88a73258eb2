"""Cost of OS confinement in a freshly forked child, as a ratio to the fork itself.

Setting: this process has imported torch (as a sandbox's fork server has); the profile (the
interpreter's code set plus a scratch directory) and the seccomp program are computed once here,
before forking, as a fork server would. Alternating, :data:`REPEATS` times:

* ``fork``   — ``os.fork()``, the child exits at once, the parent waits for it;
* ``apply``  — the same with ``confinement.apply(profile)`` in the child first; the child also
  reports how long ``apply`` itself took (``perf_counter`` around it, sent through a pipe).

Printed (``-s``): medians, ``apply / fork`` (the call alone, measured in the child) and
``fork + apply / fork`` (the whole cycle). No timed assertion; skipped without Landlock.

Run: ``python -m pytest benchmarks/test_bench_confinement.py -s``.
"""

from __future__ import annotations

import os
import statistics
import struct
import time

import pytest
import table
import torch  # noqa: F401 - the fork server this stands for has torch imported

from xalbench.confinement import Profile, apply, landlock, seccomp

REPEATS = 21


def _cycle(profile: Profile | None) -> tuple[float, float]:
    """(parent's fork-to-reaped time, child's apply() time; 0 without a profile)."""
    read, write = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        spent = 0.0
        if profile is not None:
            t = time.perf_counter()
            apply(profile)
            spent = time.perf_counter() - t
        os.write(write, struct.pack("d", spent))
        os._exit(0)
    os.close(write)
    spent = struct.unpack("d", os.read(read, 8))[0]
    os.close(read)
    os.waitpid(pid, 0)
    return time.perf_counter() - t0, spent


@pytest.mark.skipif(landlock.abi_version()[0] is None, reason="no Landlock on this kernel")
def test_bench_apply_vs_fork(benchmark, tmp_path) -> None:
    profile = Profile.for_interpreter(write=[tmp_path])
    if seccomp.available()[0]:
        seccomp.compiled()
    fork, cycle, inside = [], [], []
    for _ in range(REPEATS):
        fork.append(_cycle(None)[0])
        total, spent = _cycle(profile)
        cycle.append(total)
        inside.append(spent)
    benchmark.pedantic(lambda: _cycle(profile), rounds=3, iterations=1)
    f, c, a = statistics.median(fork), statistics.median(cycle), statistics.median(inside)
    benchmark.extra_info["apply_vs_fork"] = a / f
    benchmark.extra_info["fork_apply_vs_fork"] = c / f
    print(f"\nconfinement in a forked child (torch imported, {len(profile.rules())} Landlock rules), "
          f"medians of {REPEATS}:")
    print(f"  fork + exit + wait          {f * 1e3:7.2f} ms")
    print(f"  apply() inside the child    {a * 1e3:7.2f} ms   {a / f:5.2f}× the fork")
    print(f"  fork + apply + exit + wait  {c * 1e3:7.2f} ms   {c / f:5.2f}× the fork")
    table.record("confinement", "apply() in the child / fork", f"{a / f:.2f}×", note="a few ms")
    table.record("confinement", "fork + apply / fork", f"{c / f:.2f}×")


PAIRS = 3


def _smoke(isolation: str, out: str) -> float:
    """Wall seconds of a whole ``xalbench run --suite smoke`` (fresh results directory, 2 workers)."""
    import subprocess
    import sys

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xalbench.cli", "run", "--suite", "smoke", "--out", out, "--quiet",
                    "--workers", "2", "--isolation", isolation], check=True, capture_output=True)
    return time.perf_counter() - t0


@pytest.mark.skipif(landlock.abi_version()[0] is None or landlock.abi_version()[0] < 4,
                    reason="no Landlock ABI >= 4 on this kernel")
def test_bench_smoke_confined_vs_process(benchmark, tmp_path) -> None:
    """The goal of confinement's cost: ``confined`` ≤ 1.05× ``process`` wall time on the smoke suite
    (medians of :data:`PAIRS` alternating pairs, each run in a fresh results directory)."""
    times: dict[str, list[float]] = {"process": [], "confined": []}
    for i in range(PAIRS):
        for isolation in ("process", "confined") if i % 2 == 0 else ("confined", "process"):
            times[isolation].append(_smoke(isolation, str(tmp_path / f"{isolation}-{i}")))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    ratios = [c / p for c, p in zip(times["confined"], times["process"], strict=True)]
    median = statistics.median(ratios)
    benchmark.extra_info["smoke_confined_vs_process"] = median
    print(f"\nxalbench run --suite smoke, confined / process (wall, {PAIRS} alternating pairs): "
          f"median {median:.3f}× (range {min(ratios):.3f}–{max(ratios):.3f}); process median "
          f"{statistics.median(times['process']):.1f} s")
    table.record("confinement", "smoke suite wall, confined / process", f"{median:.2f}×", goal="≤ 1.05×",
                 note=f"{PAIRS} alternating pairs, range {min(ratios):.2f}–{max(ratios):.2f}")
