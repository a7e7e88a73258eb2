"""Suite definitions: TOML files registered through ``register_suites``, parsed and type-checked.

The schema is documented in ``docs/suites.md``. Every field is checked here, before any cell
runs: types (``Literal`` values enforced), ranges (epochs ≥ 1, batch ≥ 1, lr > 0, rounds ≥ 0,
query ≥ 1, a positive timeout, unique non-negative seeds). A malformed file raises one
:class:`ConfigError` line naming the file, the key, the value and what is allowed. Component
names and options are checked against the registry when the suite is planned
(:mod:`xalbench.planning`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from xalbench.errors import ConfigError

__all__ = ["ComponentSpec", "FindingsSpec", "GridSpec", "MethodSpec", "TrainingSpec", "TuningSpec", "SuiteSpec", "SuiteSource",
           "parse_suite"]

PoolMasks = Literal["hidden", "visible", "as-needed"]


@dataclasses.dataclass(frozen=True)
class ComponentSpec:
    name: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""
    optional: bool = False

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        if not self.options:
            return self.name
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.name}[{opts}]"

    def identity(self) -> dict[str, Any]:
        """What determines this component's behaviour (the label is only a display name)."""
        return {"name": self.name, "options": self.options}


DEFAULT_TRAINER = ComponentSpec("standard")
DEFAULT_MASK_SOURCE = ComponentSpec("none")


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    strategy: ComponentSpec
    loss: ComponentSpec
    label: str = ""
    trainer: ComponentSpec = DEFAULT_TRAINER
    mask_source: ComponentSpec = DEFAULT_MASK_SOURCE

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        out = f"{self.strategy.display}+{self.loss.display}"
        if self.trainer != DEFAULT_TRAINER:
            out += f"+{self.trainer.display}"
        if self.mask_source != DEFAULT_MASK_SOURCE:
            out += f"+masks={self.mask_source.display}"
        return out

    def identity(self) -> dict[str, Any]:
        return {"strategy": self.strategy.identity(), "loss": self.loss.identity(),
                "trainer": self.trainer.identity(), "mask_source": self.mask_source.identity()}


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """``strategies × losses`` resolved against the registry when planned (``"*"`` = every one)."""

    strategies: tuple[ComponentSpec, ...] | Literal["*"]
    losses: tuple[ComponentSpec, ...] | Literal["*"] = (ComponentSpec("ce"),)
    trainer: ComponentSpec = DEFAULT_TRAINER
    mask_source: ComponentSpec = DEFAULT_MASK_SOURCE
    label: str = ""  #: method label template, e.g. "{strategy}+SAL" ({strategy}, {loss} = display names)

    def method(self, strategy: ComponentSpec, loss: ComponentSpec) -> MethodSpec:
        label = self.label.format(strategy=strategy.display, loss=loss.display) if self.label else ""
        return MethodSpec(strategy, loss, label, self.trainer, self.mask_source)


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 10
    min_steps: int = 0  # small labelled sets train for ≥ this many optimiser steps (epochs raised to fit)
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = 0.9
    warm_start: bool = False
    warm_epochs: int = 0  # warm start: epochs of each round that continues a previous model (0 = epochs)
    recalibrate_bn: bool = True  # recompute BatchNorm running statistics on the labelled set after training
    eval_batch_size: int = 256


#: (lower bound, inclusive?) per numeric training field: the one-line error says what is allowed
TRAINING_RANGES: dict[str, tuple[float, bool]] = {
    "epochs": (1, True), "warm_epochs": (0, True), "min_steps": (0, True), "batch_size": (1, True), "lr": (0, False),
    "weight_decay": (0, True), "momentum": (0, True), "eval_batch_size": (1, True),
}


@dataclasses.dataclass(frozen=True)
class TuningSpec:
    """A suite's ``[tuning]`` table: the same search budget for every method (``docs/tuning.md``)."""

    sampler: Literal["grid", "tpe", "random"] = "grid"
    budget: int = 3  #: trials per method; a trial trains once per tuning seed
    seeds: tuple[int, ...] = (1000,)  #: tuning seeds (a stream of their own, apart from the evaluation seeds)
    sampler_seed: int = 0
    round: int = 0  #: score after this round's training (0 = the initial labelled set)
    objective: str = "accuracy"  #: a registered metric, computed on the val split
    keep_default: bool = True  #: also run each tuned method at its default options, side by side
    spaces: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  #: component → option → values


@dataclasses.dataclass(frozen=True)
class FindingsSpec:
    """A suite's ``[findings]`` table: how ``xalbench report --findings`` judges (``docs/findings.md``).
    It changes no cell, so it is not part of the suite's hash."""

    delta: float = 0.02  #: smallest effect of interest: an interval of Δ below it (and not above 0) is "not reproduced"


