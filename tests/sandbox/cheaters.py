"""Reusable fixtures for sandbox tests: the ``xalbench-cheaters`` distribution and a tiny suite.

``install_cheaters(site)`` fabricates the distribution (module ``xalbench_cheaters``, source in
``cheater_plugin.py`` beside this file) as pip would leave it; put ``site`` on ``sys.path`` (and
``PYTHONPATH`` for subprocesses) to install it. ``cheat_suite_text(...)`` is a test-sized suite on
a hidden-mask track that runs the named strategies (end-to-end tests of ``xalbench run``).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_dist

__all__ = ["CHEATER_MODULE", "HARNESS_CACHE", "LABEL_CHEATERS", "MUTATION_CHEATERS", "WRITE_CHEATERS", "cheat_suite_text",
           "install_cheaters"]

CHEATER_MODULE = "xalbench_cheaters"
DIST_NAME = "xalbench-cheaters"
#: Pick by hidden labels/ROIs if they find them, else exactly like ``honest-first``.
LABEL_CHEATERS = ("cheat-gc", "cheat-frames", "cheat-private", "cheat-cache")
#: Change the model in round 0; pick the last k from round 1 on if the change persisted.
MUTATION_CHEATERS = ("cheat-dropout", "cheat-hook", "cheat-requires-grad")
#: A module-level cache of loaded bundles, like a harness's (tests put bundles here as positive controls).
HARNESS_CACHE: dict[str, object] = {}
#: Write into their data; the rule each must fail with.
WRITE_CHEATERS = {"cheat-pool-write": "pool-mutated", "cheat-val-write": "val-mutated"}


def install_cheaters(site: Path) -> Path:
    """Write the fixture distribution into ``site`` (created if needed); return ``site``."""
    source = (Path(__file__).with_name("cheater_plugin.py")).read_text(encoding="utf-8")
    return make_dist(site, DIST_NAME, CHEATER_MODULE, source)


CHEAT_SUITE = """
name = "cheat-tiny"
description = "Test-sized hidden-mask suite for cheating strategies: synth-lesion-2d at 32 px, 2 rounds."
seeds = [0]
strategies = {strategies}
losses = ["ce"]
strategy_timeout = {timeout}

[track]
pool_masks = "{pool_masks}"

[model]
name = "small-cnn"
options = {{ width = 8, n_blocks = 3 }}

[protocol]
base = "aeig"
initial = 20
rounds = 2
query_size = 10

[training]
epochs = 1
batch_size = 16

[[datasets]]
name = "synth-lesion-2d"
label = "lesions"
options = {{ size = 32, n_train = 80, n_val = 20, n_test = 40 }}
"""


def cheat_suite_text(strategies: list[str], *, pool_masks: str = "hidden", timeout: float = 20.0) -> str:
    """A suite TOML running ``strategies`` (e.g. ``["honest-first", *LABEL_CHEATERS]``)."""
    quoted = "[" + ", ".join(f'"{s}"' for s in strategies) + "]"
    return CHEAT_SUITE.format(strategies=quoted, pool_masks=pool_masks, timeout=timeout)
