"""Equal tuning budget per method: search spaces, the tuner on the val split, its cache (``docs/tuning.md``).

A component declares ``tunable = {"option": [values]}``; a suite's ``[tuning]`` table gives every
method with a non-empty space the same number of trials (a grid or a seeded Optuna sampler),
scored on the val split — never test — after a declared round, from tuning seeds of their own.
Planning (:func:`tuned_methods`) turns each searched method into a ``<method>[tuned]`` variant
whose cells carry the chosen values in their identity.
"""

from xalbench.tuning.apply import TUNED_SUFFIX, Variant, tuned_methods
from xalbench.tuning.space import Param, method_space
from xalbench.tuning.tuner import TuningJob, choose, run_job

__all__ = ["TUNED_SUFFIX", "Param", "TuningJob", "Variant", "choose", "method_space", "run_job", "tuned_methods"]
