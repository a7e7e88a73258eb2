"""``xalbench new-plugin``: a complete, pip-installable plugin distribution from templates.

:func:`plan` validates a name (a slug that no registered component of that kind uses), a kind and
a distribution name; :func:`render` turns a :class:`PluginNames` into the distribution's files
(``string.Template`` files shipped in ``xalbench/scaffold/templates``); :func:`create` checks
the target folder and writes them. Every check runs before the first file is written.

Example::

    from xalbench.scaffold import create
    create("my-strategy", kind="strategy", target="xalbench-my-strategy")
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import re
import string
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from xalbench.errors import ConfigError

__all__ = ["KINDS", "PluginNames", "create", "plan", "render"]

Kind = Literal["strategy", "loss", "explainer", "metric"]
KINDS: tuple[str, ...] = ("strategy", "loss", "explainer", "metric")
#: NAME: lower-case words of letters and digits joined by single hyphens, starting with a letter
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_NAME = 40

_HOOKS = {"strategy": "register_strategies", "loss": "register_losses", "explainer": "register_explainers",
          "metric": "register_metrics"}
_SUMMARIES = {
    "strategy": "Least confidence: lowest top-class probability first",
    "loss": "CE + lam * share of the Grad-CAM energy outside the ROI",
    "explainer": "Gradient saliency: max over channels of |d logit / d input|",
    "metric": "Brier score of the test predictions (lower is better)",
}
_CHECKS = {"strategy": "the strategy conformance kit", "loss": "the loss conformance kit",
           "explainer": "the explainer conformance kit", "metric": "values checked by hand"}


@dataclasses.dataclass(frozen=True)
class PluginNames:
    """Every name a generated distribution uses, derived from the component's ``name`` and ``kind``."""

    name: str
    kind: str
    dist: str
    package: str
    class_name: str

    @property
    def key(self) -> str:
        """A metric's summary key (``aulc_<key>``): the name with underscores."""
        return self.name.replace("-", "_")

    @property
    def default_dist(self) -> bool:
        return self.dist == f"xalbench-{self.name}"


def _slug_error(what: str, value: str) -> ConfigError:
    return ConfigError(f"{what} {value!r} is not a slug: use lower-case letters and digits in words joined by "
                       f"single '-', starting with a letter, at most {MAX_NAME} characters (e.g. my-strategy)")


def plan(name: str, kind: str = "strategy", dist: str | None = None) -> PluginNames:
    """Validate ``name``, ``kind`` and ``dist`` (default ``xalbench-<name>``) and derive the package and class."""
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise _slug_error("NAME", name)
    dist = dist or f"xalbench-{name}"
    if len(dist) > MAX_NAME + 9 or not NAME_RE.match(dist):
        raise _slug_error("--dist", dist)
    class_name = "".join(part[:1].upper() + part[1:] for part in name.split("-"))
    return PluginNames(name=name, kind=kind, dist=dist, package=dist.replace("-", "_"), class_name=class_name)


def _template(filename: str) -> string.Template:
    return string.Template((resources.files(__package__) / "templates" / filename).read_text(encoding="utf-8"))


def _layout(names: PluginNames, extra: list[tuple[str, str]]) -> str:
    rows = [("pyproject.toml", f'[project.entry-points.xalbench] {names.package} = "{names.package}"'),
            (f"src/{names.package}/{names.kind}.py", f"the {names.kind}: edit this"),
            (f"src/{names.package}/plugin.py", f"@xalbench.hookimpl {_HOOKS[names.kind]}(register)"),
            (f"tests/test_{names.package}.py", f"entry point + {_CHECKS[names.kind]}"),
            (".github/workflows/ci.yml", "installs the plugin and runs its tests on every push"), *extra]
    width = max(len(path) for path, _ in rows) + 2
    return f"{names.dist}/\n" + "".join(f"  {path.ljust(width)} {what}\n" for path, what in rows)


def render(names: PluginNames) -> dict[str, str]:
    """The distribution's files: relative POSIX path → text (nothing is written)."""
    from xalbench import __version__

    major_minor = ".".join(__version__.split(".")[:2])
    suite_file = f"try-{names.name}.toml" if names.kind in ("explainer", "metric") else None
    extra = [(suite_file, f"a smoke-sized suite with the {names.kind} plugged in")] if suite_file else []
    command = f"xalbench new-plugin {names.name} --kind {names.kind}"
    if not names.default_dist:
        command += f" --dist {names.dist}"
    values: dict[str, Any] = {
        "name": names.name, "kind": names.kind, "dist": names.dist, "package": names.package,
        "class_name": names.class_name, "module": names.kind, "hook": _HOOKS[names.kind], "key": names.key,
        "display": names.key, "summary": _SUMMARIES[names.kind], "xalbench_requirement": f"xalbench>={major_minor}",
        "command": command, "layout": _layout(names, extra),
        "explainer": names.name if names.kind == "explainer" else "gradcam",
        "metrics": f'"{names.name}"' if names.kind == "metric" else "",
    }
    values["details"] = _template(f"readme_{names.kind}.md.tmpl").substitute(values)
    src = f"src/{names.package}"
    files = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        ".gitignore": "gitignore.tmpl",
        ".github/workflows/ci.yml": "ci.yml.tmpl",
        f"{src}/__init__.py": "init.py.tmpl",
        f"{src}/plugin.py": "plugin.py.tmpl",
        f"{src}/{names.kind}.py": f"{names.kind}.py.tmpl",
        f"tests/test_{names.package}.py": f"test_{names.kind}.py.tmpl",
    }
    if suite_file:
        files[suite_file] = "try_suite.toml.tmpl"
    return {path: _template(tmpl).substitute(values) for path, tmpl in files.items()}


def _check_free(names: PluginNames, registry: Any) -> None:
    """The name is not registered for this kind (nor, for a metric, its summary key); the distribution
    is not installed."""
    taken = {n.replace("_", "-"): n for n in registry.names(names.kind)}  # `soft_dice` also takes `soft-dice`
    if names.name in taken:
        rec = registry.record(names.kind, taken[names.name])
        raise ConfigError(f"{names.kind} {rec.name!r} is already registered by {rec.distribution} {rec.version}; "
                          f"choose another NAME (see `xalbench plugins --kind {names.kind}`)")
    if names.kind == "metric":
        keys = {registry.get("metric", n).summary_key(): n for n in registry.names("metric")}
        if names.key in keys:
            raise ConfigError(f"metric key {names.key!r} (aulc_{names.key}) is already used by metric "
                              f"{keys[names.key]!r}; choose another NAME")
    try:
        importlib.metadata.distribution(names.dist)
    except importlib.metadata.PackageNotFoundError:
        return
    raise ConfigError(f"a distribution named {names.dist!r} is already installed; choose another NAME or --dist")


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is not a folder; pass --dir with a new or empty folder")
    if target.is_dir() and any(target.iterdir()):
        raise ConfigError(f"{target} exists and is not empty; pass --dir with a new or empty folder")


def create(name: str, kind: str = "strategy", target: str | Path | None = None, *, dist: str | None = None,
           registry: Any = None) -> tuple[Path, list[str]]:
    """Check everything, then write the distribution to ``target`` (default ``./<dist>``); returns the
    folder and the files written. ``registry`` defaults to the installed plugins'."""
    names = plan(name, kind, dist)
    root = Path(target) if target is not None else Path(names.dist)
    _check_target(root)
    if registry is None:
        from xalbench.plugins import PluginSelection

        registry = PluginSelection.from_env().registry()
    _check_free(names, registry)
    files = render(names)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    return root, sorted(files)
