"""Shared set-up of the documentation tests: a directory on ``sys.path`` for the modules the docs ask
the reader to save (```python title="my_plugin.py"```), and a data root for the pages' runs.

The directory joins ``sys.path`` when this conftest is loaded, during collection, i.e. before any
test starts a strategy sandbox: the sandboxes' fork server copies ``sys.path`` once, when it starts,
and must be able to import a strategy defined in the docs by its module name, as a reader's would.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

MODULES_KEY = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    modules = Path(tempfile.mkdtemp(prefix="xalbench-docs-modules-"))
    sys.path.insert(0, str(modules))
    config.stash[MODULES_KEY] = modules

    def cleanup() -> None:
        if str(modules) in sys.path:
            sys.path.remove(str(modules))
        shutil.rmtree(modules, ignore_errors=True)

    config.add_cleanup(cleanup)


@pytest.fixture(scope="session")
def docs_modules(pytestconfig: pytest.Config) -> Path:
    """Where the docs' Python files are written (on ``sys.path`` for this process and its sandboxes)."""
    return pytestconfig.stash[MODULES_KEY]


@pytest.fixture(scope="session")
def docs_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data root for every page, so the embedded datasets are generated once per session."""
    return tmp_path_factory.mktemp("docs-data")
