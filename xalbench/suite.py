"""Suite definitions: TOML files registered through ``register_suites``.

Schema (every table optional except ``name``/``datasets``/methods)::

    name = "smoke"
    description = "what it measures and what was scaled for CPU"
    seeds = [0, 1]
    strategy_timeout = 600.0          # seconds per strategy call
    [model]        name = "small-cnn"   options = { width = 16 }
    [explainer]    name = "gradcam"     # evaluation maps + ctx.cache.saliency
    [protocol]     base = "egal"  initial = 40  rounds = 2  query_size = 20 ...
    [training]     epochs = 8  min_steps = 100  batch_size = 32  lr = 1e-3  optimizer = "adam" ...
    [track]        pool_masks = "hidden" | "visible"
    [evaluation]   target = "label" | "pred"   full_data_reference = false  # true: budget-to-95 %
    [[datasets]]   name = "synth-lesion-2d"  options = { size = 32 }  label = "..."  optional = false
    strategies = ["random", "entropy"]   # or "*" = every registered strategy (inapplicable cells skip)
    losses = ["ce"]                     # grid strategies × losses; "*" = every loss
                                        # explicit [[methods]] are kept alongside a "*" grid
    [[methods]]    label = "EG-AL"  strategy = "egal"  strategy_options = {lam = 0.5}
                   loss = "dice"  loss_options = {alpha = 0.1}

``optional = true`` marks a real dataset that is skipped (one line, not a failure) when
its files are missing. A malformed file raises :class:`ConfigError` naming file and key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from xalbench.errors import ConfigError

__all__ = ["ComponentSpec", "MethodSpec", "TrainingSpec", "SuiteSpec", "SuiteSource", "parse_suite"]


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


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    strategy: ComponentSpec
    loss: ComponentSpec
    label: str = ""

    @property
    def display(self) -> str:
        return self.label or f"{self.strategy.display}+{self.loss.display}"


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
    recalibrate_bn: bool = True  # recompute BatchNorm running statistics on the labelled set after training
    eval_batch_size: int = 256


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
    pool_masks: Literal["hidden", "visible"] = "hidden"
    eval_target: Literal["label", "pred"] = "label"
    full_data_reference: bool = False
    strategy_timeout: float = 600.0
    wildcard_strategies: bool = False
    wildcard_losses: bool = False
    grid_losses: tuple[str, ...] = ()
    source: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteSpec:
        """Inverse of ``dataclasses.asdict`` (as stored in a run's ``run.json``)."""
        def comp(d: dict[str, Any]) -> ComponentSpec:
            return ComponentSpec(d["name"], dict(d.get("options", {})), d.get("label", ""), d.get("optional", False))

        fields = dict(data)
        fields["datasets"] = tuple(comp(d) for d in data["datasets"])
        fields["methods"] = tuple(MethodSpec(comp(m["strategy"]), comp(m["loss"]), m.get("label", ""))
                                  for m in data["methods"])
        fields["model"] = comp(data["model"])
        fields["explainer"] = comp(data["explainer"])
        fields["training"] = TrainingSpec(**data["training"])
        fields["seeds"] = tuple(data["seeds"])
        fields["grid_losses"] = tuple(data.get("grid_losses", ()))
        return cls(**fields)

    def config_hash(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class SuiteSource:
    """What a plugin registers: a suite name plus its TOML (a path or the text itself)."""

    name: str
    path: str | None = None
    text: str | None = None
    summary: str = ""

    def load(self) -> SuiteSpec:
        if self.path is not None:
            try:
                text = Path(self.path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"suite {self.name!r}: cannot read {self.path}: {exc}") from exc
            return parse_suite(text, where=self.path)
        return parse_suite(self.text or "", where=f"<suite {self.name}>")


_TOP_KEYS = {"name", "description", "seeds", "strategy_timeout", "model", "explainer", "protocol",
             "training", "track", "evaluation", "datasets", "strategies", "losses", "methods"}


def _component(value: Any, where: str, key: str) -> ComponentSpec:
    if isinstance(value, str):
        return ComponentSpec(value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: key {key!r} must be a name or a table with 'name', got {value!r}")
    extra = set(value) - {"name", "options", "label", "optional"}
    if extra:
        raise ConfigError(f"{where}: key {key!r} has unknown field(s) {sorted(extra)}; use name/options/label/optional")
    if "name" not in value or not isinstance(value["name"], str):
        raise ConfigError(f"{where}: key {key!r} needs a string 'name'")
    options = value.get("options", {})
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where}: key {key}.options must be a table")
    return ComponentSpec(value["name"], dict(options), str(value.get("label", "")), bool(value.get("optional", False)))


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: key {key!r} must be a table")
    return dict(value)


def parse_suite(text: str, *, where: str) -> SuiteSpec:
    """Parse and validate a suite TOML (component names are checked later, against the registry)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from exc
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(sorted(_TOP_KEYS))}")
    if not isinstance(data.get("name"), str):
        raise ConfigError(f"{where}: key 'name' (a string) is required")
    datasets_raw = data.get("datasets")
    if not isinstance(datasets_raw, list) or not datasets_raw:
        raise ConfigError(f"{where}: key 'datasets' must be a non-empty array of tables")
    datasets = tuple(_component(d, where, f"datasets[{i}]") for i, d in enumerate(datasets_raw))

    strategies_raw = data.get("strategies", [])
    losses_raw = data.get("losses", ["ce"])
    wild_s = strategies_raw == "*"
    wild_l = losses_raw == "*"
    methods: list[MethodSpec] = []
    if not wild_s:
        if not isinstance(strategies_raw, list):
            raise ConfigError(f"{where}: key 'strategies' must be an array or \"*\"")
        if not wild_l and not isinstance(losses_raw, list):
            raise ConfigError(f"{where}: key 'losses' must be an array or \"*\"")
        for i, s in enumerate(strategies_raw):
            for j, loss in enumerate([] if wild_l else losses_raw):
                methods.append(MethodSpec(_component(s, where, f"strategies[{i}]"), _component(loss, where, f"losses[{j}]")))
    for i, m in enumerate(data.get("methods", [])):
        key = f"methods[{i}]"
        if not isinstance(m, Mapping):
            raise ConfigError(f"{where}: key {key!r} must be a table")
        extra = set(m) - {"label", "strategy", "strategy_options", "loss", "loss_options"}
        if extra:
            raise ConfigError(f"{where}: key {key!r} has unknown field(s) {sorted(extra)}")
        if not isinstance(m.get("strategy"), str):
            raise ConfigError(f"{where}: key {key}.strategy (a name) is required")
        methods.append(MethodSpec(
            ComponentSpec(m["strategy"], dict(m.get("strategy_options", {}))),
            ComponentSpec(m.get("loss", "ce"), dict(m.get("loss_options", {}))),
            str(m.get("label", "")),
        ))
    if not methods and not wild_s:
        raise ConfigError(f"{where}: no methods: give 'strategies' (and 'losses') or [[methods]]")
    labels = [m.display for m in methods]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ConfigError(f"{where}: duplicate method label(s) {dupes}; give each [[methods]] a distinct 'label'")

    seeds = data.get("seeds", [0, 1])
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{where}: key 'seeds' must be an array of integers")
    protocol = _table(data, "protocol", where)
    base = protocol.pop("base", "aeig")
    training_raw = _table(data, "training", where)
    valid_training = {f.name for f in dataclasses.fields(TrainingSpec)}
    bad = sorted(set(training_raw) - valid_training)
    if bad:
        raise ConfigError(f"{where}: unknown key(s) training.{bad}; valid: {', '.join(sorted(valid_training))}")
    try:
        training = TrainingSpec(**training_raw)
    except TypeError as exc:
        raise ConfigError(f"{where}: training: {exc}") from exc
    track = _table(data, "track", where)
    pool_masks = track.pop("pool_masks", "hidden")
    if track or pool_masks not in ("hidden", "visible"):
        raise ConfigError(f"{where}: key 'track' takes only pool_masks = \"hidden\" | \"visible\"")
    evaluation = _table(data, "evaluation", where)
    target = evaluation.pop("target", "label")
    reference = evaluation.pop("full_data_reference", False)
    if evaluation or target not in ("label", "pred") or not isinstance(reference, bool):
        raise ConfigError(f"{where}: key 'evaluation' takes only target = \"label\" | \"pred\" and "
                          "full_data_reference = true | false")
    timeout = data.get("strategy_timeout", 600.0)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{where}: key 'strategy_timeout' must be a positive number of seconds")
    return SuiteSpec(
        name=data["name"],
        description=str(data.get("description", "")),
        datasets=datasets,
        methods=tuple(methods),
        seeds=tuple(seeds),
        model=_component(data.get("model", "small-cnn"), where, "model"),
        explainer=_component(data.get("explainer", "gradcam"), where, "explainer"),
        protocol_base=str(base),
        protocol_overrides=protocol,
        training=training,
        pool_masks=pool_masks,
        eval_target=target,
        full_data_reference=reference,
        strategy_timeout=float(timeout),
        wildcard_strategies=wild_s,
        wildcard_losses=wild_l,
        grid_losses=tuple(x if isinstance(x, str) else x.get("name", "") for x in losses_raw) if not wild_l else (),
        source=where,
    )
