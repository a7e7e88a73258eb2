"""``verify PATH``: re-run a sample of a submission's cells and run its methods on held-out data.

1. **Check** the submission (a rejected one is not verified).
2. **Sample** ``n`` of the submission's own cells, ranked by SHA-256(manifest hash + cell id), so the
   sample is fixed by the submission's content and unknown before it is final.
3. **Re-run** them with the installed plugin (which must be the submitted version) through
   :func:`rerun.run_cells`. *Exact* mode (plugin declared deterministic and the environment
   matches the submission's: Python, torch, numpy, machine, device, threads): every round's
   queried-index hash must be identical. Otherwise *tolerance* mode: every per-round metric
   within ``metric_tol`` and every AULC within ``aulc_tol`` (defaults 0.02 / 0.01).
4. **Held-out data**: each sampled (dataset, method) whose dataset is an embedded generator runs
   on all suite seeds, with the canary, on data generated from a seed drawn from the maintainer
   secret (HMAC-SHA256 of the suite and dataset). With Δ = AULC(method) − AULC(random+ce) on the
   same seeds, the entry is flagged when Δ_public − Δ_held-out exceeds ``margin`` (default 0.10):
   a method that learnt the public data's labels loses its edge on data it has never seen.
   Held-out cells are cached in ``workdir/held-out`` (by the harness's cell identities), so the
   canary runs once per dataset and seed for all verifications; keep ``workdir`` private — its files
   name the held-out data seeds.
5. **Record** ``verified`` or ``flagged`` (with reasons) and the held-out scores beside the
   submitted ones in ``<board>/verifications/<submitter>/<plugin>-<version>.json``; the record
   carries the manifest hash, so editing the submission afterwards makes it ``self-reported``.
   The held-out seeds are never written anywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xalbench.errors import ConfigError
from xalbench.leaderboard import CANARY_METHOD, SCHEMA_VERSION, adapter
from xalbench.leaderboard.check import CheckedCell, CheckedSubmission, check_submission
from xalbench.leaderboard.rerun import SECRET_ENV, CellRequest, run_cells
from xalbench.leaderboard.submit import cell_record, write_json

__all__ = ["VerifySettings", "verify", "sample_cells", "held_out_seed", "read_secret", "record_path"]

_ENV_KEY = ("python", "torch", "numpy", "machine", "device", "threads")


@dataclasses.dataclass(frozen=True)
class VerifySettings:
    cells: int = 2
    metric_tol: float = 0.02
    aulc_tol: float = 0.01
    margin: float = 0.10
    primary: str = "acc"
    timeout: float | None = None


def read_secret(secret_file: str | None) -> bytes:
    """The maintainer secret from ``--secret-file`` or ``$XALBENCH_LEADERBOARD_SECRET`` (≥ 16 bytes)."""
    if secret_file:
        data = Path(secret_file).read_bytes().strip()
    else:
        data = os.environ.get(SECRET_ENV, "").encode()
    if len(data) < 16:
        raise ConfigError(f"verify needs the maintainer secret (≥ 16 bytes) in ${SECRET_ENV} or --secret-file; "
                          "it never goes into the repository")
    return data


def held_out_seed(secret: bytes, suite: str, dataset: str, public: int) -> int:
    digest = hmac.new(secret, f"xalbench-leaderboard/{suite}/{dataset}".encode(), hashlib.sha256).hexdigest()
    seed = int(digest[:8], 16) & 0x7FFFFFFF
    return seed + 1 if seed == public else seed


def sample_cells(sub: CheckedSubmission, n: int) -> list[CheckedCell]:
    own = [c for c in sub.cells if c.method in sub.own_methods] or list(sub.cells)

    def rank(c: CheckedCell) -> str:
        return hashlib.sha256(f"{sub.manifest_sha256}/{c.dataset}/{c.method}/{c.seed}".encode()).hexdigest()

    return sorted(own, key=rank)[: max(1, n)]


def record_path(board: Path, manifest: dict[str, Any]) -> Path:
    return board / "verifications" / manifest["submitter"] / f"{manifest['plugin']['name']}-{manifest['plugin']['version']}.json"


def _request(sub: CheckedSubmission, dataset: str, method: str, seed: int) -> CellRequest:
    rec = next(m for m in sub.manifest["methods"] if m["name"] == method)
    return CellRequest(dataset, method, dict(rec["components"]), seed)


def _compare(submitted: CheckedCell, rerun: dict[str, Any], exact: bool, s: VerifySettings) -> tuple[bool, str]:
    mine, theirs = rerun["rounds"], submitted.rounds
    if len(mine) != len(theirs):
        return False, f"{len(mine)} rounds re-run, {len(theirs)} submitted"
    if exact:
        for a, b in zip(mine, theirs, strict=True):
            if a["queried_sha256"] != b["queried_sha256"]:
                return False, f"round {a['round']}: queried indices differ"
        return True, "queried-index hashes identical"
    worst = 0.0
    for a, b in zip(mine, theirs, strict=True):
        for name in set(a["metrics"]) | set(b["metrics"]):
            x, y = a["metrics"].get(name), b["metrics"].get(name)
            if (x is None) != (y is None):
                return False, f"round {a['round']} {name}: defined in one run only"
            if x is not None and y is not None:
                worst = max(worst, abs(x - y))
                if abs(x - y) > s.metric_tol:
                    return False, f"round {a['round']} {name}: {y:.4f} submitted, {x:.4f} re-run"
    for key, value in adapter.recompute_aulc(mine).items():
        other = submitted.aulc.get(key)
        if value is not None and other is not None and abs(value - other) > s.aulc_tol:
            return False, f"AULC_{key}: {other:.4f} submitted, {value:.4f} re-run"
    return True, f"metrics within tolerance (max |Δ| {worst:.4f})"


def _mean(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return math.fsum(xs) / len(xs) if xs and len(xs) == len(values) else None


def verify(root: str | Path, *, reference: dict[str, Any], board: str | Path, secret: bytes,
           settings: VerifySettings = VerifySettings(), data_root: str | None = None,
           workdir: str | Path | None = None, write: bool = True) -> dict[str, Any]:
    """Verify one submission; returns (and by default writes) its verification record."""
    report = check_submission(root, reference=reference, data_root=data_root)
    if not report.ok or report.submission is None:
        raise ConfigError("the submission does not pass `check`; fix it first: " + "; ".join(map(str, report.rejections)))
    sub = report.submission
    manifest = sub.manifest
    plugin = manifest["plugin"]
    shipped = sub.suite
    sample = sample_cells(sub, settings.cells)
    for cell in sample:
        req = _request(sub, cell.dataset, cell.method, cell.seed)
        for kind, name in req.components.items():
            origin = adapter.component_origin(kind, name)
            if origin is None:
                raise ConfigError(f"{kind} {name!r} is not installed; install {plugin['name']}=={plugin['version']}")
            if origin[0] != "xalbench" and origin != (plugin["name"], plugin["version"]):
                raise ConfigError(f"{kind} {name!r} comes from {origin[0]} {origin[1]} here; install "
                                  f"{plugin['name']}=={plugin['version']} to verify")
    current = adapter.current_environment()
    same_env = all(str(current.get(k)) == str(manifest["environment"].get(k)) for k in _ENV_KEY)
    exact = bool(plugin["deterministic"]) and same_env
    reasons: list[str] = []
    scratch = tempfile.TemporaryDirectory(prefix="xalbench-verify-") if workdir is None else None
    with scratch or contextlib.nullcontext():
        work = Path(scratch.name) if scratch is not None else Path(workdir)  # type: ignore[arg-type]
        reruns = run_cells(shipped, [_request(sub, c.dataset, c.method, c.seed) for c in sample],
                           work / f"rerun-{sub.manifest_sha256[:16]}", timeout=settings.timeout)
        rerun_rows = []
        for submitted, cell in zip(sample, reruns, strict=True):
            ok, detail = _compare(submitted, cell_record(cell), exact, settings)
            rerun_rows.append({"dataset": submitted.dataset, "method": submitted.method, "seed": submitted.seed,
                               "mode": "exact" if exact else "tolerance", "match": ok, "detail": detail})
            if not ok:
                reasons.append(f"re-run of {submitted.dataset}/{submitted.method}/seed {submitted.seed}: {detail}")
        held = _held_out(sub, sample, secret, settings, work / "held-out")
    for d, methods in held.items():
        for method, entry in methods.items():
            if entry.get("collapse"):
                reasons.append(f"held-out {d}/{method}: advantage over {CANARY_METHOD} fell by "
                               f"{entry['drop']:.3f} AULC_{settings.primary} (margin {settings.margin})")
    record = {
        "schema_version": SCHEMA_VERSION,
        "submission": f"{manifest['submitter']}/{plugin['name']}-{plugin['version']}",
        "manifest_sha256": sub.manifest_sha256,
        "status": "flagged" if reasons else "verified",
        "reasons": reasons,
        "rerun": rerun_rows,
        "held_out": held,
        "settings": dataclasses.asdict(settings),
    }
    if write:
        write_json(record_path(Path(board), manifest), record)
    return record


def _held_out(sub: CheckedSubmission, sample: list[CheckedCell], secret: bytes, s: VerifySettings,
              out_dir: Path) -> dict[str, dict[str, Any]]:
    shipped = sub.suite
    seeds = list(shipped.seeds)
    pairs = sorted({(c.dataset, c.method) for c in sample})
    eligible = sorted({d for d, _ in pairs if adapter.is_embedded_generator(adapter.dataset_spec(shipped, d))})
    if not eligible:
        return {}
    dataset_seeds = {d: held_out_seed(secret, shipped.name, d, int(adapter.dataset_spec(shipped, d).options.get("seed", 0)))
                     for d in eligible}
    wanted = sorted({(d, m) for d, m in pairs if d in eligible} | {(d, CANARY_METHOD) for d in eligible})
    requests = [_request(sub, d, m, seed) for d, m in wanted for seed in seeds]
    cells = run_cells(shipped, requests, out_dir, dataset_seeds=dataset_seeds, timeout=s.timeout)
    held_scores: dict[tuple[str, str], dict[str, float | None]] = {}
    for d, m in wanted:
        runs = [adapter.recompute_aulc(cell_record(c)["rounds"]) for r, c in zip(requests, cells, strict=True)
                if (r.dataset, r.method) == (d, m)]
        keys = sorted({k for a in runs for k in a})
        held_scores[(d, m)] = {k: _mean([a.get(k) for a in runs]) for k in keys}
    by_cell = {(c.dataset, c.method, c.seed): c for c in sub.cells}

    def submitted(d: str, m: str) -> dict[str, float | None]:
        keys = sorted({k for s in seeds for k in by_cell[(d, m, s)].aulc})
        return {k: _mean([by_cell[(d, m, s)].aulc.get(k) for s in seeds]) for k in keys}

    out: dict[str, dict[str, Any]] = {}
    for d, m in wanted:
        if m == CANARY_METHOD and (d, m) not in pairs:
            continue
        pub, held = submitted(d, m), held_scores[(d, m)]
        pub_c, held_c = submitted(d, CANARY_METHOD), held_scores[(d, CANARY_METHOD)]
        p = s.primary
        entry: dict[str, Any] = {"submitted": pub, "held_out": held, "n_seeds": len(seeds)}
        if None not in (pub.get(p), held.get(p), pub_c.get(p), held_c.get(p)):
            drop = (pub[p] - pub_c[p]) - (held[p] - held_c[p])  # type: ignore[operator]
            entry["drop"] = drop
            entry["collapse"] = drop > s.margin
        out.setdefault(d, {})[m] = entry
    return out
