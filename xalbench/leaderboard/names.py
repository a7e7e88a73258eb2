"""Name checks: every name a submitter controls is a strict ASCII slug, screened first for the
specific tricks a leaderboard sees (bidi overrides, zero-width characters, markup, URL schemes,
homoglyphs of built-in names), so the rejection says which trick it was.

Order of the screen (the first hit names the reason): length → bidi → zero-width/invisible →
control characters and markup (``< > " ' ` | & \\ { } $``, ``javascript:``, ``data:``, ``<!--``) →
homoglyph of a built-in (Unicode confusables folded to Latin, plus ASCII look-alikes such as
``0``/``o``, ``1``/``l``, ``rn``/``m``) → the slug pattern.

The built-in names a submitted name must not imitate are passed in (``builtins``, from
:func:`builtin_names` of the registry's; default: xalbench's own list), so no check reads process state.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from xalbench.leaderboard.reasons import Rejection

__all__ = ["check_submitter", "check_distribution", "check_version", "check_component", "check_method_text",
           "check_dataset_text", "check_metric_key", "check_url", "skeleton", "builtin_names", "screen",
           "SLUG", "METHOD"]

SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SUBMITTER = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,37}[a-z0-9])?$")
DIST = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
VERSION = re.compile(r"^(?:0|[1-9][0-9]{0,6})(?:\.(?:0|[1-9][0-9]{0,6})){0,3}(?:(?:a|b|rc)[0-9]{1,4})?"
                     r"(?:\.post[0-9]{1,4})?(?:\.dev[0-9]{1,4})?$")
METHOD = re.compile(r"^(?!.*(?:\.\.|//))[A-Za-z0-9][A-Za-z0-9._+\[\],=/-]{0,139}$")  # "/": suite labels such as entropy/SAL
DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+\[\],=-]{0,139}$")
METRIC = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
URL = re.compile(r"^https://[a-z0-9](?:[a-z0-9.-]{0,250}[a-z0-9])?(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%/+-]*)?$")

_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ZERO_WIDTH = set("\u00ad\u034f\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u3164\uffa0")
_MARKUP_CHARS = set("<>\"'`|&\\{}$")
_SCHEMES = re.compile(r"(?i)(javascript|data|vbscript|file)\s*:|<!--")

# Unicode confusables of Latin letters (Cyrillic, Greek, fullwidth handled by NFKC, Latin variants).
_CONFUSABLES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "к": "k", "м": "m", "н": "h", "т": "t", "в": "b",
    "ɡ": "g", "ɑ": "a", "ı": "i", "ȷ": "j", "ℓ": "l",
    "α": "a", "ε": "e", "ο": "o", "ρ": "p", "ν": "v", "τ": "t", "κ": "k", "ι": "i", "υ": "u", "χ": "x",
    "β": "b", "η": "n", "μ": "u",
})
_ASCII_LOOKALIKE = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("0", "o"), ("1", "l"), ("i", "l"), ("|", "l"),
                    ("5", "s"), ("_", "-"), (".", "-"))

_STATIC_BUILTINS = frozenset({
    "random", "entropy", "margin", "least-confidence", "mcd-entropy", "bald", "coreset", "badge",
    "ce", "dice", "rrr", "gradia", "haics", "res", "cyborg", "cyborg-ssim-l1", "xalbench",
})


def skeleton(text: str) -> str:
    """Fold confusable characters to a canonical Latin skeleton (for comparison only)."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text)).casefold()
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).translate(_CONFUSABLES)
    for src, dst in _ASCII_LOOKALIKE:
        folded = folded.replace(src, dst)
    return folded


def builtin_names(registered: Iterable[str] = ()) -> frozenset[str]:
    """The names to screen for homoglyphs: the built-in component names ``registered`` here (see
    :meth:`~xalbench.leaderboard.adapter.Adapter.builtin_names`), xalbench's own list, and ``xalbench``."""
    return frozenset(registered) | _STATIC_BUILTINS


