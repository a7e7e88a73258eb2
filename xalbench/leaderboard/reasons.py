"""Why a submission is rejected: a stable reason code plus a one-line message.

Codes are part of the public contract (the README lists them); tests assert on them.
"""

from __future__ import annotations

__all__ = ["Rejection", "REASONS"]

REASONS: dict[str, str] = {
    # files and JSON
    "file-missing": "a required file is absent",
    "file-too-large": "a file exceeds its size limit",
    "submission-too-large": "the submission exceeds the total size or file-count limit",
    "json-invalid": "not valid UTF-8 JSON",
    "json-duplicate-key": "an object repeats a key",
    "json-nonfinite": "NaN, Infinity or a number that overflows to infinity",
    "json-too-deep": "JSON nested deeper than the limit",
    "schema-missing-key": "a required key is absent",
    "schema-extra-key": "a key the schema does not define",
    "schema-type": "a value of the wrong type (e.g. a number given as a string, a boolean as a number)",
    "schema-value": "a value outside its allowed set or range",
    "schema-version": "an unsupported schema version",
    # names
    "name-too-long": "a name longer than its limit",
    "name-bidi": "a name with bidirectional control characters",
    "name-zero-width": "a name with zero-width or invisible characters",
    "name-markup": "a name with markup, quotes, pipes, newlines or a URL scheme",
    "name-homoglyph": "a name that imitates a built-in name",
    "name-not-slug": "a name that is not a strict lower-case slug",
    "name-shadows-builtin": "a plugin component that reuses a built-in name",
    "url-invalid": "a URL that is not a plain https:// address",
    # paths
    "path-unsafe": "an absolute path, '..', backslash or other unsafe path in the manifest",
    "path-outside": "a path that resolves outside the submission folder",
    "path-symlink": "a symbolic link inside the submission",
    "path-case-collision": "two names that differ only in case",
    "path-unexpected-file": "a file the manifest does not list (archives are never accepted)",
    "path-layout": "the folder is not submissions/<submitter>/<plugin>-<version>",
    # suite and provenance
    "suite-unsupported": "the suite is not on the board (no reference entry)",
    "suite-hash-mismatch": "the suite configuration differs from the shipped suite",
    "split-hash-mismatch": "a dataset split differs from the shipped data",
    "dataset-unavailable": "a dataset cannot be loaded here to check its splits",
    "version-mismatch": "the xalbench version is not the one pinned for the suite (or is a local build)",
    "xalbench-modified": "the xalbench source hash differs from the pinned release",
    "provenance-mismatch": "provenance disagrees with the manifest (plugin, versions, environment)",
    # grid
    "grid-missing-cell": "a (dataset, method, seed) cell of the grid is absent",
    "grid-extra-cell": "a cell outside the grid (unknown dataset or method)",
    "grid-seed": "a seed that is not one of the suite's seeds",
    "grid-duplicate-cell": "the same cell listed twice",
    "cell-hash-mismatch": "a cell file's canonical hash differs from the manifest",
    "cell-identity-mismatch": "a cell file describes another dataset, method or seed than its manifest entry",
    "method-invalid": "a method is not '<strategy>+<loss>' of slugs (or a shipped suite method)",
    # rounds and queries
    "round-sequence": "missing, extra or out-of-order rounds",
    "round-budget": "labelled-set sizes or query sizes that do not follow the budget",
    "initial-set-mismatch": "the initial labelled set is not the one the harness draws for this seed",
    "query-out-of-pool": "a queried index outside the pool",
    "query-duplicate": "an index queried twice or already labelled",
    "query-hash-mismatch": "a round's queried-index hash does not match its indices",
    # metrics
    "metric-unknown": "a metric the suite does not compute",
    "metric-range": "a metric outside its bounds",
    "metric-set": "rounds or cells of one dataset report different metric sets",
    "aulc-mismatch": "a stored AULC differs from the one recomputed from the rounds",
    "canary-missing": "the built-in random+ce canary is absent",
    "canary-out-of-band": "the canary's AULC lies outside the reference band",
}


class Rejection(Exception):
    """A submission fails a check: ``code`` (stable, from :data:`REASONS`) and a message."""

    exit_code = 1

    def __init__(self, code: str, message: str) -> None:
        if code not in REASONS:
            raise ValueError(f"unknown rejection code {code!r}")
        self.code = code
        self.message = message
        super().__init__(f"[{code}] {message}")
