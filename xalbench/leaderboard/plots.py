"""Byte-stable PNG plots for the board: per dataset, each entry's headline AULC with its 95 % CI.

Rendered with the Agg canvas directly (no pyplot state), fixed size, DPI and fonts, and
``metadata={"Software": None}`` so the PNG carries no version string: the same rows give the
same bytes on rebuild.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from xalbench.leaderboard.stats import Row

__all__ = ["entry_plot"]

_COLOURS = {"verified": "#1b7837", "self-reported": "#4d4d4d", "flagged": "#b2182b"}


def _label(text: str, limit: int = 48) -> str:
    """Plain text for matplotlib: no mathtext (``$``), no control characters, bounded length."""
    clean = "".join(ch if ch.isprintable() else " " for ch in text).replace("$", r"\$")
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def entry_plot(rows: Sequence[Row], key: str, title: str) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [r for r in rows if r.aulc[key].mean is not None][:40]
    with matplotlib.rc_context({"font.family": "DejaVu Sans", "font.size": 8, "svg.hashsalt": "xalbench",
                                "path.simplify": False}):
        fig = Figure(figsize=(6.4, 1.3 + 0.28 * max(1, len(shown))), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for i, r in enumerate(reversed(shown)):
            stat = r.aulc[key]
            ax.errorbar([stat.mean], [i], xerr=[[stat.ci or 0.0], [stat.ci or 0.0]], fmt="o",
                        color=_COLOURS.get(r.status, "#4d4d4d"), capsize=2, markersize=4)
        lows = [r.aulc[key].mean - (r.aulc[key].ci or 0.0) for r in shown]  # type: ignore[operator]
        highs = [r.aulc[key].mean + (r.aulc[key].ci or 0.0) for r in shown]  # type: ignore[operator]
        lo, hi = max(0.0, min(lows, default=0.0)), min(1.0, max(highs, default=1.0))
        pad = max(0.02, 0.05 * (hi - lo))
        ax.set_xlim(max(0.0, lo - pad), min(1.0, hi + pad))  # AULCs live in [0, 1]; wider intervals are cut
        ax.set_ylim(-0.7, len(shown) - 0.3)
        ax.set_yticks(range(len(shown)))
        ax.set_yticklabels([_label(f"{r.method} ({r.submitter})") for r in reversed(shown)])
        ax.set_xlabel(f"AULC {key} (mean, 95 % CI over seeds)")
        ax.set_title(_label(title, 80))
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
