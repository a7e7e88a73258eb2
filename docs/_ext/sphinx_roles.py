"""Griffe extension: render the Sphinx roles of xalbench's docstrings as cross-references.

xalbench's docstrings are written for any reader of the source (``:class:`Split```, ``:meth:`scores```,
``Example::``). mkdocstrings renders Markdown, so this extension rewrites, once the package is loaded:

* ``:role:`target``` / ``:role:`~target``` / ``:role:`text <target>``` (class, meth, func, mod, data, attr,
  exc, obj) → a link to ``target`` resolved from the docstring's own scope, shown as code (``~`` keeps
  the last name, as in Sphinx). A target the site does not document is shown as code, without a link
  (mkdocs-autorefs' *optional* references), so private functions named in a docstring are not errors;
* a paragraph ending in ``::`` → ``:`` (the indented literal block after it is Markdown code already).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?P<role>class|meth|func|mod|data|attr|exc|obj):`(?P<body>[^`]+)`")
LITERAL = re.compile(r"(?<=\S)::$", re.MULTILINE)
CALLABLE_ROLES = ("meth", "func")


def _resolve(obj: griffe.Object, target: str) -> str:
    """The full path of ``target`` as seen from ``obj`` (itself, its parents, their imports)."""
    head, _, rest = target.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            path = scope.resolve(head)
        except Exception:  # noqa: BLE001 - griffe raises NameResolutionError, or ValueError on odd names
            scope = scope.parent
            continue
        return f"{path}.{rest}" if rest else path
    return target


def rewrite(text: str, obj: griffe.Object) -> str:
    """``text`` with its roles turned into (optional) cross-references and ``::`` into ``:``."""

    def link(match: re.Match[str]) -> str:
        role, body = match["role"], match["body"].strip()
        explicit = re.fullmatch(r"(?P<text>.+?)\s*<(?P<target>[^>]+)>", body)
        if explicit:
            shown, target = explicit["text"], explicit["target"]
        else:
            target = body.lstrip("~!")
            shown = target.rsplit(".", 1)[-1] if body.startswith("~") else target
            if role in CALLABLE_ROLES and not shown.endswith(")"):
                shown += "()"
        path = target if target.startswith("xalbench.") else _resolve(obj, target.lstrip("."))
        return (f'<autoref identifier="{html.escape(path)}" optional>'
                f"<code>{html.escape(shown)}</code></autoref>")

    return LITERAL.sub(":", ROLE.sub(link, text))


class SphinxRoles(griffe.Extension):
    """Rewrite every docstring of the loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = rewrite(obj.docstring.value, obj)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
