"""Registers the built-in executors through the public hook.

``dask``, ``ray`` and ``submitit`` import their engines only when a run uses them (extras
``xalbench[dask]``, ``xalbench[ray]``, ``xalbench[slurm]``), so they are always listed.
"""

from __future__ import annotations

from xalbench.execution.dask import DaskExecutor
from xalbench.execution.local import LocalExecutor
from xalbench.execution.ray import RayExecutor
from xalbench.execution.submitit import SubmititExecutor
from xalbench.hookspecs import Register, hookimpl


@hookimpl
def register_executors(register: Register) -> None:
    for executor in (LocalExecutor, DaskExecutor, RayExecutor, SubmititExecutor):
        register(executor)
