"""``medmnist``: MedMNIST v2/v3 npz files read directly (2D and 3D flags).

Only metadata comes from ``medmnist.INFO`` (task, class names, licence, URL, MD5); the
medmnist dataset classes are not used because they assert the official sample counts, which
fabricated or subsampled files do not have. Files are looked up as
``<data root>/medmnist/<flag>[_<size>].npz``, then ``<data root>/<file>``, then
``~/.medmnist/<file>``. MedMNIST has no ROI: ``meta.has_roi`` is False and explanation
metrics report "n/a". Splits are MedMNIST's official ones (patient-level where the source
data had patient ids); ``max_*`` subsample them deterministically for CPU runs.

With ``cache = "auto"`` (default) the images are streamed once from the npz (never all in
RAM) into the prepared cache ``.xalbench-cache/medmnist-<flag>@<size>/`` and mapped from
there (:mod:`xalbench.data.prepared`); ``cache = "off"`` reads them in memory.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from xalbench.base import Dataset, DatasetBundle, DatasetMeta
from xalbench.data.common import resolve_data_root, split_rng
from xalbench.data.prepared import Plan, identity, load_or_prepare, materialize
from xalbench.data.quant import quantize
from xalbench.errors import DataNotFoundError, OptionsError
from xalbench.options import Options

__all__ = ["MedMNIST", "medmnist_info", "medmnist_file", "KEYS", "NpzReader"]

KEYS = ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")


def medmnist_info(flag: str) -> dict[str, Any]:
    """``medmnist.INFO[flag]`` with a did-you-mean error for unknown flags."""
    from medmnist.info import INFO

    from xalbench.options import did_you_mean

    if flag not in INFO:
        raise OptionsError(f"unknown MedMNIST flag {flag!r}; {did_you_mean(flag, list(INFO))}"
                           f"known flags: {', '.join(INFO)}")
    return INFO[flag]


def _sizes(flag: str) -> tuple[int, ...]:
    return (28, 64) if flag.endswith("3d") else (28, 64, 128, 224)


def medmnist_file(flag: str, size: int) -> tuple[str, str, str]:
    """``(file name, URL, MD5)`` of one flag at one size."""
    info = medmnist_info(flag)
    if size not in _sizes(flag):
        raise OptionsError(f"MedMNIST {flag} comes in sizes {list(_sizes(flag))}, not {size}")
    suffix = "" if size == 28 else f"_{size}"
    return f"{flag}{suffix}.npz", info[f"url{suffix}"], info[f"MD5{suffix}"]


def _npy_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of the npz members (headers only)."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            with zf.open(name) as fh:
                out[name[:-4] if name.endswith(".npy") else name] = tuple(_npy_header(fh)[0])
    return out


def _to_stored(x: np.ndarray, is3d: bool, as_gray: bool) -> np.ndarray:
    """Raw MedMNIST rows → stored ``N×C×H×W`` (``N×1×D×H×W``) uint8."""
    if is3d:
        return x[:, None]
    if x.ndim == 4:  # N×H×W×3 → N×3×H×W
        x = np.moveaxis(x, -1, 1)
        if as_gray:
            return quantize(x.astype(np.float64).mean(1, keepdims=True) / 255.0)
        return np.ascontiguousarray(x)
    return x[:, None]


@dataclass
class NpzReader:
    """Streams selected rows of ``<split>_images`` members in order (bounded memory)."""

    path: str
    parts: list[tuple[str, np.ndarray]]  # (member, selected rows of it, ascending)
    is3d: bool
    as_gray: bool
    block_rows: int = 512

    def _rows(self) -> Iterator[np.ndarray]:
        with zipfile.ZipFile(self.path) as zf:
            for member, sel in self.parts:
                with zf.open(f"{member}.npy") as fh:
                    shape, fortran, dtype = _npy_header(fh)
                    if fortran:
                        raise DataNotFoundError(f"{self.path}:{member} is Fortran-ordered; re-save it in C order")
                    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
                    for start in range(0, shape[0], self.block_rows):
                        k = min(self.block_rows, shape[0] - start)
                        block = np.frombuffer(fh.read(k * row_bytes), dtype=dtype).reshape(k, *shape[1:])
                        want = sel[(sel >= start) & (sel < start + k)] - start
                        if want.size:
                            yield _to_stored(block[want].astype(np.uint8, copy=False), self.is3d, self.as_gray)

    def stream(self, chunk_rows: int, todo: list[int], n_jobs: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        wanted, buf, n_buf, cid = set(todo), [], 0, 0
        for rows in self._rows():
            buf.append(rows)
            n_buf += len(rows)
            while n_buf >= chunk_rows:
                block = np.concatenate(buf)
                if cid in wanted:
                    yield cid, {"images": block[:chunk_rows]}
                buf, n_buf, cid = [block[chunk_rows:]], n_buf - chunk_rows, cid + 1
        if n_buf and cid in wanted:
            yield cid, {"images": np.concatenate(buf)}


class MedMNIST(Dataset):
    """A MedMNIST dataset (2D or 3D) from its npz file; ``medmnist:<flag>[@size]``."""

    name: ClassVar[str] = "medmnist"
    summary: ClassVar[str] = "MedMNIST v3 npz (2D and 3D flags, sizes 28–224), official splits, no ROI"
    paper: ClassVar[str] = "Yang et al., MedMNIST v2, Scientific Data 10:41 (2023)"
    synthetic: ClassVar[bool] = False
    identity_exempt: ClassVar[tuple[str, ...]] = ("cache", "in_memory_mb")

    @dataclass(frozen=True)
    class Options(Options):
        """``flag`` e.g. dermamnist / organmnist3d; ``size`` 28/64/128/224; ``max_*`` 0 = all;
        ``as_gray``: RGB → mean (rounded to uint8); ``cache``/``in_memory_mb`` as for real datasets."""

        flag: str = "dermamnist"
        size: int = 28
        max_train: int = 0
        max_val: int = 0
        max_test: int = 0
        as_gray: bool = False
        seed: int = 0
        cache: Literal["auto", "off"] = "auto"
        in_memory_mb: int = 256

    def candidates(self, data_root: str | None = None) -> list[Path]:
        fname = medmnist_file(self.options.flag, self.options.size)[0]
        root = resolve_data_root(data_root)
        return [root / "medmnist" / fname, root / fname, Path("~/.medmnist").expanduser() / fname]

    def available(self, data_root: str | None = None) -> bool:
        return any(p.is_file() for p in self.candidates(data_root))

    def path(self, data_root: str | None = None) -> Path:
        for p in self.candidates(data_root):
            if p.is_file():
                return p
        o = self.options
        fname, url, md5 = medmnist_file(o.flag, o.size)
        where = self.candidates(data_root)[0]
        raise DataNotFoundError(
            f"MedMNIST file {fname} not found (looked in {', '.join(str(p.parent) for p in self.candidates(data_root))}). "
            f"Run `xalbench data fetch medmnist:{o.flag}@{o.size}` or download {url} (MD5 {md5}) to {where}")

    def cache_identity(self, data_root: str | None = None) -> tuple[str, dict[str, Any]]:
        o = self.options
        path = self.path(data_root)
        return identity(f"medmnist-{o.flag}", o.size, o.to_dict(), self.Options().to_dict(), {"file": str(path)},
                        named=("size", "flag"))

    def make_plan(self, data_root: str | None = None) -> Plan:
        o = self.options
        info = medmnist_info(o.flag)
        path = self.path(data_root)
        try:
            shapes = npz_shapes(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise DataNotFoundError(f"{path} is not a readable npz ({exc}); delete it and fetch it again with "
                                    f"`xalbench data fetch medmnist:{o.flag}@{o.size}`") from exc
        missing = [k for k in KEYS if k not in shapes]
        if missing:
            raise DataNotFoundError(f"{path} is not a MedMNIST npz: missing keys {missing}; delete it and fetch "
                                    f"it again with `xalbench data fetch medmnist:{o.flag}@{o.size}`")
        is3d = o.flag.endswith("3d")
        multilabel = info["task"].startswith("multi-label")
        parts, labels, codes = [], [], []
        with np.load(path, allow_pickle=False) as z:
            for code, (s, cap) in enumerate((("train", o.max_train), ("val", o.max_val), ("test", o.max_test))):
                y = z[f"{s}_labels"]
                y = y.reshape(y.shape[0], -1)
                sel = np.arange(y.shape[0])
                if cap and y.shape[0] > cap:
                    sel = np.sort(split_rng(o.seed, s, salt=11).permutation(y.shape[0])[:cap])
                parts.append((f"{s}_images", sel))
                labels.append(y[sel].astype(np.float32) if multilabel else y[sel, 0].astype(np.int64))
                codes.append(np.full(len(sel), code, dtype=np.int8))
        raw = shapes["train_images"][1:]
        if is3d:
            shape: tuple[int, ...] = (1, *raw)
        elif len(raw) == 3:
            shape = (1 if o.as_gray else raw[-1], *raw[:2])
        else:
            shape = (1, *raw)
        names = tuple(v for _, v in sorted(info["label"].items(), key=lambda kv: int(kv[0])))
        meta = DatasetMeta(
            name=f"medmnist:{o.flag}@{o.size}", task="multi-label" if multilabel else "multi-class",
            class_names=names, in_channels=int(shape[0]), spatial_dims=3 if is3d else 2, image_shape=shape,
            modality=info.get("python_class", o.flag), license=info.get("license", "unknown"),
            source=f"{medmnist_file(o.flag, o.size)[1]} read from {path}", synthetic=False, has_roi=False,
            notes=f"MedMNIST task {info['task']!r}; official splits; no ROI (explanation metrics n/a)")
        dirname, key = self.cache_identity(data_root)
        return Plan(dirname=dirname, key=key, meta=meta, image_shape=shape, image_dtype="uint8",
                    labels=np.concatenate(labels), split=np.concatenate(codes),
                    reader=NpzReader(str(path), parts, is3d, o.as_gray), sources=[str(path)])

    def load(self, data_root: str | None = None) -> DatasetBundle:
        o = self.options
        self.path(data_root)  # a missing file: DataNotFoundError with instructions, before any work
        if o.cache == "off":
            return materialize(self.make_plan(data_root))
        return load_or_prepare(self, data_root, in_memory_mb=o.in_memory_mb)
