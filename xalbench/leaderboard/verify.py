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
   secret (HMAC-SHA256 of the suite and dataset). Per seed s, the drop d_s = Δ_public,s −
   Δ_held-out,s of Δ = AULC(method) − AULC(random+ce) (paired by seed). With ≥ 5 seeds the entry is
   flagged when a one-sided paired t-test says the drop is above zero (p < ``alpha``, default 0.01)
   *and* its mean exceeds ``min_drop`` (default 0.02 AULC); with fewer seeds, when the mean drop
   exceeds ``margin`` (default 0.10) — with 2 seeds an honest method's Δ varies by about as much as a
   margin. A method that learnt the public data's labels loses its edge on data it has never seen.
   Held-out cells are cached in ``workdir/held-out`` (by the harness's cell identities), so the
   canary runs once per dataset and seed for all verifications; ``workdir`` is made private (0700)
   — its files name the held-out data seeds.

**No leaks.** The secret is read once (:func:`read_secret` removes it from the environment) and
turned into the held-out data seeds of the submission's suite at once; the secret itself is then
wiped and never reaches a re-run. The seeds reach the re-run process through a pipe
(:func:`~xalbench.leaderboard.rerun.run_cells`), the held-out data is generated into a private data
root deleted afterwards, and every re-run — training included — runs ``confined``: the cell's process
and the strategy's sandbox cannot read another process's memory, environment or command line, the
work directory or the data root. ``verify`` refuses to run where the kernel cannot confine
(``allow_unconfined`` / ``--allow-unconfined`` overrides it, and the record says so). Not covered:
code a plugin runs when it is *imported* (by the registry, in the verifying process) — installing a
plugin to verify it trusts its import-time code; review it.
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
from typing import TYPE_CHECKING, Any

from xalbench.errors import ConfigError
from xalbench.leaderboard import CANARY_METHOD, SCHEMA_VERSION
from xalbench.leaderboard.adapter import Adapter, current_environment, dataset_spec
from xalbench.leaderboard.check import CheckedCell, CheckedSubmission, check_submission
from xalbench.leaderboard.rerun import SECRET_ENV, CellRequest, run_cells
from xalbench.leaderboard.submit import cell_record, write_json

if TYPE_CHECKING:
    from xalbench.harness.runtime import Runtime

__all__ = ["VerifySettings", "verify", "sample_cells", "held_out_seed", "read_secret", "record_path"]

_ENV_KEY = ("python", "torch", "numpy", "machine", "device", "threads")


@dataclasses.dataclass(frozen=True)
class VerifySettings:
    cells: int = 2
    metric_tol: float = 0.02
    aulc_tol: float = 0.01
    margin: float = 0.10  #: fewer than ``min_seeds`` seeds: flag when the mean drop exceeds this
    alpha: float = 0.01  #: ≥ ``min_seeds`` seeds: one-sided paired t-test level of the drop
    min_drop: float = 0.02  #: ≥ ``min_seeds`` seeds: and the mean drop exceeds this (AULC)
    min_seeds: int = 5
    primary: str = "acc"
    timeout: float | None = None
    allow_unconfined: bool = False  #: run the re-runs with process isolation where the kernel cannot confine


def read_secret(secret_file: str | None) -> bytearray:
    """The maintainer secret from ``--secret-file`` or ``$XALBENCH_LEADERBOARD_SECRET`` (≥ 16 bytes), read
    once: the variable is removed from this process's environment (so no child inherits it) and the
    bytes come back in a ``bytearray`` that :func:`verify` wipes once it has derived the seeds."""
    env = os.environ.pop(SECRET_ENV, "")
    if secret_file:
        data = bytearray(Path(secret_file).read_bytes().strip())
    else:
        data = bytearray(env.encode())
    if len(data) < 16:
        raise ConfigError(f"verify needs the maintainer secret (≥ 16 bytes) in ${SECRET_ENV} or --secret-file; "
                          "it never goes into the repository")
    return data


def held_out_seeds(secret: bytes | bytearray, shipped: Any, adapter: Adapter) -> dict[str, int]:
    """The held-out data seed of every embedded-generator dataset of the suite ``shipped``."""
    out = {}
    for raw in shipped.datasets:
        spec = dataset_spec(shipped, raw.display)
        if adapter.is_embedded_generator(spec):
            out[raw.display] = held_out_seed(bytes(secret), shipped.name, raw.display, int(spec.options.get("seed", 0)))
    return out


def _wipe(secret: bytes | bytearray) -> None:
    if isinstance(secret, bytearray):
        secret[:] = bytes(len(secret))


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


def _compare(submitted: CheckedCell, rerun: dict[str, Any], exact: bool, s: VerifySettings,
             adapter: Adapter) -> tuple[bool, str]:
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


def verify(root: str | Path, *, reference: dict[str, Any], board: str | Path, secret: bytes | bytearray,
           runtime: Runtime, settings: VerifySettings = VerifySettings(), data_root: str | None = None,
           workdir: str | Path | None = None, write: bool = True) -> dict[str, Any]:
    """Verify one submission with the plugin installed in ``runtime``; returns (and by default writes) its
    verification record. A ``bytearray`` secret (what :func:`read_secret` returns) is wiped once the
    held-out seeds are derived."""
    from xalbench.confinement import resolve_isolation

    try:
        isolation = "process" if settings.allow_unconfined else resolve_isolation("confined")
        if settings.allow_unconfined and resolve_isolation("auto", warn=False) == "confined":
            isolation = "confined"  # allowed to run unconfined, but confined where the kernel can
    except ConfigError as exc:
        _wipe(secret)
        raise ConfigError(f"verify runs plugins confined and this machine cannot: {exc}; pass --allow-unconfined "
                          "to verify with process isolation only (the record says so)") from exc
    report = check_submission(root, reference=reference, runtime=runtime, data_root=data_root)
    if not report.ok or report.submission is None:
        _wipe(secret)
        raise ConfigError("the submission does not pass `check`; fix it first: " + "; ".join(map(str, report.rejections)))
    sub = report.submission
    manifest = sub.manifest
    plugin = manifest["plugin"]
    shipped = sub.suite
    adapter = Adapter(runtime)
    seeds_by_dataset = held_out_seeds(secret, shipped, adapter)
    _wipe(secret)
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
    current = current_environment()
    same_env = all(str(current.get(k)) == str(manifest["environment"].get(k)) for k in _ENV_KEY)
    exact = bool(plugin["deterministic"]) and same_env
    reasons: list[str] = []
    scratch = tempfile.TemporaryDirectory(prefix="xalbench-verify-") if workdir is None else None
    with scratch or contextlib.nullcontext():
        work = Path(scratch.name) if scratch is not None else Path(workdir)  # type: ignore[arg-type]
        work.mkdir(parents=True, exist_ok=True)
        work.chmod(0o700)
        reruns = run_cells(shipped, [_request(sub, c.dataset, c.method, c.seed) for c in sample],
                           work / f"rerun-{sub.manifest_sha256[:16]}", timeout=settings.timeout, isolation=isolation)
        rerun_rows = []
        for submitted, cell in zip(sample, reruns, strict=True):
            ok, detail = _compare(submitted, cell_record(cell, adapter), exact, settings, adapter)
            rerun_rows.append({"dataset": submitted.dataset, "method": submitted.method, "seed": submitted.seed,
                               "mode": "exact" if exact else "tolerance", "match": ok, "detail": detail})
            if not ok:
                reasons.append(f"re-run of {submitted.dataset}/{submitted.method}/seed {submitted.seed}: {detail}")
        held = _held_out(sub, sample, seeds_by_dataset, settings, work / "held-out", isolation, adapter)
    for d, methods in held.items():
        for method, entry in methods.items():
            if entry.get("collapse"):
                reasons.append(f"held-out {d}/{method}: advantage over {CANARY_METHOD} fell by "
                               f"{entry['drop']:.3f} AULC_{settings.primary} ({entry['rule']})")
    record = {
        "schema_version": SCHEMA_VERSION,
        "submission": f"{manifest['submitter']}/{plugin['name']}-{plugin['version']}",
        "manifest_sha256": sub.manifest_sha256,
        "status": "flagged" if reasons else "verified",
        "reasons": reasons,
        "rerun": rerun_rows,
        "held_out": held,
        "isolation": isolation,
        "settings": dataclasses.asdict(settings),
    }
    if write:
        write_json(record_path(Path(board), manifest), record)
    return record


def _held_out(sub: CheckedSubmission, sample: list[CheckedCell], dataset_seeds: dict[str, int], s: VerifySettings,
              out_dir: Path, isolation: str, adapter: Adapter) -> dict[str, dict[str, Any]]:
    shipped = sub.suite
    seeds = sorted(sub.manifest["suite"]["seeds"])  # the board's seeds (check_submission made sure)
    pairs = sorted({(c.dataset, c.method) for c in sample})
    eligible = sorted({d for d, _ in pairs if d in dataset_seeds})
    if not eligible:
        return {}
    wanted = sorted({(d, m) for d, m in pairs if d in eligible} | {(d, CANARY_METHOD) for d in eligible})
    requests = [_request(sub, d, m, seed) for d, m in wanted for seed in seeds]
    cells = run_cells(shipped, requests, out_dir, dataset_seeds={d: dataset_seeds[d] for d in eligible},
                      timeout=s.timeout, isolation=isolation)
    held: dict[tuple[str, str, int], dict[str, float | None]] = {
        (r.dataset, r.method, r.seed): adapter.recompute_aulc(cell_record(c, adapter)["rounds"])
        for r, c in zip(requests, cells, strict=True)}
    by_cell = {(c.dataset, c.method, c.seed): c for c in sub.cells}

    def mean_of(source: Any, d: str, m: str) -> dict[str, float | None]:
        keys = sorted({k for seed in seeds for k in source(d, m, seed)})
        return {k: _mean([source(d, m, seed).get(k) for seed in seeds]) for k in keys}

    def submitted(d: str, m: str, seed: int) -> dict[str, float | None]:
        return by_cell[(d, m, seed)].aulc

    def held_out(d: str, m: str, seed: int) -> dict[str, float | None]:
        return held[(d, m, seed)]

    out: dict[str, dict[str, Any]] = {}
    p = s.primary
    for d, m in wanted:
        if m == CANARY_METHOD and (d, m) not in pairs:
            continue
        entry: dict[str, Any] = {"submitted": mean_of(submitted, d, m), "held_out": mean_of(held_out, d, m),
                                 "n_seeds": len(seeds)}
        drops = [(submitted(d, m, seed).get(p), submitted(d, CANARY_METHOD, seed).get(p),
                  held_out(d, m, seed).get(p), held_out(d, CANARY_METHOD, seed).get(p)) for seed in seeds]
        if all(None not in row for row in drops):
            per_seed = [(a - b) - (c - e) for a, b, c, e in drops]  # type: ignore[operator]
            entry.update(_judge_drop(per_seed, s))
        out.setdefault(d, {})[m] = entry
    return out


def _judge_drop(per_seed: list[float], s: VerifySettings) -> dict[str, Any]:
    """Whether the drop of the advantage over the canary from public to held-out data is real: a paired
    one-sided t-test with ≥ ``min_seeds`` seeds, the fixed margin below that."""
    drop = math.fsum(per_seed) / len(per_seed)
    if len(per_seed) >= s.min_seeds:
        from scipy import stats

        p = float(stats.ttest_1samp(per_seed, 0.0, alternative="greater").pvalue)
        if not math.isfinite(p):  # no spread at all: the drop is what it is
            p = 0.0 if drop > 0 else 1.0
        return {"drop": drop, "drops": per_seed, "p": p, "collapse": p < s.alpha and drop > s.min_drop,
                "rule": f"paired t-test over {len(per_seed)} seeds: p {p:.3g} (flag below {s.alpha}) and mean drop "
                        f"above {s.min_drop}"}
    return {"drop": drop, "drops": per_seed, "collapse": drop > s.margin,
            "rule": f"margin {s.margin} (fewer than {s.min_seeds} seeds: no test)"}
