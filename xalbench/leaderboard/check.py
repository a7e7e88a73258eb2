"""``check PATH``: validate a submission folder; every rejection carries a reason code.

Order: folder (symlinks, stray files, sizes) → manifest schema → layout → suite (supported,
config hash, version pin, seeds) → datasets (shipped labels, split hashes) → methods
(slugs, canary, provenance, built-in shadowing) → grid (exact datasets × methods × seeds,
declared skips re-derived where the components are installed) → each cell (strict schema,
canonical hash, identity, config and split hash, initial set, contiguous rounds on the
budget, disjoint in-pool queries, metric bounds, AULC recomputed) → the canary band.

Manifest-level failures stop the check; cell-level failures are collected (up to
``max_reasons``) so a submitter sees them together. The page shows only the AULCs
recomputed here (:class:`CheckedCell.aulc`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xalbench.leaderboard import CANARY_METHOD, names, paths
from xalbench.leaderboard.adapter import (
    Adapter,
    DatasetFacts,
    comparable_identity,
    dataset_spec,
    identity_sha256,
    method_display,
    method_spec,
    suite_config_sha256,
)
from xalbench.leaderboard.canonical import sha256_of
from xalbench.leaderboard.reasons import Rejection
from xalbench.leaderboard.schema import LIMITS, load_strict, validate_cell, validate_manifest

if TYPE_CHECKING:
    from xalbench.harness.runtime import Runtime

__all__ = ["CheckedCell", "CheckedSubmission", "CheckReport", "board_seeds", "check_submission", "load_reference",
           "AULC_TOLERANCE"]

AULC_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class CheckedCell:
    dataset: str
    method: str
    seed: int
    aulc: dict[str, float | None]  # recomputed
    final: dict[str, float | None]  # last round's metrics
    rounds: list[dict[str, Any]]
    pool_masks_visible: bool = False  # the strategy saw the pool's ROI masks (an as-needed track)


@dataclasses.dataclass(frozen=True)
class CheckedSubmission:
    root: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    cells: list[CheckedCell]
    own_methods: list[str]  # methods this submission contributes (all for the built-ins' entry)
    suite: Any
    skipped: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # dataset, method, reason


@dataclasses.dataclass
class CheckReport:
    root: Path
    rejections: list[Rejection]
    submission: CheckedSubmission | None = None

    @property
    def ok(self) -> bool:
        return not self.rejections

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.rejections]

    def lines(self) -> list[str]:
        if self.ok:
            sub = self.submission
            assert sub is not None
            return [f"{self.root}: accepted ({len(sub.cells)} cells, manifest sha256 {sub.manifest_sha256[:12]})"]
        return [f"{self.root}: rejected"] + [f"  {r}" for r in self.rejections]


def load_reference(path: Path) -> dict[str, Any]:
    """The maintainers' reference file: supported suites, version pins, canary bands."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} (the leaderboard reference file) does not exist")
    return json.loads(path.read_text(encoding="utf-8"))


def check_submission(root: str | Path, *, reference: dict[str, Any], runtime: Runtime, data_root: str | None = None,
                     max_reasons: int = 25) -> CheckReport:
    """Check the submission folder ``root`` against ``reference`` and the components installed in ``runtime``."""
    root = Path(root)
    report = CheckReport(root, [])
    try:
        report.submission = _check(root, reference, _Installed.of(Adapter(runtime), data_root), report.rejections,
                                   max_reasons)
    except Rejection as exc:
        report.rejections.append(exc)
    if report.rejections:
        report.submission = None
    return report


class _Collector:
    def __init__(self, sink: list[Rejection], limit: int) -> None:
        self.sink, self.limit = sink, limit

    def __enter__(self) -> _Collector:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if isinstance(exc, Rejection):
            self.sink.append(exc)
            if len(self.sink) >= self.limit:
                raise Rejection(exc.code, f"{exc.message} (stopping after {self.limit} problems)")
            return True
        return False


@dataclasses.dataclass(frozen=True)
class _Installed:
    """What a submission is checked against here: the installed components (``adapter``), the built-in
    component names registered here, the names a submitted name may not imitate, the data root."""

    adapter: Adapter
    builtins: set[str]
    screened: frozenset[str]
    data_root: str | None

    @classmethod
    def of(cls, adapter: Adapter, data_root: str | None) -> _Installed:
        builtins = adapter.builtin_names()
        return cls(adapter, builtins, names.builtin_names(builtins), data_root)


