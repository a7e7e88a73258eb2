"""Canonical JSON (RFC 8785) and the strict parser."""

from __future__ import annotations

import pytest

from xalbench.leaderboard.canonical import canonical_bytes, canonical_number, sha256_of
from xalbench.leaderboard.reasons import Rejection
from xalbench.leaderboard.schema import loads_strict


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "0"), (-0.0, "0"), (1.0, "1"), (123.0, "123"), (0.1, "0.1"), (4.5, "4.5"), (0.002, "0.002"),
    (1e-6, "0.000001"), (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (1e20, "100000000000000000000"), (1e21, "1e+21"),
    (-1.25e25, "-1.25e+25"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    (333333333.3333333, "333333333.3333333"), (123456789012345680000.0, "123456789012345680000"),
])
def test_numbers_follow_ecmascript(value: float, text: str) -> None:
    assert canonical_number(value) == text


def test_keys_sorted_by_utf16_and_no_whitespace() -> None:
    data = {"b": [1, 2.0, None, True], "a": "é\n\"", "\u20ac": 1, "\U0001f600": 2, "\ufb33": 3}
    assert canonical_bytes(data) == ('{"a":"é\\n\\"","b":[1,2,null,true],"\u20ac":1,"\U0001f600":2,"\ufb33":3}'
                                     ).encode("utf-8")
    assert sha256_of({"x": 1, "y": [0.5]}) == sha256_of({"y": [0.5], "x": 1.0})


def test_non_json_values_raise() -> None:
    for bad in (float("nan"), float("inf"), 2**60, {1: 2}, {1, 2}):
        with pytest.raises((ValueError, TypeError)):
            canonical_bytes(bad)


@pytest.mark.parametrize(("text", "code"), [
    (b'{"a": NaN}', "json-nonfinite"), (b'{"a": Infinity}', "json-nonfinite"), (b'{"a": -Infinity}', "json-nonfinite"),
    (b'{"a": 1e309}', "json-nonfinite"), (b'{"a": 1, "a": 2}', "json-duplicate-key"),
    (b'{"a": [' + b"[" * 20 + b"]" * 20 + b"]}", "json-too-deep"), (b"\xef\xbb\xbf{}", "json-invalid"),
    (b'{"a": "\xff"}', "json-invalid"), (b'{"a": 1,}', "json-invalid"),
])
def test_strict_parser_rejects(text: bytes, code: str) -> None:
    with pytest.raises(Rejection) as err:
        loads_strict(text, where="x.json")
    assert err.value.code == code


def test_strict_parser_depth_ignores_brackets_in_strings() -> None:
    assert loads_strict(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[["}', where="x") == {"a": "[" * 25}
