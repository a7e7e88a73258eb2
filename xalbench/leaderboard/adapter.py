"""The one place that reads run directories and asks the harness, planner, runner and registry.

Everything the leaderboard knows about xalbench's cell-file format, suites, datasets, budget
protocol, seeding, cell identities and metrics goes through this module, so a change of those
is followed here only. What needs the installed components is asked of an :class:`Adapter`
built on the leaderboard's one :class:`~xalbench.harness.runtime.Runtime` (its registry and
loaded datasets); the rest are plain functions. Heavy imports (torch, via the registry) happen
inside the functions.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xalbench.leaderboard.canonical import sha256_of

if TYPE_CHECKING:
    from xalbench.harness.runtime import Runtime

__all__ = ["COMPONENT_KINDS", "Adapter", "RunCell", "Run", "MetricInfo", "DatasetFacts", "read_run",
           "suite_config_sha256", "dataset_spec", "method_spec", "method_display", "comparable_identity",
           "identity_sha256", "xalbench_identity", "current_environment", "environment_lock", "with_dataset_seed",
           "run_suite"]

#: the components of a method, in display order
COMPONENT_KINDS = ("strategy", "loss", "trainer", "mask_source")
_DEFAULTS = {"trainer": "standard", "mask_source": "none"}
#: identity fields that describe where a cell ran, not what it computed
_ENVIRONMENT_KEYS = ("sources", "threads", "device")


# ---------------------------------------------------------------- run directories
@dataclasses.dataclass(frozen=True)
class RunCell:
    """One cell of a run directory, in the leaderboard's terms."""

    dataset: str
    method: str
    components: dict[str, str]  # kind → name (strategy, loss, trainer, mask_source)
    options: dict[str, dict[str, Any]]  # kind → options
    seed: int
    status: str
    rounds: list[dict[str, Any]]  # {round, n_labelled, queried, metrics}
    initial_labelled: list[int]
    split_hash: str
    identity: dict[str, Any]
    origins: dict[str, dict[str, str]]  # kind → {name, distribution, version}
    xalbench_version: str
    source_hash: str
    environment: dict[str, Any]
    summary: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Run:
    path: Path
    suite_name: str
    cells: list[RunCell]


def _rounds(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"round": int(r["round"]), "n_labelled": int(r["n_labelled"]),
             "queried": [int(i) for i in r.get("queried", [])], "metrics": dict(r.get("metrics", {}))} for r in raw]


def _run_cell(data: dict[str, Any]) -> RunCell:
    import xalbench

    cell = data["cell"]
    prov = data.get("provenance") or {}
    env = dict(prov.get("environment") or {})
    components = {k: str(cell.get(k, _DEFAULTS.get(k, ""))) for k in COMPONENT_KINDS}
    options = {k: dict(cell.get(f"{k}_options") or {}) for k in COMPONENT_KINDS}
    origins = {k: dict(v) for k, v in (prov.get("components") or {}).items() if k in COMPONENT_KINDS}
    versions = {o["version"] for o in origins.values() if o.get("distribution") == "xalbench"}
    return RunCell(
        dataset=cell["dataset"], method=cell["method"], components=components, options=options,
        seed=int(cell["seed"]), status=data["status"], rounds=_rounds(data.get("rounds") or []),
        initial_labelled=[int(i) for i in data.get("initial_labelled", [])],
        split_hash=str(prov.get("split_hash", "")), identity=dict(data.get("identity") or {}), origins=origins,
        xalbench_version=versions.pop() if len(versions) == 1 else xalbench.__version__,
        source_hash=str(env.get("xalbench_source_sha256", "")), environment=env,
        summary=dict(data.get("summary") or {}),
    )


def read_run(run_dir: str | Path) -> Run:
    """A run directory: its suite name and every finished (ok / skipped / failed) cell."""
    from xalbench.errors import ConfigError
    from xalbench.results import iter_results, read_json

    root = Path(run_dir)
    meta_path = root / "run.json"
    if not meta_path.is_file():
        raise ConfigError(f"{root} is not a run directory (no run.json); run `xalbench run --out {root}` first")
    meta = read_json(meta_path)
    cells = [_run_cell(d) for d in iter_results(root)]
    return Run(root, str(meta["suite"]["name"]), cells)


# ---------------------------------------------------------------- suites and methods
def suite_config_sha256(suite: Any) -> str:
    """Canonical SHA-256 of everything in the suite that fixes the experiment except its method
    list and grids (a submission brings its own methods), its seeds (checked by the grid), its
    ``[findings]`` (how a report judges), and its description and TOML location
    (``SuiteSpec.config_hash()`` covers the methods and seeds as well)."""
    data = _jsonable(dataclasses.asdict(suite))
    for key in ("methods", "grids", "seeds", "source", "description", "wildcard_strategies", "wildcard_losses",
                "grid_losses", "findings"):
        data.pop(key, None)
    return sha256_of(data)


