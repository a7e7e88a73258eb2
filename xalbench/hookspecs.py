"""pluggy hook specifications (project name ``"xalbench"``).

Two families, both implemented with ``@xalbench.hookimpl`` in a module published under the
entry-point group ``xalbench``::

    [project.entry-points.xalbench]
    my_strategies = "my_package.plugin"

**Registration hooks** (llm-style): each receives ``register(component, *, name=None)``;
call it once per component. The registry records which distribution (name, version)
registered it; two registrations of the same kind and name are an error naming both.

**Lifecycle hooks** (pytest-style observers): called with keyword arguments as a run
progresses; their return values are ignored and an exception in one is reported as a
warning, never failing the run. ``run_started``/``run_finished`` are called in the process
that plans the run; ``cell_started``/``round_finished``/``cell_finished`` in the process
that runs the cell (a worker process, a Dask worker or a SLURM task), so a listener must
be safe to call from several processes (write to files keyed by the cell, or to a
tracking server). Implement only the arguments you need: pluggy passes the rest by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from xalbench.lifecycle import CellInfo, RunInfo

hookspec = pluggy.HookspecMarker("xalbench")
#: the marker plugins put on their hook implementations (re-exported as ``xalbench.hookimpl``)
hookimpl = pluggy.HookimplMarker("xalbench")

__all__ = ["HOOK_KINDS", "Register", "hookimpl", "hookspec"]

#: registration hook → the component kind it registers: the one list of kinds (the registry's kinds and
#: ``xalbench plugins --kind`` are derived from it), so a new kind is one hookspec below plus one line here
HOOK_KINDS = {
    "register_strategies": "strategy",
    "register_explainers": "explainer",
    "register_losses": "loss",
    "register_datasets": "dataset",
    "register_models": "model",
    "register_suites": "suite",
    "register_protocols": "protocol",
    "register_metrics": "metric",
    "register_report_formats": "report_format",
    "register_trainers": "trainer",
    "register_mask_sources": "mask_source",
    "register_executors": "executor",
    "register_commands": "command",
    "register_findings": "finding",
}


class Register(Protocol):
    """The callback handed to every ``register_*`` hook."""

    def __call__(self, component: Any, /, *, name: str | None = None) -> None: ...


# ----------------------------------------------------------------------------- components
@hookspec
def register_strategies(register: Register) -> None:
    """Register active-learning query strategies (subclasses of :class:`xalbench.Strategy`)."""


@hookspec
def register_explainers(register: Register) -> None:
    """Register saliency explainers (subclasses of :class:`xalbench.Explainer`)."""


@hookspec
def register_losses(register: Register) -> None:
    """Register training losses (subclasses of :class:`xalbench.Loss`)."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets (subclasses of :class:`xalbench.Dataset`)."""


@hookspec
def register_models(register: Register) -> None:
    """Register model factories (subclasses of :class:`xalbench.Model`)."""


@hookspec
def register_suites(register: Register) -> None:
    """Register suites: :class:`xalbench.SuiteSource` objects (a TOML file path or text)."""


@hookspec
def register_protocols(register: Register) -> None:
    """Register named budget protocols (``xalbench.harness.budget.Protocol`` objects)."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register evaluation metrics (subclasses of :class:`xalbench.Metric`): one registration adds a
    metric to evaluation, cell summaries, the leaderboard and every report format."""


@hookspec
def register_report_formats(register: Register) -> None:
    """Register report formats (subclasses of :class:`xalbench.ReportFormat`) for ``xalbench report --format``."""


@hookspec
def register_trainers(register: Register) -> None:
    """Register round trainers (subclasses of :class:`xalbench.Trainer`): how a round's model(s) are
    trained and which model is evaluated and queried."""


@hookspec
def register_mask_sources(register: Register) -> None:
    """Register mask sources (subclasses of :class:`xalbench.MaskSource`): where the masks of newly
    labelled samples come from once the protocol's human-mask budget is spent."""


@hookspec
def register_executors(register: Register) -> None:
    """Register cell executors (subclasses of :class:`xalbench.Executor`) for ``xalbench run --executor``."""


@hookspec
def register_commands(register: Register) -> None:
    """Register ``xalbench`` subcommands (:class:`xalbench.Command` objects: name, help, arguments, handler)."""


@hookspec
def register_findings(register: Register) -> None:
    """Register paper questions (subclasses of ``xalbench.Finding``) that ``xalbench report --findings``
    answers from a run's cells, each on the datasets where it exists (``docs/findings.md``)."""


# ----------------------------------------------------------------------------- lifecycle
@hookspec
def run_started(run: RunInfo) -> None:
    """A run was planned and validated; ``run.cells`` lists every cell with its status
    (``finished``, ``resume`` or ``run``). Called once, before the first cell starts."""


@hookspec
def cell_started(cell: CellInfo) -> None:
    """A cell is about to run (or resume from ``cell.resumed_rounds``) in this process."""


@hookspec
def round_finished(cell: CellInfo, round: dict[str, Any]) -> None:
    """A round of ``cell`` finished and was checkpointed. ``round`` is the round record as stored:
    ``round``, ``n_labelled``, ``metrics`` (name → value), ``queried``, ``timings``, … ."""


@hookspec
def cell_finished(cell: CellInfo, result: dict[str, Any]) -> None:
    """``cell`` ended (status ``ok``, ``failed`` or ``skipped``); ``result`` is its result file's content."""


@hookspec
def run_finished(run: RunInfo, results: list[dict[str, Any]]) -> None:
    """Every cell of ``run`` ended; ``results`` are their result dicts in plan order."""