@dataclasses.dataclass(frozen=True)
class SuiteSpec:
    name: str
    description: str
    datasets: tuple[ComponentSpec, ...]
    methods: tuple[MethodSpec, ...]
    seeds: tuple[int, ...] = (0, 1)
    model: ComponentSpec = ComponentSpec("small-cnn")
    explainer: ComponentSpec = ComponentSpec("gradcam")
    protocol_base: str = "aeig"
    protocol_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    training: TrainingSpec = TrainingSpec()
    pool_masks: PoolMasks = "hidden"
    eval_target: Literal["label", "pred"] = "label"
    full_data_reference: bool = False
    metrics: tuple[str, ...] = ()
    strategy_timeout: float = 600.0
    grids: tuple[GridSpec, ...] = ()
    source: str = ""
    tuning: TuningSpec | None = None
    findings: FindingsSpec = FindingsSpec()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteSpec:
        """Inverse of ``dataclasses.asdict`` (as stored in a run's ``run.json``)."""
        def comp(d: dict[str, Any]) -> ComponentSpec:
            return ComponentSpec(d["name"], dict(d.get("options", {})), d.get("label", ""), d.get("optional", False))

        def method(m: dict[str, Any]) -> MethodSpec:
            return MethodSpec(comp(m["strategy"]), comp(m["loss"]), m.get("label", ""),
                              comp(m.get("trainer", {"name": "standard"})),
                              comp(m.get("mask_source", {"name": "none"})))

        def grid(g: dict[str, Any]) -> GridSpec:
            def names(v: Any) -> Any:
                return "*" if v == "*" else tuple(comp(x) for x in v)
            return GridSpec(names(g["strategies"]), names(g["losses"]), comp(g["trainer"]), comp(g["mask_source"]),
                            g.get("label", ""))

        fields = {f.name for f in dataclasses.fields(cls)}
        out = {k: v for k, v in data.items() if k in fields}
        out["datasets"] = tuple(comp(d) for d in data["datasets"])
        out["methods"] = tuple(method(m) for m in data["methods"])
        out["model"] = comp(data["model"])
        out["explainer"] = comp(data["explainer"])
        out["training"] = TrainingSpec(**data["training"])
        out["seeds"] = tuple(data["seeds"])
        out["metrics"] = tuple(data.get("metrics", ()))
        out["grids"] = tuple(grid(g) for g in data.get("grids", ()))
        if data.get("tuning"):
            out["tuning"] = TuningSpec(**{**data["tuning"], "seeds": tuple(data["tuning"]["seeds"])})
        out["findings"] = FindingsSpec(**data.get("findings") or {})
        return cls(**out)

    def config_hash(self) -> str:
        """SHA-256 (16 hex) of the suite's configuration — not of where its file lies."""
        data = dataclasses.asdict(self)
        data.pop("source", None)
        data.pop("findings", None)  # how a report judges: changes no cell
        if data.get("tuning") is None:  # suites without [tuning] keep the hash they had before it existed
            data.pop("tuning", None)
        blob = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class SuiteSource:
    """What a plugin registers: a suite name plus its TOML (a path or the text itself)."""

    name: str
    path: str | None = None
    text: str | None = None
    summary: str = ""

    def read(self) -> str:
        if self.path is None:
            return self.text or ""
        try:
            return Path(self.path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"suite {self.name!r}: cannot read {self.path}: {exc}") from exc

    def load(self) -> SuiteSpec:
        return parse_suite(self.read(), where=self.path or f"<suite {self.name}>")


# ----------------------------------------------------------------------------- validation helpers
_TOP_KEYS = {"name", "description", "seeds", "strategy_timeout", "model", "explainer", "protocol",
             "training", "track", "evaluation", "datasets", "strategies", "losses", "methods", "grids",
             "tuning", "findings"}


