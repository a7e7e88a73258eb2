"""xalbench-plugin-template: Least confidence: lowest top-class probability first

The entry point in ``pyproject.toml`` names this package; xalbench registers the hook
functions it finds here, which live in :mod:`xalbench_plugin_template.plugin`.
"""

from __future__ import annotations

from xalbench_plugin_template.plugin import register_strategies

__all__ = ["register_strategies"]
