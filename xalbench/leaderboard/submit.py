"""``submit RUN_DIR``: package a finished run as a leaderboard submission.

The submission holds the plugin's own methods plus the built-in ``random+ce`` canary (every
method for the built-ins' own entry, ``--plugin xalbench``): one JSON per cell with the
cell's identity (what determined its result, as the harness recorded it), its split hash,
initial labelled set, per-round metrics and queried indices (each round hashed) and the
AULCs the run reported; and a manifest listing every cell with the canonical hash of its
file, the suite, the plugin, xalbench's version and source hash, and the environment lock.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xalbench.errors import ConfigError
from xalbench.leaderboard import CANARY_METHOD, SCHEMA_VERSION, adapter
from xalbench.leaderboard.adapter import Adapter
from xalbench.leaderboard.canonical import sha256_bytes, sha256_of

if TYPE_CHECKING:
    from xalbench.harness.runtime import Runtime

__all__ = ["submit", "cell_record", "cell_filename", "write_json", "ENV_FIELDS"]

ENV_FIELDS = ("python", "platform", "machine", "torch", "numpy", "device", "threads", "cuda")


def write_json(path: Path, obj: Any) -> None:
    """Reviewable JSON (sorted keys, one-space indent, LF, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n",
                    encoding="utf-8", newline="\n")


def cell_filename(dataset: str, method: str, seed: int) -> str:
    def safe(text: str) -> str:
        return re.sub(r"[^a-z0-9._+@=-]+", "_", text.lower()).strip("_") or "x"

    return f"cells/{safe(dataset)}__{safe(method)}__seed{seed}.json"


def cell_record(cell: adapter.RunCell, installed: Adapter) -> dict[str, Any]:
    """One run cell in the submission's cell format (its metrics those registered in ``installed``)."""
    rounds = [{"round": r["round"], "n_labelled": r["n_labelled"], "queried": r["queried"],
               "queried_sha256": sha256_of(r["queried"]), "metrics": installed.keep_metrics(r["metrics"])}
              for r in cell.rounds]
    aulc = installed.recompute_aulc(rounds)
    for key in aulc:  # the value the run itself reported, where it reported one
        reported = cell.summary.get(f"aulc_{key}")
        if isinstance(reported, float) and reported == reported:
            aulc[key] = reported
    origins = {kind: {"name": cell.components[kind],
                      "distribution": cell.origins.get(kind, {}).get("distribution", ""),
                      "version": cell.origins.get(kind, {}).get("version", "")} for kind in adapter.COMPONENT_KINDS}
    identity = json.loads(json.dumps(cell.identity, default=str))
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": cell.dataset, "method": cell.method, "seed": cell.seed,
        "components": dict(cell.components),
        "identity": identity,
        "identity_sha256": adapter.identity_sha256(cell.identity),
        "split_sha256": cell.split_hash,
        "initial_labelled": cell.initial_labelled,
        "initial_labelled_sha256": sha256_of(cell.initial_labelled),
        "rounds": rounds,
        "aulc": aulc,
        "provenance": {"components": origins, "xalbench_version": cell.xalbench_version,
                       "xalbench_source_sha256": cell.source_hash},
    }


def _plugin_of(cells: list[adapter.RunCell]) -> str:
    dists = sorted({o.get("distribution", "") for c in cells for o in c.origins.values()} - {"xalbench", ""})
    if len(dists) > 1:
        raise ConfigError(f"the run has methods from several plugins ({', '.join(dists)}); choose one with --plugin")
    return dists[0] if dists else "xalbench"


def _owned(cell: adapter.RunCell, plugin: str) -> bool:
    dists = {cell.origins.get(k, {}).get("distribution") for k in adapter.COMPONENT_KINDS}
    return dists == {"xalbench"} if plugin == "xalbench" else plugin in dists


