"""Helpers shared by the CLI commands (no torch at import)."""

from __future__ import annotations

import argparse
import os

from xalbench.errors import ConfigError

__all__ = ["add_debug", "data_root", "device", "seeds_arg"]


def seeds_arg(text: str) -> list[int]:
    """``--seeds 0,1,2``: unique non-negative integers, at least one."""
    parts = [s.strip() for s in text.split(",") if s.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"--seeds needs at least one integer, like 0,1,2 (got {text!r})")
    try:
        seeds = [int(s) for s in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes comma-separated integers like 0,1,2, not {text!r}") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds must be unique integers ≥ 0, got {text!r}")
    return seeds


def positive_int(name: str, minimum: int = 1):  # noqa: ANN201 - argparse type factory
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} takes an integer ≥ {minimum}, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be ≥ {minimum}, got {value}")
        return value

    return parse


def add_debug(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def data_root(value: str | None) -> str | None:
    return value or os.environ.get("XALBENCH_DATA")


def device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return choice