def _check(root: Path, reference: dict[str, Any], installed: _Installed, sink: list[Rejection],
           limit: int) -> CheckedSubmission | None:
    """The sections in order; each returns what the later ones check against."""
    manifest, manifest_sha = _check_files(root, installed)
    ref, shipped = _check_suite(manifest, reference, installed)
    facts = _check_datasets(manifest["suite"]["datasets"], shipped, installed)
    methods, specs = _check_methods(manifest["methods"], shipped, installed)
    skipped = _check_grid(manifest, shipped, board_seeds(ref, shipped), facts, specs, installed)
    own = _own_methods(manifest, methods, installed.builtins)
    checked = _check_cells(root, manifest, shipped, facts, methods, specs, installed, _Collector(sink, limit))
    if sink:
        return None
    _check_canary(ref.get("canary") or {}, facts, checked)
    return CheckedSubmission(root, manifest, manifest_sha, checked, own, shipped, skipped)


def _check_files(root: Path, installed: _Installed) -> tuple[dict[str, Any], str]:
    """The folder (symlinks, sizes, layout), the manifest's schema, and exactly the listed files present;
    returns the manifest and its canonical hash."""
    files = paths.scan_folder(root)
    raw = load_strict(root / "manifest.json", max_bytes=LIMITS.manifest_bytes, where="manifest.json")
    manifest = validate_manifest(raw, installed.screened)
    plugin = manifest["plugin"]
    paths.check_layout(root, manifest["submitter"], plugin["name"], plugin["version"])
    listed: dict[str, dict[str, Any]] = {}
    lowered: set[str] = set()
    for i, entry in enumerate(manifest["cells"]):
        paths.check_manifest_path(root, entry["path"], f"manifest.json cells[{i}].path")
        if entry["path"].casefold() in lowered:
            raise Rejection("path-case-collision", f"cells[{i}].path {entry['path']!r} is listed twice "
                                                   "(or differs only in case)")
        lowered.add(entry["path"].casefold())
        listed[entry["path"]] = entry
    stray = sorted(set(files) - set(listed) - {"manifest.json"})
    if stray:
        raise Rejection("path-unexpected-file", f"file(s) not listed in the manifest: {stray[:5]}")
    missing = sorted(set(listed) - set(files))
    if missing:
        raise Rejection("file-missing", f"cell file(s) listed in the manifest are missing: {missing[:5]}")
    return manifest, sha256_of(raw)


def board_seeds(ref: dict[str, Any], shipped: Any) -> list[int]:
    """The seeds every submission of a suite runs: the board's own (``seeds`` in the suite's entry of
    reference.json, chosen by the maintainers for the intervals they want) or else the suite's."""
    return sorted(int(s) for s in (ref.get("seeds") or shipped.seeds))


def _check_suite(manifest: dict[str, Any], reference: dict[str, Any],
                 installed: _Installed) -> tuple[dict[str, Any], Any]:
    """Supported by the board, the shipped suite's config hash and version, the pins, the seeds, the
    environment hash; returns the board's reference entry of the suite and the suite as shipped."""
    suite_meta = manifest["suite"]
    ref = (reference.get("suites") or {}).get(suite_meta["name"])
    if ref is None:
        raise Rejection("suite-unsupported", f"suite {suite_meta['name']!r} is not on the board; supported: "
                                             f"{sorted(reference.get('suites') or {})}")
    try:
        shipped = installed.adapter.shipped_suite(suite_meta["name"])
    except Exception as exc:
        raise Rejection("suite-unsupported", f"suite {suite_meta['name']!r} is not registered here: {exc}") from None
    if suite_meta["config_sha256"] != suite_config_sha256(shipped):
        raise Rejection("suite-hash-mismatch", f"suite config hash {suite_meta['config_sha256'][:12]}… differs from "
                                               f"the shipped {suite_meta['name']!r} suite's "
                                               f"{suite_config_sha256(shipped)[:12]}…")
    version = installed.adapter.suite_version(suite_meta["name"])
    if suite_meta["version"] != version:
        raise Rejection("version-mismatch", f"suite version {suite_meta['version']} differs from the shipped {version}")
    pinned = ref.get("xalbench_version")
    if pinned is not None and manifest["xalbench_version"] != pinned:
        raise Rejection("version-mismatch", f"xalbench {manifest['xalbench_version']} ran this; the board pins "
                                            f"{pinned} for suite {suite_meta['name']!r}")
    pinned_src = ref.get("xalbench_source_sha256")
    if pinned_src is not None and manifest["xalbench_source_sha256"] != pinned_src:
        raise Rejection("xalbench-modified", f"xalbench source hash {manifest['xalbench_source_sha256']} differs "
                                             f"from the release's {pinned_src}")
    seeds = board_seeds(ref, shipped)
    if sorted(suite_meta["seeds"]) != seeds:
        whose = "the board's seeds for this suite (reference.json)" if ref.get("seeds") else "the suite's"
        raise Rejection("grid-seed", f"seeds {suite_meta['seeds']} differ from {whose} {seeds}")
    if manifest["environment_sha256"] != sha256_of(manifest["environment"]):
        raise Rejection("provenance-mismatch", "environment_sha256 does not match the environment block")
    return ref, shipped