def submit(run_dir: str | Path, *, runtime: Runtime, submitter: str, out: str | Path = "leaderboard/submissions",
           plugin: str | None = None, methods: Sequence[str] | None = None, wheel: str | Path | None = None,
           source_url: str | None = None, deterministic: bool = True, force: bool = False) -> Path:
    """Write ``<out>/<submitter>/<plugin>-<version>/`` from a finished run, its suite and metrics those
    registered in ``runtime``; returns that folder."""
    installed = Adapter(runtime)
    run = adapter.read_run(run_dir)
    try:
        shipped = installed.shipped_suite(run.suite_name)
    except Exception as exc:
        raise ConfigError(f"suite {run.suite_name!r} is not a registered suite ({exc}); the leaderboard takes "
                          "registered suites only") from None
    finished = [c for c in run.cells if c.status == "ok"]
    plugin = plugin or _plugin_of(finished)
    unknown = sorted(set(methods or ()) - {c.method for c in run.cells})
    if unknown:
        raise ConfigError(f"--methods {unknown} are not in the run")
    chosen = {c.method for c in finished if _owned(c, plugin) and (not methods or c.method in methods)}
    if not chosen:
        raise ConfigError(f"the run has no finished method from {plugin!r}; pass --plugin with the distribution "
                          "to submit")
    chosen.add(CANARY_METHOD)
    cells = [c for c in run.cells if c.method in chosen]
    failed = sorted(f"{c.dataset}/{c.method}/seed{c.seed}" for c in cells if c.status not in ("ok", "skipped"))
    if failed:
        raise ConfigError(f"{len(failed)} cell(s) did not finish ({', '.join(failed[:5])}); rerun the same "
                          "`xalbench run` command until every cell is ok")
    ok = [c for c in cells if c.status == "ok"]
    if not any(c.method == CANARY_METHOD for c in ok):
        raise ConfigError(f"the run lacks the {CANARY_METHOD} canary; add it with --strategies random --losses ce")
    builds = {(c.xalbench_version, c.source_hash) for c in ok}
    envs = {json.dumps({k: c.environment.get(k) for k in ENV_FIELDS}, sort_keys=True, default=str) for c in ok}
    if len(builds) != 1 or len(envs) != 1:
        raise ConfigError("the run's cells come from different xalbench builds or environments; submit one "
                          "consistent run (a fresh --out directory)")
    xal_version, xal_source = builds.pop()
    if plugin == "xalbench":
        version = xal_version
    else:
        versions = {o["version"] for c in ok for o in c.origins.values() if o.get("distribution") == plugin}
        if len(versions) != 1:
            raise ConfigError(f"cells ran with different versions of {plugin}: {sorted(versions)}")
        version = versions.pop()
    lock = adapter.environment_lock()
    for dist, ver in (ok[0].environment.get("plugin_distributions") or {}).items():
        key = re.sub(r"[-_.]+", "-", dist).lower()
        if lock.get(key) != ver:
            raise ConfigError(f"the run used {dist} {ver} but {key} {lock.get(key)} is installed here; submit "
                              "from the environment that ran")
    environment: dict[str, Any] = json.loads(envs.pop())
    environment["packages"] = lock

    root = Path(out) / submitter / f"{plugin}-{version}"
    if root.exists():
        if not force:
            raise ConfigError(f"{root} exists; pass --force to replace it")
        shutil.rmtree(root)
    entries, skipped = [], []
    for cell in sorted(cells, key=lambda c: (c.dataset, c.method, c.seed)):
        if cell.status == "skipped":
            item = {"dataset": cell.dataset, "method": cell.method}
            if item not in skipped:
                skipped.append(item)
            continue
        record = cell_record(cell, installed)
        rel = cell_filename(cell.dataset, cell.method, cell.seed)
        write_json(root / rel, record)
        entries.append({"dataset": cell.dataset, "method": cell.method, "seed": cell.seed, "path": rel,
                        "sha256": sha256_of(record)})
    order = [d.display for d in shipped.datasets]
    datasets = sorted({c.dataset for c in cells}, key=lambda d: (order.index(d) if d in order else len(order), d))
    method_rows = {c.method: dict(c.components) for c in cells}
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "submitter": submitter,
        "plugin": {"name": plugin, "version": version,
                   "wheel_sha256": sha256_bytes(Path(wheel).read_bytes()) if wheel else None,
                   "source_url": source_url, "deterministic": bool(deterministic)},
        "suite": {"name": shipped.name, "version": installed.suite_version(shipped.name),
                  "config_sha256": adapter.suite_config_sha256(shipped), "seeds": sorted({c.seed for c in cells}),
                  "datasets": datasets},
        "xalbench_version": xal_version,
        "xalbench_source_sha256": xal_source,
        "environment": environment,
        "environment_sha256": sha256_of(environment),
        "methods": [{"name": m, "components": method_rows[m]} for m in sorted(method_rows)],
        "cells": entries,
        "skipped": skipped,
    }
    write_json(root / "manifest.json", manifest)
    return root
