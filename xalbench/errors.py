"""One error hierarchy for xalbench.

Every error says what is wrong *and* what to do; the CLI prints ``str(err)`` on one line
and exits with ``err.exit_code`` (2 for usage/config problems, 1 for failed runs).
"""

from __future__ import annotations

__all__ = [
    "XalbenchError",
    "ConfigError",
    "OptionsError",
    "PluginError",
    "DuplicateComponentError",
    "UnknownComponentError",
    "DataNotFoundError",
    "UnsupportedError",
    "StrategyContractError",
    "InformationAccessError",
    "ModelMutationError",
    "StrategyTimeoutError",
    "PretrainedWeightsError",
    "ConfinementError",
    "CellProcessError",
]


class XalbenchError(Exception):
    """Base of every error xalbench raises on purpose."""

    exit_code: int = 2


class ConfigError(XalbenchError):
    """A suite, CLI argument or option is malformed."""


class OptionsError(ConfigError):
    """A component was given unknown or ill-typed options."""


class PluginError(XalbenchError):
    """A plugin could not be loaded or registered."""


class DuplicateComponentError(PluginError):
    """Two registrations claim the same kind + name."""


class UnknownComponentError(ConfigError):
    """A component name is not registered (message carries 'did you mean')."""


class DataNotFoundError(XalbenchError):
    """A real dataset's files are missing; the message says what to fetch and where to put it."""


class UnsupportedError(XalbenchError):
    """A component cannot run in this setting (e.g. a 2D-only strategy on 3D data)."""


class PretrainedWeightsError(XalbenchError):
    """Pretrained weights were asked for but are not in the local cache."""


class ConfinementError(XalbenchError):
    """The operating-system confinement asked for is not available here, or could not be applied."""


class StrategyContractError(XalbenchError):
    """A strategy broke its contract; ``rule`` names the broken rule.

    Rules: ``count``, ``duplicates``, ``range``, ``labelled``, ``nan``, ``type``,
    ``exception``, ``timeout``, ``model-mutated``, ``pool-mutated``, ``val-mutated``,
    ``forbidden-access``, and for a strategy's sandbox process (:mod:`xalbench.sandbox`)
    ``crash`` (it died without answering) and ``memory`` (it ran out of memory or was
    killed by the out-of-memory killer).
    """

    exit_code = 1

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"strategy contract violated [{rule}]: {message}")
        self.rule = rule


class InformationAccessError(StrategyContractError):
    """A strategy read data its track does not allow (pool labels, hidden pool masks, test set)."""

    def __init__(self, message: str) -> None:
        super().__init__("forbidden-access", message)


class ModelMutationError(StrategyContractError):
    """The model handed to a strategy came back with changed parameters or buffers."""

    def __init__(self, message: str) -> None:
        super().__init__("model-mutated", message)


class StrategyTimeoutError(StrategyContractError):
    """A strategy call exceeded the suite's ``strategy_timeout``."""

    def __init__(self, message: str) -> None:
        super().__init__("timeout", message)


class CellProcessError(XalbenchError):
    """A confined cell's process died without a result (a crash in a plugin's native code, a kill)."""

    rule = "crash"
