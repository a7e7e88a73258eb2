"""xalbench-due: DUE (Zhao et al.) — 3D explanation supervision from sparse slice annotations."""

from __future__ import annotations

__version__ = "0.2.0"
__all__ = ["__version__"]
