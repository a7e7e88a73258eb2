"""xalbench-egal: explainability-guided active learning (EG-AL, Uddin et al.) as an xalbench plugin."""

from __future__ import annotations

from xalbench_egal.strategy import EGAL, EGALScores, egal_score, entropy_term, misalignment

__all__ = ["EGAL", "EGALScores", "egal_score", "entropy_term", "misalignment", "__version__"]
__version__ = "0.2.0"
