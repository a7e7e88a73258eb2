"""Module-mode helpers shared by explainers, strategies, metrics and the harness."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__all__ = ["eval_mode", "grads_restored"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside (no BatchNorm statistics updated, dropout off); every module's own
    ``training`` flag is restored afterwards, also on error."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


@contextlib.contextmanager
def grads_restored(model: nn.Module) -> Iterator[nn.Module]:
    """Parameter gradients set aside: ``.grad`` is ``None`` inside and every parameter's own
    ``.grad`` tensor is put back afterwards, untouched (libraries that call ``backward()`` on
    the model, e.g. pytorch-grad-cam, would otherwise leave or add to parameter gradients)."""
    saved = [(p, p.grad) for p in model.parameters()]
    for p, _ in saved:
        p.grad = None
    try:
        yield model
    finally:
        for p, grad in saved:
            p.grad = grad
