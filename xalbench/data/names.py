"""Parametrised dataset references: ``medmnist:<flag>[@size]`` and ``manifest:<csv>``.

The registry holds classes by plain name (``medmnist``, ``manifest``); the runner calls
:func:`parse_dataset_ref` for names containing ``:`` and merges the returned options under
the suite's explicit ``options`` (explicit options win).
"""

from __future__ import annotations

from typing import Any

from xalbench.errors import ConfigError

__all__ = ["format_dataset_ref", "parse_dataset_ref", "resolve_dataset_spec"]

_PARAMETRISED = ("medmnist", "manifest")


def parse_dataset_ref(ref: str) -> tuple[str, dict[str, Any]]:
    """``"medmnist:dermamnist@64"`` → ``("medmnist", {"flag": "dermamnist", "size": 64})``;
    ``"manifest:data/x.csv"`` → ``("manifest", {"path": "data/x.csv"})``; plain names pass through.
    """
    ref = ref.strip()
    if ":" not in ref:
        return ref, {}
    name, _, arg = ref.partition(":")
    name = name.strip()
    if not arg:
        raise ConfigError(f"dataset reference {ref!r} has nothing after ':'; "
                          "use medmnist:<flag>[@size] or manifest:<csv path>")
    if name == "medmnist":
        flag, _, size = arg.partition("@")
        opts: dict[str, Any] = {"flag": flag.strip().lower()}
        if size:
            if not size.strip().isdigit():
                raise ConfigError(f"dataset reference {ref!r}: size after '@' must be 28, 64, 128 or 224")
            opts["size"] = int(size)
        return name, opts
    if name == "manifest":
        return name, {"path": arg}
    raise ConfigError(f"dataset reference {ref!r}: only {', '.join(n + ':' for n in _PARAMETRISED)} take an "
                      "argument after ':'; other datasets take options in the suite's 'options' table")


def format_dataset_ref(name: str, options: dict[str, Any]) -> str:
    """Inverse of :func:`parse_dataset_ref` for display (``medmnist:dermamnist@64``)."""
    if name == "medmnist" and "flag" in options:
        return f"medmnist:{options['flag']}@{options.get('size', 28)}"
    if name == "manifest" and "path" in options:
        return f"manifest:{options['path']}"
    return name


def resolve_dataset_spec(spec: Any) -> Any:
    """A suite's dataset entry with a ``medmnist:dermamnist@64`` style reference → registered name +
    options (explicit options win); plain names pass through."""
    if ":" not in spec.name:
        return spec
    from xalbench.suite import ComponentSpec

    name, options = parse_dataset_ref(spec.name)
    return ComponentSpec(name, {**options, **spec.options}, spec.label or spec.name, spec.optional)