def _check_datasets(labels: list[str], shipped: Any, installed: _Installed) -> dict[str, DatasetFacts]:
    """The suite's labels, every required one present, each loadable here; returns each one's facts."""
    unknown = sorted(set(labels) - {d.display for d in shipped.datasets})
    if unknown:
        raise Rejection("grid-extra-cell", f"dataset(s) {unknown} are not in suite {shipped.name!r}")
    absent = [d.display for d in shipped.datasets if not d.optional and d.display not in labels]
    if absent:
        raise Rejection("grid-missing-cell", f"required dataset(s) {absent} are missing")
    facts: dict[str, DatasetFacts] = {}
    for label in labels:
        spec = dataset_spec(shipped, label)
        if not installed.adapter.dataset_available(spec, installed.data_root):
            raise Rejection("dataset-unavailable", f"dataset {label!r} cannot be loaded here to check its splits")
        facts[label] = installed.adapter.dataset_facts(spec, installed.data_root)
    return facts


def _check_methods(listed: list[dict[str, Any]], shipped: Any,
                   installed: _Installed) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Names (the suite's label, else the harness's display name), the canary, no shadowed built-in;
    returns the methods and their specs by name."""
    methods: dict[str, dict[str, Any]] = {}
    specs: dict[str, Any] = {}
    shipped_methods = {m.display: m for m in shipped.methods}
    for i, m in enumerate(listed):
        if m["name"] in methods:
            raise Rejection("method-invalid", f"method {m['name']!r} is listed twice")
        known = shipped_methods.get(m["name"])
        if known is not None:
            made_of = {k: getattr(known, k).name for k in m["components"]}
            if made_of != m["components"]:
                raise Rejection("method-invalid", f"methods[{i}] {m['name']!r} is the suite's method made of {made_of}")
        elif m["name"] != method_display(m["components"]):
            raise Rejection("method-invalid", f"methods[{i}] must be named {method_display(m['components'])!r} "
                                              f"(its components, default options), not {m['name']!r}")
        methods[m["name"]] = m
        specs[m["name"]] = method_spec(shipped, m["name"], m["components"])
    if CANARY_METHOD not in methods:
        raise Rejection("canary-missing", f"the submission must include the built-in {CANARY_METHOD} canary")
    for m in methods.values():
        for kind, name in m["components"].items():
            origin = installed.adapter.component_origin(kind, name)
            if name in installed.builtins and (origin is None or origin[0] != "xalbench"):
                raise Rejection("name-shadows-builtin", f"method {m['name']!r}: {kind} {name!r} is a built-in name")
    return methods, specs


def _check_grid(manifest: dict[str, Any], shipped: Any, seeds: list[int], facts: dict[str, DatasetFacts],
                specs: dict[str, Any], installed: _Installed) -> list[tuple[str, str, str]]:
    """Exactly datasets × methods × the board's seeds, less the declared skips, which the harness's own n/a
    reasons must confirm where the components are installed; returns the skips with their reasons."""
    skipped = {(s["dataset"], s["method"]) for s in manifest["skipped"]}
    for d, m in sorted(skipped):
        if d not in facts or m not in specs:
            raise Rejection("grid-extra-cell", f"skipped cell {d}/{m} is outside the grid")
        if m == CANARY_METHOD:
            raise Rejection("grid-missing-cell", f"the canary cannot be skipped ({d})")
    reasons: dict[tuple[str, str], str] = {}
    for d in facts:
        for m in specs:
            why = installed.adapter.skip_reason(shipped, dataset_spec(shipped, d), specs[m], facts[d], specs.values())
            runs = None if why is None else not why
            if why:
                reasons[(d, m)] = why
            if runs is True and (d, m) in skipped:
                raise Rejection("grid-missing-cell", f"{m} runs on {d} (the harness does not skip it); "
                                                     "its cells are missing")
            if runs is False and (d, m) not in skipped:
                raise Rejection("grid-extra-cell", f"the harness skips {m} on {d}; the submission has cells for it")
    expected = {(d, m, s) for d in facts for m in specs for s in seeds if (d, m) not in skipped}
    counts = Counter((e["dataset"], e["method"], e["seed"]) for e in manifest["cells"])
    dupes = sorted(k for k, v in counts.items() if v > 1)
    if dupes:
        raise Rejection("grid-duplicate-cell", f"cell(s) listed twice: {dupes[:3]}")
    for d, m, s in sorted(counts):
        if s not in seeds:
            raise Rejection("grid-seed", f"cell {d}/{m} has seed {s}, which is not one of the suite's seeds {seeds}")
        if (d, m, s) not in expected:
            raise Rejection("grid-extra-cell", f"cell {d}/{m}/seed {s} is not in the grid")
    lacking = sorted(expected - set(counts))
    if lacking:
        raise Rejection("grid-missing-cell", f"{len(lacking)} cell(s) missing, e.g. {lacking[:3]}")
    return [(d, m, reasons.get((d, m), "skipped by the harness")) for d, m in sorted(skipped)]


def _check_cells(root: Path, manifest: dict[str, Any], shipped: Any, facts: dict[str, DatasetFacts],
                 methods: dict[str, dict[str, Any]], specs: dict[str, Any], installed: _Installed,
                 collect: _Collector) -> list[CheckedCell]:
    """Every cell (:func:`_check_cell`), one metric set per dataset; failures are collected, not raised."""
    checked: list[CheckedCell] = []
    metric_sets: dict[str, frozenset[str]] = {}
    for entry in sorted(manifest["cells"], key=lambda e: (e["dataset"], e["method"], e["seed"])):
        with collect:
            cell = _check_cell(root, entry, manifest, methods[entry["method"]], specs[entry["method"]], shipped,
                               facts[entry["dataset"]], installed)
            keys = frozenset(cell.rounds[0]["metrics"]) if cell.rounds else frozenset()
            first = metric_sets.setdefault(entry["dataset"], keys)
            if keys != first:
                raise Rejection("metric-set", f"{entry['path']}: metrics {sorted(keys)} differ from other cells of "
                                              f"{entry['dataset']} ({sorted(first)})")
            checked.append(cell)
    return checked


def _check_canary(bands: dict[str, Any], facts: dict[str, DatasetFacts], checked: list[CheckedCell]) -> None:
    """The canary's mean AULC over seeds inside the reference band, on every dataset."""
    for d in facts:
        band = bands.get(d)
        if band is None:
            raise Rejection("suite-unsupported", f"no canary reference band for dataset {d!r}")
        for key, (lo, hi) in band.items():
            values = [c.aulc.get(key) for c in checked if c.dataset == d and c.method == CANARY_METHOD]
            if any(v is None for v in values) or not values:
                raise Rejection("canary-out-of-band", f"canary AULC_{key} on {d} is undefined")
            mean = math.fsum(values) / len(values)  # type: ignore[arg-type]
            if not lo <= mean <= hi:
                raise Rejection("canary-out-of-band", f"canary {CANARY_METHOD} AULC_{key} on {d} is {mean:.4f}, "
                                                      f"outside the reference band [{lo}, {hi}]")


