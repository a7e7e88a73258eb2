"""Imported once by the sandbox fork server, so that every sandbox forked from it starts warm.

Besides importing torch, numpy and the sandbox's own code, it pays the one-off costs of
:func:`xalbench.harness.seeding.configure_determinism` (``torch.use_deterministic_algorithms``
imports ``torch._inductor`` on first use: seconds, which every sandbox would otherwise pay
again) without changing any setting. It creates no CUDA context (forking after one is unsafe).
"""

from __future__ import annotations

import gc

import torch

import xalbench.sandbox.child  # noqa: F401 - the sandbox's main loop and everything it imports

torch.use_deterministic_algorithms(torch.are_deterministic_algorithms_enabled(),
                                   warn_only=torch.is_deterministic_algorithms_warn_only_enabled())

gc.freeze()  # listed last in PRELOAD: what the server imported is never scanned (or copied) in a sandbox
