from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from xalbench.plugins import load_registry  # noqa: E402


@pytest.fixture(scope="session")
def registry():
    return load_registry()