def _own_methods(manifest: dict[str, Any], methods: dict[str, dict[str, Any]], builtins: set[str]) -> list[str]:
    """Methods the submission contributes: all for the built-ins' entry, else those with a component
    that is not built in (the canary and other built-in methods are context)."""
    if manifest["plugin"]["name"] == "xalbench":
        return sorted(methods)
    own = sorted(m for m, rec in methods.items() if any(n not in builtins for n in rec["components"].values()))
    if not own:
        raise Rejection("method-invalid", f"no method uses a component of {manifest['plugin']['name']!r}")
    return own


def _check_cell(root: Path, entry: dict[str, Any], manifest: dict[str, Any], method: dict[str, Any], spec: Any,
                shipped: Any, facts: DatasetFacts, installed: _Installed) -> CheckedCell:
    adapter = installed.adapter
    where = entry["path"]
    raw = load_strict(root / entry["path"], max_bytes=LIMITS.cell_bytes, where=where)
    cell = validate_cell(raw, where, installed.screened)
    if sha256_of(raw) != entry["sha256"]:
        raise Rejection("cell-hash-mismatch", f"{where}: canonical SHA-256 {sha256_of(raw)[:12]}… differs from the "
                                              f"manifest's {entry['sha256'][:12]}…")
    ident = (cell["dataset"], cell["method"], cell["seed"])
    if ident != (entry["dataset"], entry["method"], entry["seed"]):
        raise Rejection("cell-identity-mismatch", f"{where} holds {ident}, the manifest lists it as "
                                                  f"{(entry['dataset'], entry['method'], entry['seed'])}")
    if cell["components"] != method["components"]:
        raise Rejection("cell-identity-mismatch", f"{where}: components {cell['components']} differ from method "
                                                  f"{method['name']!r}")
    _check_provenance(cell, manifest, where, installed.builtins)
    dataset = dataset_spec(shipped, cell["dataset"])
    identity = cell["identity"]
    if identity_sha256(identity) != cell["identity_sha256"]:
        raise Rejection("cell-hash-mismatch", f"{where}: identity_sha256 does not match the identity")
    expected = adapter.expected_identity(shipped, dataset, spec, cell["seed"], facts, identity)
    if comparable_identity(identity) != expected:
        diff = sorted(k for k in set(expected) | set(identity) if k not in ("sources", "threads", "device")
                      and expected.get(k) != identity.get(k))
        reason = "cell-identity-mismatch" if set(diff) <= {"seed", "dataset", "method"} else "suite-hash-mismatch"
        raise Rejection(reason, f"{where}: the cell ran another configuration than the shipped suite's "
                                f"{cell['dataset']} × {cell['method']} × seed {cell['seed']} (differs in {diff})")
    if cell["split_sha256"] != facts.split_hash:
        raise Rejection("split-hash-mismatch", f"{where}: split hash {cell['split_sha256'][:12]}… differs from the "
                                               f"shipped data's {facts.split_hash[:12]}…")
    if sha256_of(cell["initial_labelled"]) != cell["initial_labelled_sha256"]:
        raise Rejection("query-hash-mismatch", f"{where}: initial_labelled_sha256 does not match the indices")
    if cell["initial_labelled"] != adapter.initial_labelled(shipped, dataset, cell["seed"], facts):
        raise Rejection("initial-set-mismatch", f"{where}: the initial labelled set is not the harness's for seed "
                                                f"{cell['seed']} (a cell of another seed?)")
    _check_rounds(adapter, cell, shipped, facts, where)
    aulc = adapter.recompute_aulc(cell["rounds"])
    if set(aulc) != set(cell["aulc"]):
        raise Rejection("aulc-mismatch", f"{where}: AULC keys {sorted(cell['aulc'])} differ from the metrics' "
                                         f"{sorted(aulc)}")
    for key, value in aulc.items():
        stored = cell["aulc"][key]
        if (value is None) != (stored is None) or (value is not None and abs(value - stored) > AULC_TOLERANCE):
            raise Rejection("aulc-mismatch", f"{where}: AULC_{key} = {stored} but the rounds give {value}")
    visible = bool((identity.get("track") or {}).get("pool_masks_visible", False))
    return CheckedCell(cell["dataset"], cell["method"], cell["seed"], aulc, dict(cell["rounds"][-1]["metrics"]),
                       cell["rounds"], visible)