def _homoglyph(value: str, builtins: Iterable[str]) -> str | None:
    sk = skeleton(value)
    for name in builtins:
        if value != name and sk == skeleton(name):
            return name
    return None


def screen(value: str, where: str, *, limit: int = 80, builtins: Iterable[str] | None = None,
           ascii_only: bool = True) -> None:
    """Raise the specific :class:`Rejection` for the first trick found in ``value``."""
    if len(value) > limit:
        raise Rejection("name-too-long", f"{where} is {len(value)} characters; the limit is {limit}")
    if any(ch in _BIDI for ch in value):
        raise Rejection("name-bidi", f"{where} contains a bidirectional control character")
    if any(ch in _ZERO_WIDTH or (unicodedata.category(ch) == "Cf") for ch in value):
        raise Rejection("name-zero-width", f"{where} contains a zero-width or invisible character")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
        raise Rejection("name-markup", f"{where} contains a newline or control character")
    if any(ch in _MARKUP_CHARS for ch in value) or _SCHEMES.search(value):
        raise Rejection("name-markup", f"{where} = {value.encode('unicode_escape').decode()[:60]!r} contains markup "
                                       "or a URL scheme")
    if builtins is not None:
        target = _homoglyph(value, builtins)
        if target is not None:
            raise Rejection("name-homoglyph", f"{where} = {value.encode('ascii', 'backslashreplace').decode()!r} "
                                              f"imitates the built-in name {target!r}")
    if ascii_only and not value.isascii():
        raise Rejection("name-not-slug", f"{where} contains non-ASCII characters")


def _slug(value: str, where: str, pattern: re.Pattern[str], *, limit: int, builtins: Iterable[str] | None) -> str:
    screen(value, where, limit=limit, builtins=builtins)
    if not pattern.fullmatch(value):
        raise Rejection("name-not-slug", f"{where} = {value!r} must match {pattern.pattern}")
    return value


def check_submitter(value: str, where: str, builtins: Iterable[str] = _STATIC_BUILTINS) -> str:
    return _slug(value, where, SUBMITTER, limit=39, builtins=builtins)


def check_distribution(value: str, where: str, builtins: Iterable[str] = _STATIC_BUILTINS) -> str:
    return _slug(value, where, DIST, limit=64, builtins=builtins)


def check_version(value: str, where: str) -> str:
    screen(value, where, limit=40)
    if not VERSION.fullmatch(value):
        raise Rejection("name-not-slug", f"{where} = {value!r} is not a public PEP 440 release version "
                                         "(no local '+...' builds)")
    return value


def check_component(value: str, where: str, builtins: Iterable[str] = _STATIC_BUILTINS) -> str:
    return _slug(value, where, SLUG, limit=64, builtins=builtins)


def check_method_text(value: str, where: str, builtins: Iterable[str] = _STATIC_BUILTINS) -> str:
    """A method's display name: ``<strategy>+<loss>[+<trainer>][+masks=<source>]`` of slugs (each part
    screened for homoglyphs of built-ins), or a shipped suite's method label (checked in :mod:`.check`)."""
    screen(value, where, limit=140, ascii_only=False)
    for i, part in enumerate(value.split("+")):
        screen(part.removeprefix("masks="), f"{where} part {i + 1}", limit=140, builtins=builtins)
    if not METHOD.fullmatch(value):
        raise Rejection("name-not-slug", f"{where} = {value!r} must be '<strategy>+<loss>' of slugs")
    return value


def check_dataset_text(value: str, where: str) -> str:
    screen(value, where, limit=140)
    if not DATASET.fullmatch(value):
        raise Rejection("name-not-slug", f"{where} = {value!r} is not a dataset label")
    return value


def check_metric_key(value: str, where: str) -> str:
    screen(value, where, limit=64)
    if not METRIC.fullmatch(value):
        raise Rejection("name-not-slug", f"{where} = {value!r} is not a metric key")
    return value


def check_url(value: str, where: str) -> str:
    if _SCHEMES.search(value) or not URL.fullmatch(value):
        raise Rejection("url-invalid", f"{where} must be a plain https:// URL without quotes or markup")
    return value
