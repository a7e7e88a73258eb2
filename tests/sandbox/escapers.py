"""The ``xalbench-escapers`` fixture distribution (source: ``escaper_plugin.py`` beside this file) and a
test-sized suite that runs its strategies and its escaping loss."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_dist

__all__ = ["ESCAPER_MODULE", "escape_suite_text", "install_escapers"]

ESCAPER_MODULE = "xalbench_escapers"
DIST_NAME = "xalbench-escapers"


def install_escapers(site: Path) -> Path:
    """Write the fixture distribution into ``site`` (created if needed); return ``site``."""
    source = Path(__file__).with_name("escaper_plugin.py").read_text(encoding="utf-8")
    return make_dist(site, DIST_NAME, ESCAPER_MODULE, source)


ESCAPE_SUITE = """
name = "escape-tiny"
description = "Test-sized suite for escaping plugins: synth-lesion-2d at 24 px, one query round."
seeds = [0]
strategy_timeout = 30.0

[[grids]]
strategies = {strategies}
losses = ["ce"]

[[methods]]
strategy = "random"
loss = "escape-loss"

[model]
name = "small-cnn"
options = {{ width = 4, n_blocks = 2 }}

[protocol]
base = "aeig"
initial = 20
rounds = 1
query_size = 10

[training]
epochs = 1
batch_size = 16

[[datasets]]
name = "synth-lesion-2d"
label = "lesions"
options = {{ size = 24, n_train = 60, n_val = 20, n_test = 30 }}
"""


def escape_suite_text(strategies: list[str], escaping_loss: bool = True) -> str:
    """The suite with ``strategies`` (× ``ce``) and, with ``escaping_loss``, ``random`` × ``escape-loss``."""
    quoted = "[" + ", ".join(f'"{s}"' for s in strategies) + "]"
    text = ESCAPE_SUITE.format(strategies=quoted)
    return text if escaping_loss else text.split("[[methods]]")[0] + text.split('loss = "escape-loss"\n')[1]