class _Where:
    """Formats one-line errors: ``<file>: key 'training.epochs' = -3: must be an integer ≥ 1``."""

    def __init__(self, where: str) -> None:
        self.where = where

    def error(self, key: str, value: Any, allowed: str) -> ConfigError:
        shown = repr(value) if not isinstance(value, str) else json.dumps(value)
        return ConfigError(f"{self.where}: key {key!r} = {shown}: {allowed}")

    def table(self, data: Mapping[str, Any], key: str, valid: set[str]) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, Mapping):
            raise self.error(key, value, "must be a table")
        unknown = sorted(set(value) - valid)
        if unknown:
            raise ConfigError(f"{self.where}: unknown key(s) {[f'{key}.{u}' for u in unknown]}; "
                              f"valid keys in [{key}]: {', '.join(sorted(valid))}")
        return dict(value)

    def typed(self, key: str, value: Any, hint: Any) -> Any:
        """Check ``value`` against a type hint (int → float allowed; bool is never a number)."""
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is Literal:
            if value in args:
                return value
            raise self.error(key, value, f"must be one of {', '.join(json.dumps(a) for a in args)}")
        if hint is bool:
            if isinstance(value, bool):
                return value
            raise self.error(key, value, "must be true or false")
        if hint is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise self.error(key, value, "must be an integer")
        if hint is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise self.error(key, value, "must be a number")
        if hint is str:
            if isinstance(value, str):
                return value
            raise self.error(key, value, "must be a string")
        return value

    def component(self, value: Any, key: str) -> ComponentSpec:
        if isinstance(value, str):
            return ComponentSpec(value)
        if not isinstance(value, Mapping):
            raise self.error(key, value, "must be a name or a table with 'name' (and 'options', 'label', 'optional')")
        extra = set(value) - {"name", "options", "label", "optional"}
        if extra:
            raise self.error(key, dict(value), f"has unknown field(s) {sorted(extra)}; use name/options/label/optional")
        if not isinstance(value.get("name"), str) or not value["name"]:
            raise self.error(f"{key}.name", value.get("name"), "a non-empty string is required")
        options = value.get("options", {})
        if not isinstance(options, Mapping):
            raise self.error(f"{key}.options", options, "must be a table")
        label = self.typed(f"{key}.label", value.get("label", ""), str)
        optional = self.typed(f"{key}.optional", value.get("optional", False), bool)
        return ComponentSpec(value["name"], dict(options), label, optional)

    def names(self, value: Any, key: str) -> tuple[ComponentSpec, ...] | Literal["*"]:
        if value == "*":
            return "*"
        if not isinstance(value, list) or not value:
            raise self.error(key, value, 'must be a non-empty array of names/tables, or "*" (every registered one)')
        return tuple(self.component(v, f"{key}[{i}]") for i, v in enumerate(value))


def _training(w: _Where, data: Mapping[str, Any]) -> TrainingSpec:
    hints = typing.get_type_hints(TrainingSpec)
    raw = w.table(data, "training", set(hints))
    values = {}
    for key, value in raw.items():
        full = f"training.{key}"
        values[key] = w.typed(full, value, hints[key])
        if key in TRAINING_RANGES:
            low, inclusive = TRAINING_RANGES[key]
            ok = values[key] >= low if inclusive else values[key] > low
            if key == "momentum":
                ok = ok and values[key] < 1
            if not ok:
                bound = f"≥ {low:g}" if inclusive else f"> {low:g}"
                kind = "an integer" if hints[key] is int else "a number"
                raise w.error(full, value, f"must be {kind} {bound}" + (" and < 1" if key == "momentum" else ""))
    return TrainingSpec(**values)


