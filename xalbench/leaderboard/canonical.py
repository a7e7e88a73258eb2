"""Canonical JSON for hashing (RFC 8785, JSON Canonicalization Scheme).

* object keys sorted by their UTF-16 code units, no insignificant whitespace;
* strings escaped as ECMAScript ``JSON.stringify`` does (``"``, ``\\``, control characters;
  everything else literal UTF-8);
* numbers in the ECMAScript shortest round-trip form (RFC 8785 §3.2.2.3): ``1.0`` → ``1``,
  ``1e21`` → ``1e+21``, ``1e-7`` → ``1e-7``; NaN and infinities are not JSON and raise.

Python ``int`` values are written as integers (they must fit an IEEE double exactly to be
portable; larger ones raise). ``sha256_of(obj)`` hashes the canonical bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

__all__ = ["canonical_bytes", "canonical_number", "sha256_of", "sha256_bytes"]

_MAX_SAFE_INT = 2**53


def canonical_number(x: float) -> str:
    """ECMAScript ``Number.prototype.toString`` of a finite double."""
    if not math.isfinite(x):
        raise ValueError(f"{x!r} is not representable in JSON")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    text = repr(abs(x))  # shortest round-trip digits (Python ≥ 3.1)
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    if int_part.strip("0"):
        digits = (int_part + frac_part).lstrip("0")
        point = len(int_part.lstrip("0")) + exponent  # value = 0.<digits> × 10^point
    else:
        stripped = frac_part.lstrip("0")
        point = exponent - (len(frac_part) - len(stripped))
        digits = stripped
    digits = digits.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))
    return sign + out


def _encode(obj: Any, out: list[str]) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        if abs(obj) > _MAX_SAFE_INT:
            raise ValueError(f"integer {obj} does not fit an IEEE double exactly")
        out.append(str(obj))
    elif isinstance(obj, float):
        out.append(canonical_number(obj))
    elif isinstance(obj, str):
        out.append(json.dumps(obj, ensure_ascii=False))
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, item in enumerate(obj):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, got {key!r}")
        out.append("{")
        for i, key in enumerate(sorted(obj, key=lambda s: s.encode("utf-16-be"))):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(obj[key], out)
        out.append("}")
    else:
        raise TypeError(f"{type(obj).__name__} is not JSON")


def canonical_bytes(obj: Any) -> bytes:
    out: list[str] = []
    _encode(obj, out)
    return "".join(out).encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of(obj: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``obj``."""
    return sha256_bytes(canonical_bytes(obj))
