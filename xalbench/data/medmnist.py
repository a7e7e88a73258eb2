"""``medmnist``: MedMNIST v2/v3 npz files read directly with ``np.load`` (2D and 3D flags).

Only metadata comes from ``medmnist.INFO`` (task, class names, licence, URL, MD5); the
medmnist dataset classes are not used because they assert the official sample counts
(see shared/reference/data-and-determinism.md §1). Files are looked up as
``<data root>/medmnist/<flag>[_<size>].npz``, then ``<data root>/<file>``, then
``~/.medmnist/<file>``. MedMNIST has no ROI: ``meta.has_roi`` is False and explanation
metrics report "n/a". Splits are MedMNIST's official ones (patient-level where the source
data had patient ids); ``max_*`` subsample them deterministically for CPU runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xalbench.base import Dataset, DatasetBundle, DatasetMeta
from xalbench.data.common import resolve_data_root, split_rng, to_split
from xalbench.errors import DataNotFoundError, OptionsError
from xalbench.options import Options

__all__ = ["MedMNIST", "medmnist_info", "medmnist_file", "KEYS"]

KEYS = ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")
_CACHE: dict[tuple[Any, ...], DatasetBundle] = {}
_LOCK = threading.Lock()


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


class MedMNIST(Dataset):
    """A MedMNIST dataset (2D or 3D) from its npz file; ``medmnist:<flag>[@size]``."""

    name: ClassVar[str] = "medmnist"
    summary: ClassVar[str] = "MedMNIST v3 npz (2D and 3D flags, sizes 28–224), official splits, no ROI"
    paper: ClassVar[str] = "Yang et al., MedMNIST v2, Scientific Data 10:41 (2023)"
    synthetic: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Options(Options):
        """``flag`` e.g. dermamnist / organmnist3d; ``size`` 28/64/128/224; ``max_*`` 0 = all."""

        flag: str = "dermamnist"
        size: int = 28
        max_train: int = 0
        max_val: int = 0
        max_test: int = 0
        as_gray: bool = False
        seed: int = 0

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

    def load(self, data_root: str | None = None) -> DatasetBundle:
        o = self.options
        info = medmnist_info(o.flag)
        path = self.path(data_root)
        key = (str(path), path.stat().st_mtime_ns, tuple(sorted(o.to_dict().items())))
        with _LOCK:
            if key in _CACHE:
                return _CACHE[key]
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in KEYS if k not in z.files]
            if missing:
                raise DataNotFoundError(f"{path} is not a MedMNIST npz: missing keys {missing}; delete it and fetch "
                                        f"it again with `xalbench data fetch medmnist:{o.flag}@{o.size}`")
            raw = {k: z[k] for k in KEYS}
        is3d = o.flag.endswith("3d")
        multilabel = info["task"].startswith("multi-label")
        splits = {}
        for s, cap in (("train", o.max_train), ("val", o.max_val), ("test", o.max_test)):
            x, y = raw[f"{s}_images"], raw[f"{s}_labels"].reshape(raw[f"{s}_labels"].shape[0], -1)
            if cap and x.shape[0] > cap:
                idx = np.sort(split_rng(o.seed, s, salt=11).permutation(x.shape[0])[:cap])
                x, y = x[idx], y[idx]
            x = x.astype(np.float32) / 255.0
            if is3d:
                x = x[:, None]  # N×D×H×W → N×1×D×H×W
            elif x.ndim == 4:  # N×H×W×3 → N×3×H×W
                x = np.moveaxis(x, -1, 1)
                if o.as_gray:
                    x = x.mean(1, keepdims=True)
            else:
                x = x[:, None]
            labels = y.astype(np.float32) if multilabel else y[:, 0].astype(np.int64)
            splits[s] = to_split(x, labels, multilabel=multilabel)
        names = tuple(v for _, v in sorted(info["label"].items(), key=lambda kv: int(kv[0])))
        shape = tuple(splits["train"].images.shape[1:])
        meta = DatasetMeta(
            name=f"medmnist:{o.flag}@{o.size}",
            task="multi-label" if multilabel else "multi-class",
            class_names=names,
            in_channels=int(shape[0]),
            spatial_dims=3 if is3d else 2,
            image_shape=shape,
            modality=info.get("python_class", o.flag),
            license=info.get("license", "unknown"),
            source=f"{medmnist_file(o.flag, o.size)[1]} read from {path}",
            synthetic=False,
            has_roi=False,
            notes=f"MedMNIST task {info['task']!r}; official splits; no ROI (explanation metrics n/a)",
        )
        bundle = DatasetBundle(meta, splits["train"], splits["val"], splits["test"])
        with _LOCK:
            _CACHE[key] = bundle
        return bundle
