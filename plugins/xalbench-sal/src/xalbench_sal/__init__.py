"""xalbench-sal: SAL (Boyd et al.) — two models per round, human masks until a change point, AI masks after."""

from xalbench_sal.trainers import DualTrainer, TAITTrainer

__all__ = ["DualTrainer", "TAITTrainer"]
__version__ = "0.2.0"
