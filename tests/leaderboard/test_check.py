"""``check``: an honest submission passes; every hostile input class is rejected with its named reason."""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.leaderboard.conftest import reference

CELL0 = "cells/lesions__random+ce__seed0.json"
CELL1 = "cells/lesions__random+ce__seed1.json"
OWN0 = "cells/lesions__lbtest-confident+ce__seed0.json"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _save(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")


def _reseal(root: Path) -> None:
    """Recompute every cell hash in the manifest (a forger would), so the targeted check is what fires."""
    from xalbench.leaderboard.canonical import sha256_of

    manifest = _load(root / "manifest.json")
    for entry in manifest["cells"]:
        path = root / entry["path"]
        if path.is_file():
            entry["sha256"] = sha256_of(_load(path))
    _save(root / "manifest.json", manifest)


def _edit_manifest(fn: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        manifest = _load(root / "manifest.json")
        fn(manifest)
        _save(root / "manifest.json", manifest)
    return mutate


def _edit_cell(rel: str, fn: Callable[[dict[str, Any]], None], reseal: bool = True) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        cell = _load(root / rel)
        fn(cell)
        _save(root / rel, cell)
        if reseal:
            _reseal(root)
    return mutate


def _raw_cell(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / rel
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return mutate


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def fn(obj: dict[str, Any]) -> None:
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return fn


def _first_metric_key(root: Path) -> str:
    return next(iter(_load(root / CELL0)["rounds"][0]["metrics"]))


def _swap_seed(root: Path) -> None:
    """Seed 1's file under seed 0's name, identity fields relabelled and everything re-hashed."""
    from xalbench.leaderboard import adapter

    cell = _load(root / CELL1)
    cell["seed"] = 0
    cell["identity"]["seed"] = 0
    cell["identity_sha256"] = adapter.identity_sha256(cell["identity"])
    _save(root / CELL0, cell)
    _reseal(root)


def _drop_cell(root: Path) -> None:
    (root / OWN0).unlink()
    _edit_manifest(lambda m: m.__setitem__("cells", [c for c in m["cells"] if c["path"] != OWN0]))(root)


def _duplicate_cell(root: Path) -> None:
    shutil.copy(root / CELL0, root / "cells/dup.json")
    manifest = _load(root / "manifest.json")
    entry = dict(next(c for c in manifest["cells"] if c["path"] == CELL0), path="cells/dup.json")
    manifest["cells"].append(entry)
    _save(root / "manifest.json", manifest)


def _extra_seed(root: Path) -> None:
    cell = _load(root / CELL1)
    cell["seed"] = 7
    _save(root / "cells/lesions__random+ce__seed7.json", cell)
    manifest = _load(root / "manifest.json")
    manifest["cells"].append({"dataset": "lesions", "method": "random+ce", "seed": 7,
                              "path": "cells/lesions__random+ce__seed7.json", "sha256": "0" * 64})
    _save(root / "manifest.json", manifest)


def _path(value: str) -> Callable[[Path], None]:
    return _edit_manifest(lambda m: m["cells"][0].__setitem__("path", value))


def _symlink(root: Path) -> None:
    os.symlink("/etc/passwd", root / "cells" / "link.json")


def _stray(name: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / name).write_bytes(b"PK\x03\x04" if name.endswith(".zip") else b"hello")
    return mutate


def _case_twin(root: Path) -> None:
    shutil.copy(root / CELL0, root / CELL0.replace("lesions", "LESIONS"))


def _deep(root: Path) -> None:
    text = (root / CELL0).read_text(encoding="utf-8")
    (root / CELL0).write_text(text.replace('"aulc": {', '"aulc": {"x": ' + "[" * 40 + "]" * 40 + ", ", 1),
                              encoding="utf-8")


def _drop_round(root: Path) -> None:
    _edit_cell(CELL0, lambda c: c["rounds"].pop())(root)


def _reorder_rounds(root: Path) -> None:
    _edit_cell(CELL0, lambda c: c["rounds"].reverse())(root)


def _short_query(root: Path) -> None:
    from xalbench.leaderboard.canonical import sha256_of

    def fn(c: dict[str, Any]) -> None:
        r = c["rounds"][0]
        r["queried"] = r["queried"][:-1]
        r["queried_sha256"] = sha256_of(r["queried"])
    _edit_cell(CELL0, fn)(root)


def _query(value_from_initial: bool, index: int = 0) -> Callable[[Path], None]:
    from xalbench.leaderboard.canonical import sha256_of

    def fn(c: dict[str, Any]) -> None:
        r = c["rounds"][0]
        r["queried"][0] = c["initial_labelled"][0] if value_from_initial else index
        r["queried_sha256"] = sha256_of(r["queried"])
    return _edit_cell(CELL0, fn)


def _shadow(root: Path) -> None:
    def fn(c: dict[str, Any]) -> None:
        c["provenance"]["components"]["strategy"]["distribution"] = "xalbench-lbtest"
        c["provenance"]["components"]["strategy"]["version"] = "1.0.0"
    _edit_cell(CELL0, fn)(root)


def _no_canary(root: Path) -> None:
    manifest = _load(root / "manifest.json")
    for c in manifest["cells"]:
        if c["method"] == "random+ce":
            (root / c["path"]).unlink()
    manifest["cells"] = [c for c in manifest["cells"] if c["method"] != "random+ce"]
    manifest["methods"] = [m for m in manifest["methods"] if m["name"] != "random+ce"]
    _save(root / "manifest.json", manifest)


def _rename_folder(root: Path) -> None:
    root.rename(root.parent / "other-1.0.0")


def _more_epochs(cell: dict[str, Any]) -> None:
    from xalbench.leaderboard import adapter

    cell["identity"]["training"]["epochs"] = 50
    cell["identity_sha256"] = adapter.identity_sha256(cell["identity"])


def _homoglyph_method(name: str) -> Callable[[Path], None]:
    def fn(m: dict[str, Any]) -> None:
        m["methods"][0]["name"] = name
    return _edit_manifest(fn)


CASES: list[tuple[str, Callable[[Path], None], str]] = [
    # markup and deceptive names
    ("script-submitter", _edit_manifest(_set(["submitter"], "<script>alert(1)</script>")), "name-markup"),
    ("attribute-breakout", _edit_manifest(_set(["submitter"], '" onmouseover="x')), "name-markup"),
    ("comment", _edit_manifest(_set(["plugin", "name"], "<!--x")), "name-markup"),
    ("pipe-method", _homoglyph_method("a|b+ce"), "name-markup"),
    ("newline-method", _homoglyph_method("a\nb+ce"), "name-markup"),
    ("javascript-url", _edit_manifest(_set(["plugin", "source_url"], "javascript:alert(1)")), "url-invalid"),
    ("data-url", _edit_manifest(_set(["plugin", "source_url"], "data:text/html,<b>x</b>")), "url-invalid"),
    ("bidi", _edit_manifest(_set(["submitter"], "acme\u202elab")), "name-bidi"),
    ("zero-width", _edit_manifest(_set(["submitter"], "acme\u200blab")), "name-zero-width"),
    ("cyrillic-homoglyph", _homoglyph_method("r\u0430ndom+ce"), "name-homoglyph"),
    ("ascii-homoglyph", _homoglyph_method("rand0m+ce"), "name-homoglyph"),
    ("too-long", _edit_manifest(_set(["submitter"], "a" * 81)), "name-too-long"),
    ("upper-case", _edit_manifest(_set(["submitter"], "Acme")), "name-not-slug"),
    ("local-version", _edit_manifest(_set(["plugin", "version"], "1.0.0+local")), "name-not-slug"),
    ("shadows-builtin", _shadow, "name-shadows-builtin"),
    # bad numbers and JSON
    ("nan", _raw_cell(CELL0, '"acc": 0', '"acc": NaN, "y": 0'), "json-nonfinite"),
    ("infinity", _raw_cell(CELL0, '"acc": 0', '"acc": -Infinity, "y": 0'), "json-nonfinite"),
    ("overflow", _raw_cell(CELL0, '"acc": 0', '"acc": 1e309, "y": 0'), "json-nonfinite"),
    ("duplicate-key", _raw_cell(CELL0, '"aulc": {', '"aulc": {"acc": 0.1, '), "json-duplicate-key"),
    ("string-number", _edit_cell(CELL0, _set(["aulc", "acc"], "0.5")), "schema-type"),
    ("bool-number", _edit_cell(CELL0, _set(["seed"], True)), "schema-type"),
    ("extra-key", _edit_manifest(_set(["homepage"], "x")), "schema-extra-key"),
    ("missing-key", _edit_manifest(lambda m: m.pop("environment")), "schema-missing-key"),
    ("bom", lambda r: (r / "manifest.json").write_bytes(b"\xef\xbb\xbf" + (r / "manifest.json").read_bytes()),
     "json-invalid"),
    ("too-deep", _deep, "json-too-deep"),
    ("metric-range", lambda r: _edit_cell(CELL0, _set(["rounds", 0, "metrics", _first_metric_key(r)], 1.5))(r),
     "metric-range"),
    ("metric-unknown", _edit_cell(CELL0, lambda c: [x["metrics"].__setitem__("cheat", 0.5) for x in c["rounds"]]),
     "metric-unknown"),
    ("edited-aulc", _edit_cell(CELL0, _set(["aulc", "acc"], 0.99)), "aulc-mismatch"),
    ("edited-aulc-unsealed", _edit_cell(CELL0, _set(["aulc", "acc"], 0.99), reseal=False), "cell-hash-mismatch"),
    # paths
    ("dotdot", _path("../../.github/workflows/x.yml"), "path-unsafe"),
    ("absolute", _path("/etc/passwd"), "path-unsafe"),
    ("backslash", _path("cells\\..\\x.json"), "path-unsafe"),
    ("symlink", _symlink, "path-symlink"),
    ("stray-file", _stray("notes.txt"), "path-unexpected-file"),
    ("archive", _stray("results.zip"), "path-unexpected-file"),
    ("case-only", _case_twin, "path-case-collision"),
    ("layout", _rename_folder, "path-layout"),
    # grid, seeds, rounds, queries
    ("incomplete-grid", _drop_cell, "grid-missing-cell"),
    ("swapped-seed", _swap_seed, "initial-set-mismatch"),
    ("extra-seed", _extra_seed, "grid-seed"),
    ("duplicate-cell", _duplicate_cell, "grid-duplicate-cell"),
    ("seed-list", _edit_manifest(_set(["suite", "seeds"], [0, 1, 2])), "grid-seed"),
    ("missing-round", _drop_round, "round-sequence"),
    ("extra-round", _edit_cell(CELL0, lambda c: c["rounds"].append(dict(c["rounds"][-1], round=len(c["rounds"])))),
     "round-sequence"),
    ("reordered-rounds", _reorder_rounds, "round-sequence"),
    ("short-query", _short_query, "round-budget"),
    ("requery-labelled", _query(True), "query-duplicate"),
    ("out-of-pool", _query(False, 10_000), "query-out-of-pool"),
    ("query-hash", _edit_cell(CELL0, _set(["rounds", 0, "queried_sha256"], "0" * 64)), "query-hash-mismatch"),
    # versions and hashes
    ("suite-hash", _edit_manifest(_set(["suite", "config_sha256"], "1" * 64)), "suite-hash-mismatch"),
    ("suite-version", _edit_manifest(_set(["suite", "version"], "9.9.9")), "version-mismatch"),
    ("split-hash", _edit_cell(CELL0, _set(["split_sha256"], "2" * 64)), "split-hash-mismatch"),
    ("cell-config", _edit_cell(CELL0, _more_epochs), "suite-hash-mismatch"),
    ("no-canary", _no_canary, "canary-missing"),
]


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    return reference()


def test_honest_submission_is_accepted(lb_submission: Path, ref: dict[str, Any], runtime: Any) -> None:
    from xalbench.leaderboard.check import check_submission

    report = check_submission(lb_submission, reference=ref, runtime=runtime)
    assert report.ok, report.lines()
    sub = report.submission
    assert sub is not None and len(sub.cells) == 4 and sub.own_methods == ["lbtest-confident+ce"]
    assert all(c.aulc["acc"] is not None for c in sub.cells)


def test_the_board_can_ask_for_more_seeds_than_the_suite(lb_submission: Path, ref: dict[str, Any],
                                                         runtime: Any) -> None:
    """reference.json's ``seeds`` for a suite replaces the suite's seeds as the grid every submission runs:
    a submission on the suite's default seeds is then refused, one on exactly the board's seeds accepted."""
    from xalbench.leaderboard.check import check_submission

    suite = next(iter(ref["suites"]))
    more = copy.deepcopy(ref)
    more["suites"][suite]["seeds"] = [0, 1, 2, 3, 4]
    report = check_submission(lb_submission, reference=more, runtime=runtime)
    assert report.codes == ["grid-seed"] and "the board's seeds" in report.rejections[0].message
    same = copy.deepcopy(ref)
    same["suites"][suite]["seeds"] = [1, 0]
    assert check_submission(lb_submission, reference=same, runtime=runtime).ok


@pytest.mark.parametrize(("name", "mutate", "code"), CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_rejected_with_its_reason(name: str, mutate: Callable[[Path], None], code: str,
                                                   sub_copy: Path, ref: dict[str, Any], runtime: Any) -> None:
    from xalbench.leaderboard.check import check_submission
    from xalbench.leaderboard.reasons import REASONS

    mutate(sub_copy)
    root = sub_copy if sub_copy.exists() else sub_copy.parent / "other-1.0.0"
    report = check_submission(root, reference=ref, runtime=runtime)
    assert not report.ok
    assert code in REASONS
    assert report.codes[0] == code, report.lines()
    assert all(r.message for r in report.rejections)


def test_size_limits(sub_copy: Path, ref: dict[str, Any], runtime: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from xalbench.leaderboard import check as check_mod
    from xalbench.leaderboard.check import check_submission

    monkeypatch.setattr(check_mod.LIMITS, "cell_bytes", 1000)
    assert check_submission(sub_copy, reference=ref, runtime=runtime).codes[0] == "file-too-large"
    monkeypatch.setattr(check_mod.LIMITS, "total_bytes", 5000)
    assert check_submission(sub_copy, reference=ref, runtime=runtime).codes[0] == "submission-too-large"


@pytest.mark.parametrize(("entry", "code"), [
    ({}, "suite-unsupported"),
    ({"canary": {"lesions": {"acc": [0.99, 1.0]}}}, "canary-out-of-band"),
    ({"xalbench_version": "9.9.9", "canary": {"lesions": {"acc": [0, 1]}}}, "version-mismatch"),
    ({"xalbench_source_sha256": "0" * 16, "canary": {"lesions": {"acc": [0, 1]}}}, "xalbench-modified"),
])
def test_reference_pins(lb_submission: Path, entry: dict[str, Any], code: str, runtime: Any) -> None:
    from xalbench.leaderboard.check import check_submission

    suites = {"lb-tiny": entry} if entry else {"medical": {}}
    assert check_submission(lb_submission, reference={"suites": suites}, runtime=runtime).codes[0] == code


def test_every_reason_code_is_documented() -> None:
    from xalbench.leaderboard.reasons import REASONS

    readme = (Path(__file__).resolve().parents[2] / "leaderboard" / "README.md").read_text(encoding="utf-8")
    missing = [code for code in REASONS if f"`{code}`" not in readme]
    assert not missing, f"leaderboard/README.md does not list {missing}"