def _protocol(w: _Where, data: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    raw = w.table(data, "protocol", {"base", "initial", "rounds", "query_size", "initial_sampling", "mask_budget"})
    base = w.typed("protocol.base", raw.pop("base", "aeig"), str)
    for key in ("initial", "query_size", "mask_budget"):
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise w.error(f"protocol.{key}", value, "must be a count (integer) or a fraction of the pool (0 < x ≤ 1)")
            if isinstance(value, float) and not 0 < value <= 1:
                raise w.error(f"protocol.{key}", value, "a fraction must lie in (0, 1]; use an integer for a count")
            minimum = 1 if key == "query_size" else 0
            if isinstance(value, int) and value < minimum:
                raise w.error(f"protocol.{key}", value, f"a count must be ≥ {minimum}")
    if "rounds" in raw:
        rounds = w.typed("protocol.rounds", raw["rounds"], int)
        if rounds < 0:
            raise w.error("protocol.rounds", rounds, "must be an integer ≥ 0")
    if "initial_sampling" in raw:
        w.typed("protocol.initial_sampling", raw["initial_sampling"], Literal["random", "class-balanced"])
    return base, raw


def _seeds(w: _Where, data: Mapping[str, Any]) -> tuple[int, ...]:
    seeds = data.get("seeds", [0, 1])
    if not isinstance(seeds, list) or not seeds:
        raise w.error("seeds", seeds, "must be a non-empty array of integers ≥ 0")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise w.error("seeds", seeds, "every seed must be an integer ≥ 0")
    dupes = sorted({s for s in seeds if seeds.count(s) > 1})
    if dupes:
        raise w.error("seeds", seeds, f"seeds must be unique (repeated: {dupes})")
    return tuple(seeds)


def _space_values(w: _Where, key: str, value: Any, sampler: str) -> Any:
    """One option's search space: a non-empty array of values, or ``{low, high, log}`` (tpe/random only)."""
    if isinstance(value, list):
        if not value:
            raise w.error(key, value, "must be a non-empty array of values or a table {low, high, log}")
        return list(value)
    if isinstance(value, Mapping):
        extra = set(value) - {"low", "high", "log"}
        low, high = value.get("low"), value.get("high")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if extra or not numbers or not low < high:  # type: ignore[operator]
            raise w.error(key, dict(value), "a range needs numbers low < high (and optionally log = true)")
        log = w.typed(f"{key}.log", value.get("log", False), bool)
        if log and low <= 0:  # type: ignore[operator]
            raise w.error(key, dict(value), "a log range needs low > 0")
        if sampler == "grid":
            raise w.error(key, dict(value), 'a range needs sampler = "tpe" or "random"; a grid takes an array')
        return {"low": low, "high": high, "log": log}
    raise w.error(key, value, "must be a non-empty array of values or a table {low, high, log}")


def _tuning(w: _Where, data: Mapping[str, Any]) -> TuningSpec | None:
    if "tuning" not in data:
        return None
    hints = typing.get_type_hints(TuningSpec)
    raw = w.table(data, "tuning", {f.name for f in dataclasses.fields(TuningSpec)})
    values: dict[str, Any] = {}
    for key in ("sampler", "budget", "sampler_seed", "round", "objective", "keep_default"):
        if key in raw:
            values[key] = w.typed(f"tuning.{key}", raw[key], hints[key])
    for key, low in (("budget", 1), ("sampler_seed", 0), ("round", 0)):
        if key in values and values[key] < low:
            raise w.error(f"tuning.{key}", values[key], f"must be an integer ≥ {low}")
    if "seeds" in raw:
        seeds = raw["seeds"]
        if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
                or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
            raise w.error("tuning.seeds", seeds, "must be a non-empty array of unique integers ≥ 0")
        values["seeds"] = tuple(seeds)
    sampler = values.get("sampler", "grid")
    spaces = raw.get("spaces", {})
    if not isinstance(spaces, Mapping):
        raise w.error("tuning.spaces", spaces, "must be a table of component tables, e.g. [tuning.spaces.gradia]")
    out: dict[str, dict[str, Any]] = {}
    for comp, options in spaces.items():
        if not isinstance(options, Mapping):
            raise w.error(f"tuning.spaces.{comp}", options, "must be a table option = [values]")
        out[comp] = {opt: _space_values(w, f"tuning.spaces.{comp}.{opt}", v, sampler) for opt, v in options.items()}
    values["spaces"] = out
    return TuningSpec(**values)


def _methods(w: _Where, data: Mapping[str, Any]) -> tuple[list[MethodSpec], list[GridSpec]]:
    grids: list[GridSpec] = []
    if "strategies" in data:
        grids.append(GridSpec(w.names(data["strategies"], "strategies"),
                              w.names(data.get("losses", ["ce"]), "losses")))
    elif "losses" in data:
        raise w.error("losses", data["losses"], "needs 'strategies' beside it (the grid is strategies × losses)")
    for i, g in enumerate(data.get("grids", [])):
        key = f"grids[{i}]"
        if not isinstance(g, Mapping):
            raise w.error(key, g, "must be a table")
        extra = set(g) - {"strategies", "losses", "trainer", "mask_source", "label"}
        if extra or "strategies" not in g:
            raise w.error(key, dict(g), "takes strategies (required), losses, trainer, mask_source, label")
        label = w.typed(f"{key}.label", g.get("label", ""), str)
        try:
            label.format(strategy="s", loss="l")
        except (KeyError, IndexError, ValueError):
            raise w.error(f"{key}.label", label, "a template may use only {strategy} and {loss}") from None
        grids.append(GridSpec(w.names(g["strategies"], f"{key}.strategies"), w.names(g.get("losses", ["ce"]),
                              f"{key}.losses"), w.component(g.get("trainer", "standard"), f"{key}.trainer"),
                              w.component(g.get("mask_source", "none"), f"{key}.mask_source"), label))
    methods: list[MethodSpec] = []
    raw_methods = data.get("methods", [])
    if not isinstance(raw_methods, list):
        raise w.error("methods", raw_methods, "must be an array of tables ([[methods]])")
    for i, m in enumerate(raw_methods):
        key = f"methods[{i}]"
        if not isinstance(m, Mapping):
            raise w.error(key, m, "must be a table")
        extra = set(m) - {"label", "strategy", "strategy_options", "loss", "loss_options", "trainer",
                          "trainer_options", "mask_source", "mask_source_options"}
        if extra:
            raise w.error(key, dict(m), f"has unknown field(s) {sorted(extra)}")
        if not isinstance(m.get("strategy"), str):
            raise w.error(f"{key}.strategy", m.get("strategy"), "a strategy name is required")

        def comp(kind: str, default: str, m: Mapping[str, Any] = m, key: str = key) -> ComponentSpec:
            name = w.typed(f"{key}.{kind}", m.get(kind, default), str)
            options = m.get(f"{kind}_options", {})
            if not isinstance(options, Mapping):
                raise w.error(f"{key}.{kind}_options", options, "must be a table")
            return ComponentSpec(name, dict(options))

        methods.append(MethodSpec(comp("strategy", ""), comp("loss", "ce"),
                                  w.typed(f"{key}.label", m.get("label", ""), str),
                                  comp("trainer", "standard"), comp("mask_source", "none")))
    if not methods and not grids:
        raise ConfigError(f"{w.where}: no methods: give 'strategies' (and 'losses'), [[grids]] or [[methods]]")
    # grids without "*" are known now: expand them into methods (grid methods first, as listed)
    expanded = [g.method(s, lo) for g in grids if g.strategies != "*" and g.losses != "*"
                for s in g.strategies for lo in g.losses]
    grids = [g for g in grids if g.strategies == "*" or g.losses == "*"]
    seen = {m.display for m in methods}
    methods = [m for m in expanded if m.display not in seen] + methods
    labels = [m.display for m in methods]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ConfigError(f"{w.where}: duplicate method label(s) {dupes}; give each [[methods]] a distinct 'label'")
    return methods, grids


def _findings(w: _Where, data: Mapping[str, Any]) -> FindingsSpec:
    table = w.table(data, "findings", {"delta"})
    delta = table.get("delta", FindingsSpec.delta)
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta < 1:
        raise w.error("findings.delta", delta, "must be a number in [0, 1) (the smallest effect of interest, "
                      "in the units of the compared quantity, e.g. 0.02 AULC)")
    return FindingsSpec(delta=float(delta))


def parse_suite(text: str, *, where: str) -> SuiteSpec:
    """Parse and type-check a suite TOML (component names/options are checked when planned)."""
    w = _Where(where)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from exc
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(sorted(_TOP_KEYS))}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise w.error("name", data.get("name"), "a non-empty string is required")
    datasets_raw = data.get("datasets")
    if not isinstance(datasets_raw, list) or not datasets_raw:
        raise w.error("datasets", datasets_raw, "must be a non-empty array of tables ([[datasets]])")
    datasets = tuple(w.component(d, f"datasets[{i}]") for i, d in enumerate(datasets_raw))
    displays = [d.display for d in datasets]
    dupes = sorted({x for x in displays if displays.count(x) > 1})
    if dupes:
        raise w.error("datasets", dupes, "each dataset needs a distinct label")
    methods, grids = _methods(w, data)
    base, overrides = _protocol(w, data)
    track = w.table(data, "track", {"pool_masks"})
    pool_masks = w.typed("track.pool_masks", track.get("pool_masks", "hidden"), PoolMasks)
    evaluation = w.table(data, "evaluation", {"target", "full_data_reference", "metrics"})
    target = w.typed("evaluation.target", evaluation.get("target", "label"), Literal["label", "pred"])
    reference = w.typed("evaluation.full_data_reference", evaluation.get("full_data_reference", False), bool)
    metrics = evaluation.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise w.error("evaluation.metrics", metrics, "must be an array of registered metric names")
    timeout = data.get("strategy_timeout", 600.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise w.error("strategy_timeout", timeout, "must be a positive number of seconds")
    description = w.typed("description", data.get("description", ""), str)
    return SuiteSpec(
        name=data["name"],
        description=description,
        datasets=datasets,
        methods=tuple(methods),
        seeds=_seeds(w, data),
        model=w.component(data.get("model", "small-cnn"), "model"),
        explainer=w.component(data.get("explainer", "gradcam"), "explainer"),
        protocol_base=base,
        protocol_overrides=overrides,
        training=_training(w, data),
        pool_masks=pool_masks,
        eval_target=target,
        full_data_reference=reference,
        metrics=tuple(metrics),
        strategy_timeout=float(timeout),
        grids=tuple(grids),
        source=where,
        tuning=_tuning(w, data),
        findings=_findings(w, data),
    )
