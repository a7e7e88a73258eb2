"""``xalbench data prepare NAME[@SIZE]``: build a dataset's memory-mapped cache ahead of a run.

``NAME`` is a registered real dataset (``nih-cxr14@224``, ``chexpert@224``), a MedMNIST
reference (``medmnist:chestmnist@224``) or a manifest (``manifest:path/to/m.csv@128``);
``--option key=value`` sets any other dataset option (values are read as JSON when they
parse, e.g. ``--option uncertain=U-Zeros --option max_train=2000``). The cache is the one a
suite with the same options maps, so prepare with the options the suite uses.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from xalbench.errors import ConfigError

__all__ = ["add_prepare_arguments", "run_prepare", "parse_prepare_ref"]


def add_prepare_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``prepare``'s arguments to ``parser`` (a ``data`` sub-command parser)."""
    parser.add_argument("name", help="dataset[@size], e.g. nih-cxr14@224, medmnist:chestmnist@224, manifest:m.csv@128")
    parser.add_argument("--data-root", default=None, help="folder with real datasets (default: $XALBENCH_DATA)")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                        help="dataset option (repeatable); must match the suite's options to be reused")
    parser.add_argument("--jobs", "-j", type=int, default=0, help="decoding processes (default: one per core)")
    parser.add_argument("--force", action="store_true", help="prepare again even if the cache is up to date")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def parse_prepare_ref(ref: str) -> tuple[str, dict[str, Any]]:
    """``"nih-cxr14@224"`` → ``("nih-cxr14", {"size": 224})``; ``medmnist:``/``manifest:`` as in suites."""
    from xalbench.data.names import parse_dataset_ref

    ref = ref.strip()
    if ref.startswith("manifest:") and "@" in ref.rpartition("/")[2]:
        head, _, size = ref.rpartition("@")
        name, opts = parse_dataset_ref(head)
    elif ":" in ref:
        return parse_dataset_ref(ref)
    else:
        name, _, size = ref.partition("@")
        opts = {}
    if size:
        if not size.strip().isdigit():
            raise ConfigError(f"dataset reference {ref!r}: the size after '@' must be an integer (pixels)")
        opts["size"] = int(size)
    return name.strip(), opts


def _options(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r} is not KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def run_prepare(args: argparse.Namespace) -> int:
    """Prepare (or confirm) the cache of ``args.name``; prints where it is. Returns 0."""
    from xalbench.data.prepared import cache_root, check_cache, prepare
    from xalbench.plugins import load_registry

    name, opts = parse_prepare_ref(args.name)
    opts.update(_options(args.option))
    dataset = load_registry().create("dataset", name, opts)
    if not hasattr(dataset, "make_plan"):
        raise ConfigError(f"dataset {name!r} is generated in memory (embedded/synthetic); there is nothing to prepare")
    root = cache_root(args.data_root)
    dirname, key = dataset.cache_identity(args.data_root)
    cdir = root / dirname
    reason = check_cache(cdir, key)
    if reason is None and not args.force:
        print(f"{name}: up to date at {cdir} ({_du(cdir) / 1e6:.0f} MB)")
        return 0
    if reason not in (None, "not prepared"):
        print(f"{name}: cache out of date ({reason}); preparing it again", file=sys.stderr)
    if args.force and cdir.exists():
        shutil.rmtree(cdir)
    t0 = time.perf_counter()
    plan = dataset.make_plan(args.data_root)
    out = prepare(plan, root, n_jobs=args.jobs or None, progress=False if args.quiet else None)
    print(f"{name}: prepared {plan.n} images {plan.image_shape} {plan.image_dtype} in "
          f"{time.perf_counter() - t0:.1f} s at {out} ({_du(out) / 1e6:.0f} MB)")
    return 0
