"""Entry point ``xalbench_infogain.plugin``: registers eig, aeig, uig and cfig, and AEIG's question (Fig. 4)."""

from __future__ import annotations

import xalbench
from xalbench.hookspecs import Register
from xalbench_infogain.strategies import AEIG, CFIG, EIG, UIG


@xalbench.hookimpl
def register_strategies(register: Register) -> None:
    for cls in (EIG, AEIG, UIG, CFIG):
        register(cls)


@xalbench.hookimpl
def register_findings(register: Register) -> None:
    from xalbench_infogain.finding import AEIGMinorityShare

    register(AEIGMinorityShare)
