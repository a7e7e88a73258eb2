"""Real-data datasets built on the manifest loader: ``manifest`` (any CSV, or any known format
via ``format``) and one named dataset per converter (``vindr-cxr``, ``siim-covid19``,
``nih-cxr14``, ``ham10000``, ``brats``, ``rsna-pneumonia``, ``siim-acr-pneumothorax``,
``chexpert``) so ``xalbench data list`` can show each one.

Paths: ``path`` relative → under the data root; empty → ``<data root>/<default folder>``.

Loading (``cache = "auto"``, the default) maps the prepared cache
``<data root>/.xalbench-cache/<name>@<size>/`` and prepares it on first use
(:mod:`xalbench.data.prepared`); a dataset whose float32 images and masks take at most
``in_memory_mb`` MiB is then read into RAM, larger ones stay memory-mapped
(:class:`~xalbench.data.mapped.MappedArray`). ``cache = "off"`` decodes in memory every
time. Both give bitwise-identical tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd

from xalbench.base import Dataset, DatasetBundle
from xalbench.data.common import resolve_data_root
from xalbench.data.converters import FORMATS, FormatInfo, missing_error
from xalbench.data.decode import BoxFusion
from xalbench.data.manifest import ManifestSpec, SplitOptions, plan_manifest, read_manifest
from xalbench.data.prepared import Plan, identity, load_or_prepare, materialize
from xalbench.errors import DataNotFoundError, OptionsError

__all__ = ["RealDataset", "ManifestDataset", "VinDrCXR", "SIIMCovid19", "NIHChestXray14", "HAM10000", "BraTS",
           "RSNAPneumonia", "SIIMPneumothorax", "CheXpert", "NAMED_REAL"]

@dataclass(frozen=True)
class RealOptions(SplitOptions):
    """Shared options of real datasets: the splits (:class:`~xalbench.data.manifest.SplitOptions`,
    ``max_*`` = 0 keeping every image of that split), ``box_fusion`` of raters' boxes,
    ``bit_depth`` 8 or 16 (stored image precision); ``cache`` "auto" (prepare once, then
    map) or "off" (decode in memory every time); ``in_memory_mb``: prepared datasets up to
    this size (float32) are read into RAM, larger ones stay memory-mapped.
    """

    path: str = ""
    size: int = 64
    channels: int = 0
    box_fusion: BoxFusion = "union"
    bit_depth: int = 8
    cache: Literal["auto", "off"] = "auto"
    in_memory_mb: int = 256


def _label_files(root: Path) -> list[Path]:
    """Label tables and split lists next to the images (they invalidate the cache too)."""
    if not root.is_dir():
        return [root] if root.is_file() else []
    return sorted(p for pat in ("*.csv", "*.txt", "*/*.csv", "*/*.txt") for p in root.glob(pat) if p.is_file())


class RealDataset(Dataset):
    """Base of converter-backed real datasets; subclasses set ``fmt``."""

    synthetic: ClassVar[bool] = False
    fmt: ClassVar[str] = ""
    Options = RealOptions
    identity_exempt: ClassVar[tuple[str, ...]] = ("cache", "in_memory_mb")

    def _format(self) -> FormatInfo:
        return FORMATS[self.fmt]

    def root(self, data_root: str | None = None) -> Path:
        base = resolve_data_root(data_root)
        p = Path(self.options.path).expanduser() if self.options.path else Path(self._format().default_dir)
        return p if p.is_absolute() else base / p

    def available(self, data_root: str | None = None) -> bool:
        root = self.root(data_root)
        return root.exists() and not self._format().missing(root)

    def _spec(self, info: FormatInfo, **extra: Any) -> ManifestSpec:
        o = self.options
        if o.size < 8 or o.channels not in (0, 1, 3) or o.bit_depth not in (8, 16):
            raise OptionsError(f"dataset {self.name!r}: need size ≥ 8, channels in 0 (format default), 1 or 3, "
                               "and bit_depth 8 or 16")
        return ManifestSpec(size=o.size, channels=o.channels or info.channels, box_fusion=o.box_fusion,
                            bit_depth=o.bit_depth, **o.splits(), **extra)

    def _convert(self, info: FormatInfo, root: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, tuple[str, ...]]:
        missing = info.missing(root) if root.exists() else list(info.required)
        if missing:
            raise missing_error(info, root, missing)
        return info.convert(root, **self.options.to_dict())

    def _cached(self, key: tuple[Any, ...], build: Callable[[], DatasetBundle]) -> DatasetBundle:
        """``build()`` (the prepared cache on disk is the cache; a run's Runtime keeps the bundle)."""
        return build()

    # ------------------------------------------------------------------ preparation
    def _spec_extra(self) -> dict[str, Any]:
        """Subclass hook: extra :class:`ManifestSpec` fields."""
        return {}

    def cache_identity(self, data_root: str | None = None) -> tuple[str, dict[str, Any]]:
        """``(cache folder name, key)`` of this dataset with these options."""
        return identity(self.name, self.options.size, self.options.to_dict(), self.Options().to_dict(),
                        {"root": str(self.root(data_root))})

    def make_plan(self, data_root: str | None = None) -> Plan:
        """Convert the native files and plan the rows (labels, splits, decode items)."""
        info, root = self._format(), self.root(data_root)
        df, boxes, names = self._convert(info, root)
        task = "multi-label" if "labels" in df.columns or info.label_columns else "auto"
        spec = self._spec(info, class_names=names, task=task, label_columns=names if info.label_columns else (),
                          **self._spec_extra())
        dirname, key = self.cache_identity(data_root)
        return plan_manifest(df, boxes, spec, name=self.name, modality=info.modality, license=info.license,
                             source=f"{info.url}; read from {root}",
                             notes=f"real data; splits at patient/case level. {info.note}", dirname=dirname, key=key,
                             extra_sources=_label_files(root))

    def load(self, data_root: str | None = None) -> DatasetBundle:
        root = self.root(data_root)
        key = (type(self).__name__, str(root), str(resolve_data_root(data_root)),
               tuple(sorted(self.options.to_dict().items())))
        return self._cached(key, lambda: self._load(data_root))

    def _load(self, data_root: str | None) -> DatasetBundle:
        if self.options.cache == "off":
            return materialize(self.make_plan(data_root))
        return load_or_prepare(self, data_root, in_memory_mb=self.options.in_memory_mb)


class VinDrCXR(RealDataset):
    """VinDr-CXR (PhysioNet): multi-label chest X-rays with radiologists' boxes (several raters)."""

    name: ClassVar[str] = "vindr-cxr"
    summary: ClassVar[str] = "VinDr-CXR chest X-rays (DICOM), multi-label findings, boxes from 3 radiologists → masks"
    paper: ClassVar[str] = "Nguyen et al., VinDr-CXR, Scientific Data 9:429 (2022)"
    fmt: ClassVar[str] = "vindr"


class SIIMCovid19(RealDataset):
    """SIIM-FISABIO-RSNA COVID-19: study-level 4-class labels, opacity boxes."""

    name: ClassVar[str] = "siim-covid19"
    summary: ClassVar[str] = "SIIM-FISABIO-RSNA COVID-19 chest X-rays (DICOM), 4 study classes, opacity boxes → masks"
    paper: ClassVar[str] = "Lakhani et al., The 2021 SIIM-FISABIO-RSNA ML COVID-19 Challenge, J Digit Imaging (2023)"
    fmt: ClassVar[str] = "siim-covid"


class NIHChestXray14(RealDataset):
    """NIH ChestX-ray14: 14 findings, patient-level splits, boxes on 880 test images."""

    name: ClassVar[str] = "nih-cxr14"
    summary: ClassVar[str] = "NIH ChestX-ray14 (PNG), 14 findings multi-label, BBox_List_2017 boxes → masks"
    paper: ClassVar[str] = "Wang et al., ChestX-ray8, CVPR 2017"
    fmt: ClassVar[str] = "nih"


class HAM10000(RealDataset):
    """HAM10000 dermatoscopy: 7 diagnoses, Tschandl lesion masks, split by lesion."""

    name: ClassVar[str] = "ham10000"
    summary: ClassVar[str] = "HAM10000 dermatoscopy (7 classes) with Tschandl lesion masks, split by lesion_id"
    paper: ClassVar[str] = "Tschandl et al., The HAM10000 dataset, Scientific Data 5:180161 (2018)"
    fmt: ClassVar[str] = "ham10000"


@dataclass(frozen=True)
class BraTSOptions(RealOptions):
    """BraTS: ``modality`` file suffix, tumour-voxel ``slice_threshold``, slices of each label per case."""

    modality: str = "flair"
    slice_threshold: int = 500
    slices_per_case: int = 4


class BraTS(RealDataset):
    """BraTS brain MRI: axial slices, tumour vs no tumour, ROI = seg > 0, split by case."""

    name: ClassVar[str] = "brats"
    summary: ClassVar[str] = "BraTS MRI (NIfTI) axial slices: tumour (≥ threshold voxels) vs none, ROI = seg > 0"
    paper: ClassVar[str] = "Menze et al., The Multimodal Brain Tumor Image Segmentation Benchmark, IEEE TMI 2015"
    fmt: ClassVar[str] = "brats"
    Options = BraTSOptions


@dataclass(frozen=True)
class RSNAOptions(RealOptions):
    """``classes``: "binary" (Target: lung opacity or not) or "detailed" (Normal / No Lung Opacity /
    Not Normal / Lung Opacity, from ``stage_2_detailed_class_info.csv``)."""

    classes: Literal["binary", "detailed"] = "binary"


class RSNAPneumonia(RealDataset):
    """RSNA Pneumonia Detection Challenge: lung-opacity label per patient, opacity boxes → masks."""

    name: ClassVar[str] = "rsna-pneumonia"
    summary: ClassVar[str] = "RSNA Pneumonia Detection chest X-rays (DICOM), opacity vs none (or 3 classes), boxes → masks"
    paper: ClassVar[str] = "Shih et al., Augmenting the NIH Chest Radiograph Dataset with Expert Annotations of " \
                           "Possible Pneumonia, Radiology: AI 1(1) (2019)"
    fmt: ClassVar[str] = "rsna"
    Options = RSNAOptions


@dataclass(frozen=True)
class SIIMPneumothoraxOptions(RealOptions):
    """``rle_starts``: "relative" (``train-rle.csv``) or "absolute" for a file that uses absolute starts."""

    rle_starts: Literal["relative", "absolute"] = "relative"


class SIIMPneumothorax(RealDataset):
    """SIIM-ACR Pneumothorax: pneumothorax vs none, ROI = union of the image's run-length masks."""

    name: ClassVar[str] = "siim-acr-pneumothorax"
    summary: ClassVar[str] = "SIIM-ACR Pneumothorax chest X-rays (DICOM), pneumothorax vs none, RLE masks (union) as ROI"
    paper: ClassVar[str] = "SIIM-ACR Pneumothorax Segmentation challenge (Kaggle, 2019)"
    fmt: ClassVar[str] = "siim-acr"
    Options = SIIMPneumothoraxOptions

    def _spec_extra(self) -> dict[str, Any]:
        return {"rle_relative": self.options.rle_starts == "relative"}


@dataclass(frozen=True)
class CheXpertOptions(RealOptions):
    """``uncertain``: label policy for −1 (CheXpert paper): U-Ones, U-Zeros, U-Ignore (keeps the
    images; uncertain labels get ``Split.label_mask`` 0 and are left out of the multi-label losses
    and metrics, as the paper) or U-Ignore-drop (drops every image with an uncertain selected
    observation); ``view``: frontal, lateral or both; ``observations``: subset of the 14 (default
    all); ``valid_split``: use ``valid.csv`` as "test", "val" or not ("none")."""

    uncertain: Literal["U-Ones", "U-Zeros", "U-Ignore", "U-Ignore-drop"] = "U-Ones"
    view: Literal["frontal", "lateral", "both"] = "frontal"
    observations: tuple[str, ...] = ()
    valid_split: Literal["none", "test", "val"] = "none"


class CheXpert(RealDataset):
    """CheXpert: 14 observations (multi-label) with an uncertain-label policy; no masks."""

    name: ClassVar[str] = "chexpert"
    summary: ClassVar[str] = "CheXpert chest X-rays (JPEG), 14 observations multi-label, U-Ones/U-Zeros/U-Ignore, no ROI"
    paper: ClassVar[str] = "Irvin et al., CheXpert, AAAI 2019"
    fmt: ClassVar[str] = "chexpert"
    Options = CheXpertOptions

    def _spec_extra(self) -> dict[str, Any]:
        return {"unknown_value": -1.0} if self.options.uncertain == "U-Ignore" else {}

    def cache_identity(self, data_root: str | None = None) -> tuple[str, dict[str, Any]]:
        """U-Ignore used to drop images (now ``U-Ignore-drop``): its caches name the per-label mask, so
        a cache prepared under the old meaning is prepared again."""
        dirname, key = super().cache_identity(data_root)
        if self.options.uncertain == "U-Ignore":
            key = {**key, "uncertain_labels": "label_mask"}
        return dirname, key


@dataclass(frozen=True)
class ManifestOptions(BraTSOptions):
    """Generic manifest: ``path`` to a CSV (``format = "manifest"``) or a dataset folder of a known format."""

    format: Literal["manifest", "vindr", "siim-covid", "nih", "ham10000", "brats", "rsna", "siim-acr",
                    "chexpert"] = "manifest"
    boxes: str = ""
    task: Literal["auto", "multi-class", "multi-label"] = "auto"
    label_columns: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    negative_label: str = "No Finding"
    modality_name: str = "unknown"
    license: str = "unknown"


class ManifestDataset(RealDataset):
    """Any images + labels CSV (+ masks, run-length masks or a box table), or a known real format via ``format``."""

    name: ClassVar[str] = "manifest"
    summary: ClassVar[str] = ("Generic manifest CSV: image_path, split, group_id, label(s), mask_path/mask_rle or a "
                              "box table; also vindr/siim-covid/nih/ham10000/brats/rsna/siim-acr/chexpert via format")
    Options = ManifestOptions

    def _csv(self, data_root: str | None) -> Path:
        p = Path(self.options.path).expanduser()
        return p if p.is_absolute() else resolve_data_root(data_root) / p

    def available(self, data_root: str | None = None) -> bool:
        o = self.options
        if o.format != "manifest":
            return FORMATS[o.format].missing(self.root(data_root)) == [] and self.root(data_root).exists()
        return bool(o.path) and self._csv(data_root).is_file()

    def root(self, data_root: str | None = None) -> Path:
        if self.options.format == "manifest":
            return self._csv(data_root)
        p = Path(self.options.path or FORMATS[self.options.format].default_dir).expanduser()
        return p if p.is_absolute() else resolve_data_root(data_root) / p

    def _inner(self) -> RealDataset:
        named = next(c for c in NAMED_REAL if c.fmt == self.options.format)
        return named({k: v for k, v in self.options.to_dict().items() if k in named.Options.field_names()})

    def _boxes(self, csv: Path) -> Path | None:
        o = self.options
        if not o.path or not csv.is_file():
            raise DataNotFoundError(
                f"manifest CSV {csv if o.path else '(no path given)'} not found; write a CSV with columns image_path, "
                "label (or labels / label_columns), optional split, group_id, mask_path, mask_rle, image_id, and "
                "pass manifest:<path> (relative paths are under the data root)")
        boxes_path = Path(o.boxes).expanduser() if o.boxes else None
        if boxes_path is not None and not boxes_path.is_absolute():
            boxes_path = csv.parent / boxes_path
        if boxes_path is not None and not boxes_path.is_file():
            raise DataNotFoundError(f"box table {boxes_path} not found (columns image_id, class, x_min, y_min, "
                                    "x_max, y_max[, rater_id])")
        return boxes_path

    def cache_identity(self, data_root: str | None = None) -> tuple[str, dict[str, Any]]:
        csv = self._csv(data_root)
        boxes = self._boxes(csv)
        return identity(f"manifest-{csv.stem}", self.options.size, self.options.to_dict(), self.Options().to_dict(),
                        {"csv": str(csv), "boxes": str(boxes or "")})

    def make_plan(self, data_root: str | None = None) -> Plan:
        o = self.options
        csv = self._csv(data_root)
        boxes_path = self._boxes(csv)
        if o.size < 8 or o.channels not in (0, 1, 3) or o.bit_depth not in (8, 16):
            raise OptionsError("dataset 'manifest': need size ≥ 8, channels 0, 1 or 3 and bit_depth 8 or 16")
        df = read_manifest(csv)
        boxes = pd.read_csv(boxes_path) if boxes_path is not None else None
        spec = ManifestSpec(size=o.size, channels=o.channels or 1, task=o.task, label_columns=o.label_columns,
                            class_names=o.class_names, negative_label=o.negative_label, box_fusion=o.box_fusion,
                            bit_depth=o.bit_depth, **o.splits())
        dirname, key = self.cache_identity(data_root)
        return plan_manifest(df, boxes, spec, name=f"manifest:{o.path}", modality=o.modality_name,
                             license=o.license, source=str(csv), dirname=dirname, key=key,
                             extra_sources=[csv] + ([boxes_path] if boxes_path else []))

    def load(self, data_root: str | None = None) -> DatasetBundle:
        o = self.options
        if o.format != "manifest":
            return self._inner().load(data_root)
        csv = self._csv(data_root)
        self._boxes(csv)
        key = ("manifest", str(csv), csv.stat().st_mtime_ns, str(resolve_data_root(data_root)),
               tuple(sorted(o.to_dict().items())))
        return self._cached(key, lambda: self._load(data_root))


NAMED_REAL: tuple[type[RealDataset], ...] = (VinDrCXR, SIIMCovid19, NIHChestXray14, HAM10000, BraTS, RSNAPneumonia,
                                             SIIMPneumothorax, CheXpert)