def dataset_spec(suite: Any, label: str) -> Any:
    for spec in suite.datasets:
        if spec.display == label:
            return spec
    raise KeyError(label)


def method_spec(suite: Any, name: str, components: dict[str, str]) -> Any:
    """The suite's method of this display name, else the method of these components (default options)."""
    from xalbench.suite import ComponentSpec, MethodSpec

    for m in suite.methods:
        if m.display == name:
            return m
    return MethodSpec(ComponentSpec(components["strategy"]), ComponentSpec(components["loss"]), "",
                      ComponentSpec(components.get("trainer", "standard")),
                      ComponentSpec(components.get("mask_source", "none")))


def method_display(components: dict[str, str]) -> str:
    """The harness's display name of a method made of these components without options."""
    return method_spec(_EMPTY_SUITE, "", components).display


class _EmptySuite:
    methods: tuple[Any, ...] = ()


_EMPTY_SUITE = _EmptySuite()


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _resolved(spec: Any) -> Any:
    from xalbench.data.names import resolve_dataset_spec

    return resolve_dataset_spec(spec)


def comparable_identity(identity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in identity.items() if k not in _ENVIRONMENT_KEYS}


def identity_sha256(identity: dict[str, Any]) -> str:
    """The harness's own hash of an identity (stored in every cell file)."""
    from xalbench.harness.identity import identity_hash

    return identity_hash(identity)


# ---------------------------------------------------------------- what is installed here
@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    split_hash: str
    n_pool: int
    task: str
    bundle: Any


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    name: str
    key: str
    bounds: tuple[float, float] | None
    aulc: bool
    headline: bool
    direction: str
    display: str