def _check_provenance(cell: dict[str, Any], manifest: dict[str, Any], where: str, builtins: set[str]) -> None:
    plugin = manifest["plugin"]
    prov = cell["provenance"]
    if (prov["xalbench_version"], prov["xalbench_source_sha256"]) != (manifest["xalbench_version"],
                                                                       manifest["xalbench_source_sha256"]):
        raise Rejection("provenance-mismatch", f"{where}: xalbench build differs from the manifest's")
    for kind, comp in prov["components"].items():
        if comp["name"] != cell["components"][kind]:
            raise Rejection("provenance-mismatch", f"{where}: provenance {kind} {comp['name']!r} is not "
                                                   f"{cell['components'][kind]!r}")
        if comp["distribution"] == "xalbench":
            if comp["name"] not in builtins:
                raise Rejection("provenance-mismatch", f"{where}: {kind} {comp['name']!r} is not a built-in")
            if comp["version"] != manifest["xalbench_version"]:
                raise Rejection("provenance-mismatch", f"{where}: built-in {kind} version {comp['version']} is not "
                                                       f"xalbench {manifest['xalbench_version']}")
            continue
        if comp["name"] in builtins:
            raise Rejection("name-shadows-builtin", f"{where}: {comp['distribution']} registers {kind} "
                                                    f"{comp['name']!r}, a built-in name")
        if (comp["distribution"], comp["version"]) != (plugin["name"], plugin["version"]):
            raise Rejection("provenance-mismatch", f"{where}: {kind} {comp['name']!r} comes from "
                                                   f"{comp['distribution']} {comp['version']}, not the submitted "
                                                   f"{plugin['name']} {plugin['version']}")


