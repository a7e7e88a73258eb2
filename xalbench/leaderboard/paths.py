"""Folder confinement: what a submission folder may contain and where its manifest may point.

A submission lives at ``submissions/<submitter>/<plugin>-<version>/`` and holds exactly
``manifest.json`` plus the cell files the manifest lists under ``cells/``. Rejected: symbolic
links anywhere (the folder itself included), files the manifest does not list (archives
included), manifest paths that are absolute, contain ``..``, backslashes, drive letters or
other characters outside ``[a-z0-9._+@=-]``, paths resolving outside the folder, names that
differ only in case, and folders over the size or file-count limit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from xalbench.leaderboard.reasons import Rejection
from xalbench.leaderboard.schema import LIMITS

__all__ = ["scan_folder", "check_manifest_path", "check_layout", "CELL_PATH"]

CELL_PATH = re.compile(r"^cells/[a-z0-9][a-z0-9._+@=-]{0,150}\.json$")
_ARCHIVES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".whl", ".rar", ".zst")


def scan_folder(root: Path) -> dict[str, int]:
    """Every regular file under ``root`` (relative POSIX path → size), rejecting symlinks,
    case collisions and size abuse. Never follows links."""
    if root.is_symlink():
        raise Rejection("path-symlink", f"the submission folder {root.name} is a symbolic link")
    if not root.is_dir():
        raise Rejection("file-missing", f"{root} is not a folder")
    files: dict[str, int] = {}
    seen_lower: dict[str, str] = {}
    total = 0
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel = Path(entry.path).relative_to(root).as_posix()
                lower = rel.casefold()
                if lower in seen_lower:
                    raise Rejection("path-case-collision", f"{rel!r} and {seen_lower[lower]!r} differ only in case")
                seen_lower[lower] = rel
                if entry.is_symlink():
                    raise Rejection("path-symlink", f"{rel} is a symbolic link")
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    raise Rejection("path-unexpected-file", f"{rel} is not a regular file")
                if rel.lower().endswith(_ARCHIVES):
                    raise Rejection("path-unexpected-file", f"{rel}: archives are not accepted; commit the JSON files")
                size = entry.stat(follow_symlinks=False).st_size
                total += size
                files[rel] = size
                if len(files) > LIMITS.max_files or total > LIMITS.total_bytes:
                    raise Rejection("submission-too-large", f"more than {LIMITS.max_files} files or "
                                                            f"{LIMITS.total_bytes} bytes in the submission")
    return files


def check_manifest_path(root: Path, path: str, where: str) -> Path:
    """A manifest ``path`` entry → the file inside ``root`` (or a rejection)."""
    pure = PurePosixPath(path)
    if (path.startswith(("/", "~")) or "\\" in path or ".." in pure.parts or re.match(r"^[A-Za-z]:", path)
            or "\x00" in path):
        raise Rejection("path-unsafe", f"{where} = {path!r:.80} is absolute, escapes the folder or uses backslashes")
    if not CELL_PATH.fullmatch(path):
        raise Rejection("path-unsafe", f"{where} = {path!r:.80} must look like cells/<name>.json (lower case)")
    target = (root / pure).resolve()
    if os.path.commonpath([target, root.resolve()]) != str(root.resolve()):
        raise Rejection("path-outside", f"{where} = {path!r} resolves outside the submission folder")
    return root / pure


def check_layout(root: Path, submitter: str, plugin: str, version: str) -> None:
    """The folder must be ``<submitter>/<plugin>-<version>``."""
    want = f"{plugin}-{version}"
    if root.name != want or root.parent.name != submitter:
        raise Rejection("path-layout", f"the folder is {root.parent.name}/{root.name}; the manifest says it must "
                                       f"be {submitter}/{want}")
