"""Strict JSON and the two submission file schemas (hand-written; every failure is a :class:`Rejection`).

Parsing (before any schema): size limit checked on disk, strict UTF-8, nesting depth measured
by a scan before ``json.loads`` (no recursion bombs), ``object_pairs_hook`` rejecting duplicate
keys (Python keeps the last one silently), ``parse_constant`` rejecting NaN/Infinity and
``parse_float`` rejecting numbers that overflow (``1e309``).

Schema: exact key sets (no missing, no extra keys), ``int`` never ``bool``, numbers never
strings, floats finite, strings length-limited. The validated structures are returned as
plain dicts; the semantic checks (grid, rounds, hashes) live in :mod:`.check`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xalbench.leaderboard import SCHEMA_VERSION
from xalbench.leaderboard.reasons import Rejection

__all__ = ["Limits", "LIMITS", "load_strict", "loads_strict", "validate_manifest", "validate_cell",
           "HEX64", "HEX16"]


class Limits:
    manifest_bytes = 1 << 20
    cell_bytes = 4 << 20
    total_bytes = 64 << 20
    max_files = 4000
    max_depth = 8
    max_string = 200
    max_list = 100_000


LIMITS = Limits()
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
_TEXT = re.compile(r"^[A-Za-z0-9 ._+\-/()=,:#~]*$")  # environment strings (no markup characters)
_VERSIONISH = re.compile(r"^[A-Za-z0-9.+!_-]{1,64}$")
_DIST = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")


# ---------------------------------------------------------------- strict parsing
def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise Rejection("json-duplicate-key", f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise Rejection("json-nonfinite", f"{name} is not a JSON number")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Rejection("json-nonfinite", f"number {text[:40]} overflows to infinity")
    return value


def _depth(text: str) -> int:
    """Maximum bracket nesting outside strings (a linear scan; no recursion)."""
    depth = best = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def loads_strict(data: bytes, *, where: str, max_depth: int = LIMITS.max_depth) -> Any:
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise Rejection("json-invalid", f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise Rejection("json-invalid", f"{where}: starts with a byte-order mark")
    depth = _depth(text)
    if depth > max_depth:
        raise Rejection("json-too-deep", f"{where}: nesting depth {depth} exceeds the limit {max_depth}")
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant,
                          parse_float=_parse_float)
    except Rejection as exc:
        raise Rejection(exc.code, f"{where}: {exc.message}") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise Rejection("json-invalid", f"{where}: {exc}") from None


def load_strict(path: Path, *, max_bytes: int, where: str) -> Any:
    if not path.is_file():
        raise Rejection("file-missing", f"{where} is missing")
    size = path.stat().st_size
    if size > max_bytes:
        raise Rejection("file-too-large", f"{where} is {size} bytes; the limit is {max_bytes}")
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Rejection("file-too-large", f"{where} grew beyond {max_bytes} bytes while reading")
    return loads_strict(data, where=where)


# ---------------------------------------------------------------- field validators
Check = Callable[[Any, str], Any]


def _type_name(value: Any) -> str:
    return "boolean" if isinstance(value, bool) else type(value).__name__


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    def check(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Rejection("schema-type", f"{where} must be an integer, got {_type_name(value)} {value!r:.40}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise Rejection("schema-value", f"{where} = {value} is outside [{lo}, {hi}]")
        return value
    return check


def number(nullable: bool = False) -> Check:
    def check(value: Any, where: str) -> int | float | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Rejection("schema-type", f"{where} must be a number, got {_type_name(value)} {value!r:.40}")
        if not math.isfinite(value):
            raise Rejection("json-nonfinite", f"{where} is not finite")
        return value
    return check


def boolean() -> Check:
    def check(value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise Rejection("schema-type", f"{where} must be true or false, got {_type_name(value)}")
        return value
    return check


def string(pattern: re.Pattern[str] | None = None, *, nullable: bool = False,
           max_len: int = LIMITS.max_string, custom: Check | None = None) -> Check:
    def check(value: Any, where: str) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise Rejection("schema-type", f"{where} must be a string, got {_type_name(value)}")
        if len(value) > max_len:
            raise Rejection("name-too-long", f"{where} is {len(value)} characters; the limit is {max_len}")
        if custom is not None:
            return custom(value, where)
        if pattern is not None and not pattern.fullmatch(value):
            raise Rejection("schema-value", f"{where} = {value!r:.60} does not match {pattern.pattern}")
        return value
    return check


def array(item: Check, *, max_len: int = LIMITS.max_list) -> Check:
    def check(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise Rejection("schema-type", f"{where} must be an array, got {_type_name(value)}")
        if len(value) > max_len:
            raise Rejection("schema-value", f"{where} has {len(value)} items; the limit is {max_len}")
        return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return check


def mapping(key: Check, value: Check, *, max_len: int = 1000) -> Check:
    def check(obj: Any, where: str) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise Rejection("schema-type", f"{where} must be an object, got {_type_name(obj)}")
        if len(obj) > max_len:
            raise Rejection("schema-value", f"{where} has {len(obj)} keys; the limit is {max_len}")
        return {key(k, f"{where} key"): value(v, f"{where}.{k}") for k, v in obj.items()}
    return check


def record(fields: dict[str, Check]) -> Check:
    """An object with exactly these keys."""
    def check(obj: Any, where: str) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise Rejection("schema-type", f"{where} must be an object, got {_type_name(obj)}")
        missing = sorted(set(fields) - set(obj))
        if missing:
            raise Rejection("schema-missing-key", f"{where} lacks key(s) {missing}")
        extra = sorted(set(obj) - set(fields))
        if extra:
            raise Rejection("schema-extra-key", f"{where} has unknown key(s) {[e[:40] for e in extra]}")
        return {k: fields[k](obj[k], f"{where}.{k}") for k in fields}
    return check


def _version_check(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejection("schema-type", f"{where} must be an integer")
    if value != SCHEMA_VERSION:
        raise Rejection("schema-version", f"{where} = {value}; this xalbench reads version {SCHEMA_VERSION}")
    return value


def json_value(max_string: int = LIMITS.max_string, max_items: int = 1000) -> Check:
    """Any JSON value within limits (strings and keys length-limited; depth is limited by the parser)."""
    def check(value: Any, where: str) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return number()(value, where)
        if isinstance(value, str):
            return string(max_len=max_string)(value, where)
        if isinstance(value, list):
            return array(check, max_len=max_items)(value, where)
        if isinstance(value, dict):
            return mapping(string(max_len=max_string), check, max_len=max_items)(value, where)
        raise Rejection("schema-type", f"{where} is not JSON")
    return check


# ---------------------------------------------------------------- the two schemas
COMPONENT_KINDS = ("strategy", "loss", "trainer", "mask_source")


def _name_checks(builtins: frozenset[str]) -> dict[str, Check]:
    """The name checks, screening for homoglyphs of ``builtins``."""
    from xalbench.leaderboard import names

    def screened(check: Callable[[str, str, frozenset[str]], str]) -> Callable[[str, str], str]:
        return lambda value, where: check(value, where, builtins)

    return {
        "submitter": string(custom=screened(names.check_submitter), max_len=80),
        "dist": string(custom=screened(names.check_distribution), max_len=80),
        "version": string(custom=names.check_version, max_len=80),
        "component": string(custom=screened(names.check_component), max_len=80),
        "method": string(custom=screened(names.check_method_text), max_len=140),
        "url": string(custom=names.check_url, nullable=True, max_len=300),
        "dataset": string(custom=names.check_dataset_text, max_len=140),
        "metric": string(custom=names.check_metric_key, max_len=80),
    }


def _components(n: dict[str, Check]) -> Check:
    return record({k: n["component"] for k in COMPONENT_KINDS})


def validate_manifest(obj: Any, builtins: frozenset[str]) -> dict[str, Any]:
    """The manifest, checked against its schema; names may not imitate ``builtins`` (:func:`.names.builtin_names`)."""
    n = _name_checks(builtins)
    text = string(_TEXT)
    environment = record({
        "python": text, "platform": text, "machine": text, "torch": text, "numpy": text,
        "device": text, "threads": integer(1, 1024), "cuda": string(_TEXT, nullable=True),
        "packages": mapping(string(_DIST, max_len=80), string(_VERSIONISH), max_len=2000),
    })
    schema = record({
        "schema_version": _version_check,
        "submitter": n["submitter"],
        "plugin": record({
            "name": n["dist"], "version": n["version"],
            "wheel_sha256": string(HEX64, nullable=True),
            "source_url": n["url"],
            "deterministic": boolean(),
        }),
        "suite": record({
            "name": n["component"], "version": n["version"], "config_sha256": string(HEX64),
            "seeds": array(integer(0, 2**31), max_len=100),
            "datasets": array(n["dataset"], max_len=100),
        }),
        "xalbench_version": n["version"],
        "xalbench_source_sha256": string(HEX16),
        "environment": environment,
        "environment_sha256": string(HEX64),
        "methods": array(record({"name": n["method"], "components": _components(n)}), max_len=200),
        "cells": array(record({
            "dataset": n["dataset"], "method": n["method"], "seed": integer(0, 2**31),
            "path": string(max_len=200), "sha256": string(HEX64),
        }), max_len=LIMITS.max_files),
        "skipped": array(record({"dataset": n["dataset"], "method": n["method"]}), max_len=LIMITS.max_files),
    })
    return schema(obj, "manifest.json")


def validate_cell(obj: Any, where: str, builtins: frozenset[str]) -> dict[str, Any]:
    """One cell file, checked against its schema; names may not imitate ``builtins``."""
    n = _name_checks(builtins)
    index = integer(0, 10_000_000)
    origin = record({"name": n["component"], "distribution": n["dist"], "version": n["version"]})
    schema = record({
        "schema_version": _version_check,
        "dataset": n["dataset"], "method": n["method"], "seed": integer(0, 2**31),
        "components": _components(n),
        "identity": mapping(string(max_len=80), json_value(), max_len=64),
        "identity_sha256": string(HEX64),
        "split_sha256": string(HEX64),
        "initial_labelled": array(index),
        "initial_labelled_sha256": string(HEX64),
        "rounds": array(record({
            "round": integer(0, 10_000), "n_labelled": index,
            "queried": array(index), "queried_sha256": string(HEX64),
            "metrics": mapping(n["metric"], number(nullable=True), max_len=64),
        }), max_len=10_000),
        "aulc": mapping(n["metric"], number(nullable=True), max_len=64),
        "provenance": record({
            "components": record({k: origin for k in COMPONENT_KINDS}),
            "xalbench_version": n["version"], "xalbench_source_sha256": string(HEX16),
        }),
    })
    return schema(obj, where)