def _check_rounds(adapter: Adapter, cell: dict[str, Any], shipped: Any, facts: DatasetFacts, where: str) -> None:
    n_pool = facts.n_pool
    n_init, k, n_rounds = adapter.budget(shipped, n_pool)
    rounds = cell["rounds"]
    labelled = set(cell["initial_labelled"])
    if len(labelled) != len(cell["initial_labelled"]) or any(not 0 <= i < n_pool for i in labelled):
        raise Rejection("query-out-of-pool", f"{where}: the initial set repeats indices or leaves the pool")
    expected_n = len(labelled)
    if expected_n != n_init:
        raise Rejection("round-budget", f"{where}: {expected_n} initial samples; the budget gives {n_init}")
    table = adapter.metrics
    keys: set[str] | None = None
    for r, rec in enumerate(rounds):
        if rec["round"] != r:
            raise Rejection("round-sequence", f"{where}: round {rec['round']} at position {r} (rounds must be 0, 1, …)")
        if r > n_rounds:
            raise Rejection("round-sequence", f"{where}: {len(rounds)} rounds; the budget has {n_rounds + 1}")
        if rec["n_labelled"] != expected_n:
            raise Rejection("round-budget", f"{where}: round {r} has {rec['n_labelled']} labelled; the budget gives "
                                            f"{expected_n}")
        remaining = n_pool - expected_n
        want = min(k, remaining) if r < n_rounds else 0
        if len(rec["queried"]) != want:
            raise Rejection("round-budget", f"{where}: round {r} queried {len(rec['queried'])}; the budget asks "
                                            f"{want}")
        if sha256_of(rec["queried"]) != rec["queried_sha256"]:
            raise Rejection("query-hash-mismatch", f"{where}: round {r}'s queried_sha256 does not match its indices")
        for i in rec["queried"]:
            if not 0 <= i < n_pool:
                raise Rejection("query-out-of-pool", f"{where}: round {r} queried index {i}; the pool has {n_pool}")
            if i in labelled:
                raise Rejection("query-duplicate", f"{where}: round {r} queried index {i}, which is already labelled")
            labelled.add(i)
        expected_n += len(rec["queried"])
        present = set(rec["metrics"])
        unknown = sorted(present - set(table))
        if unknown:
            raise Rejection("metric-unknown", f"{where}: round {r} reports metric(s) {unknown} the suite does not "
                                              "compute")
        if keys is not None and present != keys:
            raise Rejection("metric-set", f"{where}: round {r} reports {sorted(present)}, round 0 {sorted(keys)}")
        keys = present
        for name, value in rec["metrics"].items():
            bounds = table[name].bounds
            if value is not None and bounds is not None and not bounds[0] <= value <= bounds[1]:
                raise Rejection("metric-range", f"{where}: round {r} {name} = {value} is outside {list(bounds)}")
        if remaining == 0:
            if r != len(rounds) - 1:
                raise Rejection("round-sequence", f"{where}: rounds continue after the pool is exhausted")
            break
    else:
        if len(rounds) != n_rounds + 1:
            raise Rejection("round-sequence", f"{where}: {len(rounds)} rounds; the budget has {n_rounds + 1}")
    if "accuracy" not in (keys or set()):
        raise Rejection("metric-set", f"{where}: the rounds do not report accuracy")
