"""The code a cell runs, hashed: a module's static import closure (benchopt hashes each solver's own file).

A finished cell is reused only while the code that produced it is unchanged — but only *that*
code: a help-text edit in ``cli/`` or a docstring in ``leaderboard/`` must not make every finished
cell stale. :class:`SourceHashes` hashes, for a module, the source of every module it imports
(``import a.b`` and ``from a import b``, at module level or inside functions; not under
``if TYPE_CHECKING:``), transitively, within the packages the closure is allowed to follow
(xalbench and the component's own top-level package). The harness's code is the closure of
:data:`HARNESS_MODULE` (the cell runner: harness, sandbox, data, training epochs, contracts); each
component is the closure of the module that defines its class.

Files are read once per process (the code this process runs: files edited after import do not
change what runs); the import graph is read from the source text, never by importing.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["HARNESS_EXTRA", "HARNESS_MODULE", "SourceHashes", "import_closure"]

#: The module that runs a cell; its closure (with :data:`HARNESS_EXTRA`) is the harness's code identity.
HARNESS_MODULE = "xalbench.harness.cell"
#: Harness code a cell runs that no import statement reaches (the sandbox's fork-server preload).
HARNESS_EXTRA = ("xalbench.sandbox.preload",)


def _package_root(package: str) -> Path | None:
    module = sys.modules.get(package)
    path = getattr(module, "__file__", None)
    if path is None:
        spec = importlib.util.find_spec(package)
        path = spec.origin if spec is not None else None
    return Path(path).parent if path else None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Absolute names a module's source imports (with ``from a import b``: ``a`` and ``a.b``)."""
    out: set[str] = set()
    here = module.split(".") if is_package else module.split(".")[:-1]

    def visit(nodes: Iterable[ast.stmt | ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                out.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = here[: len(here) - (node.level - 1)]
                    base = ".".join([*parent, base] if base else parent)
                if base:
                    out.add(base)
                    out.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
            visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return out


class SourceHashes:
    """Hashes of the code closures of modules (see the module docstring).

    ``roots`` maps a top-level package to the folder it is read from (default: where it is
    installed), so tests can hash an edited copy of a package."""

    def __init__(self, roots: Mapping[str, str | Path] | None = None) -> None:
        self._roots = {k: Path(v) for k, v in (roots or {}).items()}
        self._files: dict[str, Path | None] = {}
        self._edges: dict[str, frozenset[str]] = {}
        self.closure = functools.lru_cache(maxsize=None)(self._closure)
        self.of_module = functools.lru_cache(maxsize=None)(self._of_module)

    def root(self, package: str) -> Path | None:
        if package not in self._roots:
            found = _package_root(package)
            if found is None:
                return None
            self._roots[package] = found
        return self._roots[package]

    def file(self, module: str) -> Path | None:
        """The source file of ``module`` (``pkg/sub/__init__.py`` for a package), or ``None``."""
        if module not in self._files:
            top, *rest = module.split(".")
            root = self.root(top)
            found = None
            if root is not None:
                base = root.joinpath(*rest)
                for cand in (base.with_suffix(".py"), base / "__init__.py"):
                    if rest and cand.is_file() or not rest and cand.name == "__init__.py" and cand.is_file():
                        found = cand
                        break
            self._files[module] = found
        return self._files[module]

    def imports(self, module: str) -> frozenset[str]:
        if module not in self._edges:
            path = self.file(module)
            names: set[str] = set()
            if path is not None:
                tree = ast.parse(path.read_bytes(), filename=str(path))
                names = _imported(tree, module, path.name == "__init__.py")
                parts = module.split(".")
                names.update(".".join(parts[:i]) for i in range(1, len(parts)))  # parents run first
            self._edges[module] = frozenset(names)
        return self._edges[module]

    def _closure(self, module: str, follow: frozenset[str]) -> tuple[str, ...]:
        """Every module of the ``follow`` packages that ``module`` imports, transitively (sorted)."""
        seen: set[str] = set()
        todo = [module]
        while todo:
            name = todo.pop()
            if name in seen or name.split(".")[0] not in follow or self.file(name) is None:
                continue
            seen.add(name)
            todo.extend(self.imports(name))
        return tuple(sorted(seen))

    def _of_module(self, module: str) -> str:
        follow = frozenset({"xalbench", module.split(".")[0]})
        h = hashlib.sha256()
        for name in self.closure(module, follow):
            path = self.file(name)
            assert path is not None
            h.update(name.encode())
            h.update(path.read_bytes())
        return h.hexdigest()[:16]

    def harness(self) -> str:
        """The harness's code identity: the closures of :data:`HARNESS_MODULE` and :data:`HARNESS_EXTRA`."""
        return hashlib.sha256("".join(self.of_module(m) for m in (HARNESS_MODULE, *HARNESS_EXTRA)).encode()
                              ).hexdigest()[:16]

    def of(self, obj: Any) -> tuple[str, str]:
        """(top-level package, hash of the defining module's closure) for a component class or object."""
        module = getattr(obj, "__module__", None) or type(obj).__module__
        return module.split(".")[0], self.of_module(module)


def import_closure(module: str, *, follow: Iterable[str] = ("xalbench",)) -> tuple[str, ...]:
    """The modules of the ``follow`` packages that ``module`` imports, transitively (for inspection)."""
    return SourceHashes().closure(module, frozenset({*follow, module.split(".")[0]}))
