"""What a report says about tuned methods: the values each ``[tuned]`` method ran with, per dataset."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["tuning_notes"]


def tuning_notes(results: Iterable[dict[str, Any]]) -> list[str]:
    """One note on the search and one line per dataset listing each tuned method's chosen values."""
    chosen: dict[str, dict[str, str]] = {}
    setup: set[str] = set()
    for r in results:
        tuning = (r.get("identity") or {}).get("tuning")
        if not isinstance(tuning, dict) or "chosen" not in tuning:
            continue
        values = ", ".join(f"{k}={v}" for k, v in sorted(tuning["chosen"].items()))
        chosen.setdefault(r["cell"]["dataset"], {})[r["cell"]["method"]] = values
        setup.add(f"{tuning.get('budget')} trials per method ({tuning.get('sampler')} sampler), scored by val "
                  f"{tuning.get('objective')}")
    if not chosen:
        return []
    notes = ["[tuned]: options chosen by an equal-budget search on the val split (never test), from tuning seeds "
             f"apart from the evaluation seeds: {'; '.join(sorted(setup))}; searches in <results>/tuning/."]
    for ds in sorted(chosen):
        notes.append(f"[tuned] on {ds}: " + "; ".join(f"{m}: {v}" for m, v in sorted(chosen[ds].items())))
    return notes
