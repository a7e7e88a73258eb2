"""``xalbench data list`` / ``xalbench data fetch`` back ends.

``data_list`` answers from metadata and file checks only (nothing is loaded);
``data_fetch`` downloads MedMNIST files (MD5 from ``medmnist.INFO`` verified) and prints
manual instructions for datasets that need a licence click-through.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from xalbench.data.common import resolve_data_root
from xalbench.data.converters import FORMATS
from xalbench.data.medmnist import MedMNIST, _sizes, medmnist_file, medmnist_info
from xalbench.data.names import parse_dataset_ref
from xalbench.data.real import ManifestDataset, RealDataset
from xalbench.data.volumes import VOLUME_SOURCES, Volumes3D
from xalbench.errors import ConfigError, DataNotFoundError, XalbenchError

__all__ = ["data_list", "data_fetch", "md5_file"]

_EMBEDDED_SHAPE = {
    "synth-lesion-2d": ("multi-class", 2), "synth-lesion-3d": ("multi-class", 3),
    "synth-cxr-multilabel": ("multi-label", 2), "decoy-digits": ("multi-class", 2),
}
_REAL_TASK = {"vindr": "multi-label", "siim-covid": "multi-class", "nih": "multi-label", "ham10000": "multi-class",
              "brats": "multi-class", "rsna": "multi-class", "siim-acr": "multi-class", "chexpert": "multi-label"}
_NO_ROI = ("chexpert",)


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _dir_size(root: Path) -> int:
    if root.is_file():
        return root.stat().st_size
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def _prepared(data_root: str | None, prefix: str) -> str:
    """Sizes with a finished prepared cache (``*``: prepared with non-default options), or ``-``."""
    from xalbench.data.prepared import cache_root

    root = cache_root(data_root)
    if not root.is_dir():
        return "-"
    out = []
    for d in sorted(root.glob(f"{prefix}@*")):
        size, _, variant = d.name[len(prefix) + 1:].partition("-")
        if d.is_dir() and size.isdigit() and (d / "manifest.json").is_file():
            out.append(size + ("*" if variant else ""))
    return ",".join(sorted(set(out), key=lambda v: (int(v.rstrip("*")), v))) or "-"


def _medmnist_rows(data_root: str | None) -> list[dict[str, Any]]:
    from medmnist.info import INFO

    rows = []
    for flag, info in INFO.items():
        present = [s for s in _sizes(flag) if MedMNIST({"flag": flag, "size": s}).available(data_root)]
        n = info["n_samples"]
        rows.append({
            "name": f"medmnist:{flag}", "available": bool(present),
            "sizes_present": ",".join(str(s) for s in present) or "-",
            "n": f"{n['train']}/{n['val']}/{n['test']}", "license": info.get("license", "unknown"),
            "synthetic": False, "task": "multi-label" if info["task"].startswith("multi-label") else "multi-class",
            "dims": 3 if flag.endswith("3d") else 2, "roi": False, "url": info.get("url", "-"),
            "prepared": _prepared(data_root, f"medmnist-{flag}"),
        })
    return rows


def data_list(registry: Any, data_root: str | None = None) -> list[dict[str, Any]]:
    """One dict per dataset (``medmnist`` expanded per flag): name, available, n, licence, synthetic, task, dims,
    download page (``url``) and the sizes with a prepared cache (``prepared``)."""
    rows: list[dict[str, Any]] = []
    for name in registry.names("dataset"):
        cls = registry.get("dataset", name)
        cls = getattr(cls, "obj", cls)
        if cls is MedMNIST:
            rows.extend(_medmnist_rows(data_root))
            continue
        if cls is ManifestDataset:
            rows.append({"name": "manifest:<csv>", "available": None, "sizes_present": "-", "n": "-",
                         "license": "yours", "synthetic": False, "task": "either", "dims": 2, "roi": None,
                         "url": "-", "prepared": "-"})
            continue
        if cls is Volumes3D:
            rows.append({"name": "volumes-3d:<csv>", "available": None, "sizes_present": "-", "n": "-",
                         "license": "yours (each collection's own; LIDC-IDRI on TCIA: CC BY 3.0)",
                         "synthetic": False, "task": "either", "dims": 3, "roi": None, "url": VOLUME_SOURCES,
                         "prepared": "-"})
            continue
        try:
            ds = cls()
            available = bool(ds.available(data_root))
        except XalbenchError:
            ds, available = None, False
        opts = ds.options.to_dict() if ds is not None else {}
        row: dict[str, Any] = {"name": name, "available": available, "sizes_present": "-", "n": "-",
                               "license": "unknown", "synthetic": bool(getattr(cls, "synthetic", False)),
                               "task": "?", "dims": "?", "roi": None, "url": "-", "prepared": "-"}
        if name in _EMBEDDED_SHAPE:
            row["task"], row["dims"] = _EMBEDDED_SHAPE[name]
            row["license"] = "CC BY 4.0 (UCI digits)" if name == "decoy-digits" else "BSD-3-Clause (generated)"
            row["roi"] = True
            if "n_train" in opts:
                row["n"] = f"{opts['n_train'] or 'rest'}/{opts.get('n_val', '?')}/{opts.get('n_test', '?')}"
            if "size" in opts:
                row["sizes_present"] = str(opts["size"]) + " (any)"
        elif isinstance(ds, RealDataset) and ds.fmt in FORMATS:
            info = FORMATS[ds.fmt]
            row.update(task=_REAL_TASK[ds.fmt], dims=2, license=info.license, roi=ds.fmt not in _NO_ROI,
                       url=info.url, prepared=_prepared(data_root, name))
            if available:
                row["sizes_present"] = f"{_dir_size(ds.root(data_root)) / 1e6:.0f} MB on disk"
        rows.append(row)
    return rows


def _download(url: str, dest: Path, md5: str) -> None:
    tmp = dest.with_name(dest.name + f".{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as fh:  # noqa: S310 (https URL from INFO)
            shutil.copyfileobj(resp, fh, length=1 << 20)
        got = md5_file(tmp)
        if got != md5:
            raise DataNotFoundError(f"download of {url} has MD5 {got}, expected {md5}; try again, or download it "
                                    f"by hand and put it at {dest}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def data_fetch(ref: str, data_root: str | None = None) -> Path:
    """Download ``medmnist:<flag>[@size]`` into ``<data root>/medmnist/`` (MD5-verified); return the file.

    Other real datasets need a licence click-through: the error says where to get them.
    Embedded datasets are generated (and cached with a checksum) instead.
    """
    name, opts = parse_dataset_ref(ref)
    root = resolve_data_root(data_root)
    if name == "medmnist":
        flag, size = opts["flag"], int(opts.get("size", 28))
        medmnist_info(flag)
        fname, url, md5 = medmnist_file(flag, size)
        dest = root / "medmnist" / fname
        if dest.is_file() and md5_file(dest) == md5:
            return dest
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataNotFoundError(f"cannot create {dest.parent} ({exc}); pass a writable --data-root") from exc
        try:
            _download(url, dest, md5)
        except (OSError, ValueError) as exc:
            raise DataNotFoundError(
                f"could not download {url} ({exc}). Without network: download it elsewhere, check MD5 {md5}, "
                f"and copy it to {dest}") from exc
        return dest
    for info in FORMATS.values():
        if name == info.name:
            raise DataNotFoundError(
                f"{name} cannot be downloaded automatically (licence/registration): get it from {info.url} and "
                f"unpack it into {root / info.default_dir}. {info.note}")
    if name in _EMBEDDED_SHAPE:
        from xalbench.plugins import load_registry

        load_registry().create("dataset", name, opts).load(data_root)
        return root / "synthetic"
    raise ConfigError(f"don't know how to fetch {ref!r}; fetchable: medmnist:<flag>[@size]; "
                      f"manual: {', '.join(i.name for i in FORMATS.values())}")
