"""xalbench-infogain: information-gain sampling (EIG, AEIG, UIG, CFIG; Mehta et al. 2022)."""

from __future__ import annotations

from xalbench_infogain.core import class_frequencies, ig_scores, reference_ig_scores, weights_for
from xalbench_infogain.strategies import AEIG, CFIG, EIG, UIG

__version__ = "0.2.0"
__all__ = ["AEIG", "CFIG", "EIG", "UIG", "class_frequencies", "ig_scores", "reference_ig_scores", "weights_for"]
