"""Pool rows in blocks: bounded memory for the strategies' float64 computations, same bits.

A block is a multiple of :data:`ROW_ALIGN` rows (192, the least common multiple of the SIMD
widths and BLAS row panels in use), so with one thread every row of a blockwise elementwise
op, row reduction or matrix-vector product lands in the same vector lane pattern as in one
whole-pool pass, and gives the same bits; only the final block may be shorter, exactly as the
whole pool's tail is.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from xalbench.strategies.common import check_finite

__all__ = ["BLOCK_BYTES", "ROW_ALIGN", "check_rows", "row_blocks"]

ROW_ALIGN = 192  #: every block but the last is a multiple of this many rows
BLOCK_BYTES = 32 << 20  #: float64 bytes per block (32 MiB: 1 920 rows of 64×64 maps, 8 064 of 512-d embeddings)


def row_blocks(n: int, width: int = 1) -> Iterator[slice]:
    """Slices covering ``range(n)``: blocks of rows holding :data:`BLOCK_BYTES` of float64 at
    ``width`` values per row, rounded down to a multiple of :data:`ROW_ALIGN` (at least one)."""
    rows = BLOCK_BYTES // (8 * max(1, width))
    step = max(ROW_ALIGN, rows // ROW_ALIGN * ROW_ALIGN)
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def check_rows(t: torch.Tensor, who: str) -> None:
    """:func:`~xalbench.strategies.common.check_finite` without a float64 copy of ``t`` unless
    something in it is not finite."""
    if not bool(torch.isfinite(t).all()):
        check_finite(t.detach().double().cpu().numpy(), who)