class Adapter:
    """The leaderboard's questions to the components installed here: the suites, datasets, budget,
    cell resolution and metrics of ``runtime``'s registry, with datasets loaded through the runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.registry = runtime.registry

    # ------------------------------------------------------------ registry and suites
    def builtin_names(self) -> set[str]:
        """Names of components of every method kind registered by xalbench itself."""
        return {r.name for r in self.registry if r.distribution == "xalbench" and r.kind in COMPONENT_KINDS}

    def shipped_suite(self, name: str) -> Any:
        """The suite as shipped in the installed xalbench (or a plugin), by registered name."""
        return self.registry.get("suite", name).load()

    def suite_version(self, name: str) -> str:
        return self.registry.record("suite", name).version

    def component_origin(self, kind: str, name: str) -> tuple[str, str] | None:
        """(distribution, version) that registered ``kind``/``name`` here, or ``None``."""
        if (kind, name) not in self.registry:
            return None
        rec = self.registry.record(kind, name)
        return rec.distribution, rec.version

    # ------------------------------------------------------------ datasets and budget
    def dataset_available(self, spec: Any, data_root: str | None = None) -> bool:
        spec = _resolved(spec)
        return bool(self.registry.create("dataset", spec.name, spec.options).available(data_root))

    def dataset_facts(self, spec: Any, data_root: str | None = None) -> DatasetFacts:
        """Load the shipped dataset (generated, or from the data root): split hash, pool size, task."""
        bundle = self.runtime.dataset(_resolved(spec), data_root)
        return DatasetFacts(bundle.split_hash(), len(bundle.train), bundle.meta.task, bundle)

    def is_embedded_generator(self, spec: Any) -> bool:
        """A synthetic dataset whose options include the generator's ``seed``."""
        cls = self.registry.get("dataset", _resolved(spec).name)
        options_cls = getattr(cls, "Options", None)
        fields = {f.name for f in dataclasses.fields(options_cls)} if dataclasses.is_dataclass(options_cls) else set()
        return bool(getattr(cls, "synthetic", False)) and "seed" in fields

    def budget(self, suite: Any, n_pool: int) -> tuple[int, int, int]:
        """(initial count, query size, number of query rounds) of ``suite`` on a pool of ``n_pool``."""
        from xalbench.harness.budget import resolve_protocol

        protocol = resolve_protocol(self.registry, suite)
        n_init, k = protocol.counts(n_pool)
        return n_init, k, protocol.rounds

    def initial_labelled(self, suite: Any, dataset: Any, seed: int, facts: DatasetFacts) -> list[int]:
        """The initial labelled set the harness draws for (suite, dataset, seed) — the same for every method."""
        from xalbench.harness.budget import initial_labelled as draw
        from xalbench.harness.config import resolve_cell
        from xalbench.suite import ComponentSpec, MethodSpec

        canary = MethodSpec(ComponentSpec("random"), ComponentSpec("ce"))  # any method: the set is the pair's
        config = resolve_cell(self.registry, suite, _resolved(dataset), canary, seed, meta=None, visible=False)
        return [int(i) for i in draw(config, facts.bundle.train, facts.task)]

    # ------------------------------------------------------------ cells
    def _installed(self, method: Any) -> bool:
        return all((kind, getattr(method, kind).name) in self.registry for kind in COMPONENT_KINDS)

    def skip_reason(self, suite: Any, dataset: Any, method: Any, facts: DatasetFacts,
                    methods: Any = ()) -> str | None:
        """Why the harness skips ``method`` on this dataset ("" if it runs it) when it runs with ``methods`` (a
        method equal by construction to another of them is n/a); ``None`` if a component is not installed
        here (then nobody can tell)."""
        from xalbench.harness.applicability import equivalent_methods
        from xalbench.harness.config import resolve_cell

        if not self._installed(method):
            return None
        installed = [m for m in methods if self._installed(m)]
        equal = equivalent_methods(self.registry, installed, facts.bundle.meta).get(method.display)
        return resolve_cell(self.registry, suite, _resolved(dataset), method, 0, meta=facts.bundle.meta,
                            equal_to=equal).skip_reason or ""

    def expected_identity(self, suite: Any, dataset: Any, method: Any, seed: int, facts: DatasetFacts,
                          stored: dict[str, Any]) -> dict[str, Any]:
        """The identity the harness gives this cell of the shipped suite (environment fields excluded), from
        its own resolution of the cell (no code hashes: the board compares configurations). Whether pool
        ROIs were visible needs the strategy; for a method whose plugin is not installed here the stored
        value is taken (and no n/a reason)."""
        from xalbench.harness.config import resolve_cell

        installed = self._installed(method)
        visible = bool((stored.get("track") or {}).get("pool_masks_visible", False))
        config = resolve_cell(self.registry, suite, _resolved(dataset), method, seed,
                              meta=facts.bundle.meta if installed else None, visible=None if installed else visible)
        return comparable_identity(_jsonable(config.identity()))

    # ------------------------------------------------------------ metrics
    @functools.cached_property
    def metrics(self) -> dict[str, MetricInfo]:
        """Registered round metrics by name (the harness's per-round keys)."""
        out: dict[str, MetricInfo] = {}
        for name in self.registry.names("metric"):
            cls = self.registry.get("metric", name)
            if getattr(cls, "scope", "round") != "round":
                continue
            bounds = getattr(cls, "bounds", (0.0, 1.0))
            out[name] = MetricInfo(name, cls.summary_key(), tuple(bounds) if bounds is not None else None,
                                   bool(cls.aulc), bool(getattr(cls, "headline", False)),
                                   str(getattr(cls, "direction", "max")), cls.column())
        return out

    def recompute_aulc(self, rounds: list[dict[str, Any]]) -> dict[str, float | None]:
        """AULC (``xalbench.metrics.aulc``) of every AULC metric in the rounds, keyed by the metric's key;
        ``None`` where a round lacks a value."""
        import math

        from xalbench.metrics import aulc

        x = [r["n_labelled"] for r in rounds]
        out: dict[str, float | None] = {}
        for name in sorted(rounds[0]["metrics"] if rounds else ()):
            info = self.metrics.get(name)
            if info is None or not info.aulc:
                continue
            ys = [float("nan") if r["metrics"].get(name) is None else float(r["metrics"][name]) for r in rounds]
            value = aulc(x, ys)
            out[info.key] = None if math.isnan(value) else float(value)
        return out

    def keep_metrics(self, metrics: dict[str, Any]) -> dict[str, float | None]:
        """The registered metrics of one round (counts and other extras dropped; NaN → ``None``)."""
        import math

        return {name: None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
                for name, value in metrics.items() if name in self.metrics}


# ---------------------------------------------------------------- provenance and environment
def xalbench_identity() -> tuple[str, str]:
    """(version, source hash) of the xalbench installed here."""
    import xalbench
    from xalbench.results import source_hash

    return xalbench.__version__, source_hash()


def current_environment() -> dict[str, Any]:
    from xalbench.results import environment

    return environment(1, "cpu")


def environment_lock() -> dict[str, str]:
    """Every installed distribution (PEP 503 name → version): the submission's environment lock."""
    import importlib.metadata as md

    out: dict[str, str] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name:
            out[re.sub(r"[-_.]+", "-", name).lower()] = dist.version
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- running cells
def with_dataset_seed(spec: Any, seed: int) -> Any:
    """The same dataset (same label, hence the same cell seeds) generated from another data seed."""
    from xalbench.suite import ComponentSpec

    return ComponentSpec(spec.name, {**spec.options, "seed": int(seed)}, spec.display, spec.optional)


def run_suite(suite: Any, out_dir: str | Path, isolation: str = "confined") -> None:
    """THE runner call of the leaderboard: every cell of ``suite`` (datasets × methods × seeds), each
    cell's process and its strategy's sandbox confined by the kernel (``isolation="confined"``)."""
    import xalbench.api

    xalbench.api.run(suite, out_dir=str(out_dir), workers=1, isolation=isolation, quiet=True)
