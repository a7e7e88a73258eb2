"""Prepared datasets: decode and resize once, in parallel, into a memory-mapped cache.

``<data root>/.xalbench-cache/<dataset>@<size>[-<options hash>]/`` holds

* ``images.npy`` — ``N×C×H×W`` (or ``N×C×D×H×W``) ``uint8`` (``uint16`` with ``bit_depth = 16``);
* ``labels.npy``, ``split.npy`` (0 train, 1 val, 2 test; rows are stored train, val, test),
  ``groups.npy``, ``has_roi.npy``; ``label_mask.npy`` (multi-label ``N×K``, 1 = known) when some
  labels are unknown; ``annotated_slices.npy`` (3D ``N×D`` bool) when only some slices carry ROI;
* ``roi.npy`` / ``class_roi.npy`` — ``uint8`` masks stored only for rows that can have one,
  ``roi_rows.npy`` maps each row to its stored mask (``-1``: none);
* ``sources.txt`` / ``sources.npy`` — every source file's (and image folder's) size and mtime;
* ``manifest.json`` (written last) — cache format, the options key, the dataset metadata,
  each split's :meth:`~xalbench.base.Split.fingerprint` and a SHA-256 content hash.

Later loads map the files read-only (:class:`~xalbench.data.mapped.MappedArray`), so all
worker processes share one copy through the page cache. A missing or changed source file
invalidates the cache (one line on stderr, then it is prepared again). Preparation writes
into ``<dir>.partial/`` chunk by chunk with a progress file, so an interrupted preparation
resumes where it stopped; the finished folder replaces the old one by ``rename``. A file
lock keeps two processes from preparing the same dataset at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from xalbench.base import DatasetBundle, DatasetMeta, Split
from xalbench.data import mapped as mp
from xalbench.data.common import resolve_data_root
from xalbench.errors import ConfigError, DataNotFoundError

__all__ = ["CACHE_DIRNAME", "FORMAT_VERSION", "Plan", "Reader", "Preparable", "cache_root", "check_cache",
           "prepare", "load_prepared", "load_or_prepare", "materialize", "identity", "source_stats", "SourceStats"]

CACHE_DIRNAME = ".xalbench-cache"
FORMAT_VERSION = 1
_SPLITS = ("train", "val", "test")
_PARALLEL_MIN_ROWS = 2048  # below this, worker start-up costs more than decoding in one process
_ARRAYS = ("images", "labels", "split", "groups", "has_roi", "roi_rows", "roi", "class_roi", "label_mask",
           "annotated_slices")


class Reader(Protocol):
    """Produces the stored integers of rows, chunk by chunk."""

    def stream(self, chunk_rows: int, todo: list[int], n_jobs: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``(chunk id, {"images": …, "roi": …, "class_roi": …})`` for each chunk in ``todo``
        (any order); ``roi``/``class_roi`` hold the chunk's candidate rows only."""


@dataclass
class Plan:
    """Everything needed to prepare (or directly load) one dataset, rows in stored order."""

    dirname: str
    key: dict[str, Any]
    meta: DatasetMeta
    image_shape: tuple[int, ...]
    image_dtype: str
    labels: np.ndarray
    split: np.ndarray
    reader: Reader
    groups: np.ndarray | None = None
    roi_rows: np.ndarray | None = None
    class_roi_k: int = 0
    sources: list[str] = field(default_factory=list)
    label_mask: np.ndarray | None = None  #: multi-label ``N×K`` float32, 1 = known (``None``: all known)
    annotated_slices: np.ndarray | None = None  #: 3D ``N×D`` bool: slices whose ROI an expert drew

    @property
    def n(self) -> int:
        return len(self.split)

    @property
    def n_roi(self) -> int:
        return 0 if self.roi_rows is None else int((self.roi_rows >= 0).sum())

    def mask_shape(self) -> tuple[int, ...]:
        return tuple(self.image_shape[1:])


class Preparable(Protocol):
    """What a dataset implements to be prepared (``RealDataset``, ``MedMNIST``)."""

    def cache_identity(self, data_root: str | None = None) -> tuple[str, dict[str, Any]]: ...

    def make_plan(self, data_root: str | None = None) -> Plan: ...


def identity(name: str, size: int, options: dict[str, Any], defaults: dict[str, Any],
             extra_key: dict[str, Any], named: tuple[str, ...] = ("size",)) -> tuple[str, dict[str, Any]]:
    """``(folder name, key)``: ``<name>@<size>`` plus a hash of the options that differ from
    the defaults (except ``named`` ones, already in the name); the key holds every content
    option (``cache``/``in_memory_mb`` excluded)."""
    content = {k: v for k, v in sorted(options.items()) if k not in ("cache", "in_memory_mb")}
    changed = {k: v for k, v in content.items() if k not in named and v != defaults.get(k)}
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    dirname = f"{safe}@{size}"
    if changed:
        dirname += "-" + hashlib.sha256(json.dumps(changed, sort_keys=True, default=str).encode()).hexdigest()[:8]
    key = _normal({"format": FORMAT_VERSION, "dataset": name, "options": content, **extra_key})
    return dirname, key


def _normal(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def cache_root(data_root: str | os.PathLike[str] | None = None) -> Path:
    return resolve_data_root(data_root) / CACHE_DIRNAME


# ------------------------------------------------------------------------------- sources
@dataclass
class SourceStats:
    """Paths (files first, then folders) with their size (-1 for folders) and mtime in ns."""

    paths: list[str]
    size: np.ndarray
    mtime_ns: np.ndarray

    def digest(self) -> str:
        h = hashlib.sha256("\n".join(self.paths).encode())
        h.update(self.size.tobytes())
        h.update(self.mtime_ns.tobytes())
        return h.hexdigest()

    def save(self, folder: Path) -> None:
        (folder / "sources.txt").write_text("\n".join(self.paths) + "\n")
        np.save(folder / "sources.npy", np.stack([self.size, self.mtime_ns], 1).astype(np.int64))

    @classmethod
    def read(cls, folder: Path) -> SourceStats:
        paths = (folder / "sources.txt").read_text().splitlines()
        arr = np.load(folder / "sources.npy")
        if arr.shape != (len(paths), 2):
            raise ValueError("sources.txt and sources.npy disagree")
        return cls(paths, arr[:, 0].copy(), arr[:, 1].copy())


def _stat_block(paths: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(sizes, mtimes, index of the first missing path or -1)."""
    size = np.empty(len(paths), np.int64)
    mtime = np.empty(len(paths), np.int64)
    for i, p in enumerate(paths):
        try:
            st = os.stat(p)
        except OSError:
            return size, mtime, i
        size[i], mtime[i] = st.st_size, st.st_mtime_ns
    return size, mtime, -1


def _stat_all(paths: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`_stat_block` over many paths with threads (``stat`` releases the GIL)."""
    if len(paths) < 2000:
        return _stat_block(paths)
    from concurrent.futures import ThreadPoolExecutor

    step = max(500, len(paths) // 32)
    blocks = [paths[i:i + step] for i in range(0, len(paths), step)]
    with ThreadPoolExecutor(max_workers=8) as ex:
        parts = list(ex.map(_stat_block, blocks))
    for b, (_, _, miss) in enumerate(parts):
        if miss >= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), b * step + miss
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), -1


def source_stats(paths: list[str]) -> SourceStats:
    """Sizes and mtimes of ``paths`` (folders: mtime only, which changes when files are added)."""
    unique = sorted(set(paths))
    files = [p for p in unique if not os.path.isdir(p)]
    folders = [p for p in unique if os.path.isdir(p)]
    ordered = files + folders
    size, mtime, miss = _stat_all(ordered)
    if miss >= 0:
        raise DataNotFoundError(f"source file {ordered[miss]} disappeared while planning the dataset; check the "
                                "data root and run again")
    size[len(files):] = -1
    return SourceStats(ordered, size, mtime)


def _stale_source(stats: SourceStats) -> str | None:
    size, mtime, miss = _stat_all(stats.paths)
    if miss >= 0:
        return f"{stats.paths[miss]} is missing"
    bad = np.flatnonzero(((stats.size >= 0) & (size != stats.size)) | (mtime != stats.mtime_ns))
    return f"{stats.paths[int(bad[0])]} changed since it was prepared" if bad.size else None


def check_cache(cdir: Path, key: dict[str, Any]) -> str | None:
    """``None`` if ``cdir`` is a complete cache for ``key`` whose sources are unchanged, else why not."""
    manifest = cdir / "manifest.json"
    if not manifest.is_file():
        return "not prepared"
    try:
        m = json.loads(manifest.read_text())
        stats = SourceStats.read(cdir)
    except (OSError, ValueError):
        return "its manifest is unreadable"
    if m.get("format") != FORMAT_VERSION:
        return f"it has cache format {m.get('format')}, this xalbench writes {FORMAT_VERSION}"
    if m.get("key") != _normal(key):
        return "it was prepared with other options or from another folder"
    for name in m.get("arrays", []):
        if not (cdir / f"{name}.npy").is_file():
            return f"{name}.npy is missing from the cache"
    return _stale_source(stats)


# ------------------------------------------------------------------------------- preparing
def _default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _chunk_rows(plan: Plan, n_jobs: int) -> int:
    row_bytes = int(np.prod(plan.image_shape)) * np.dtype(plan.image_dtype).itemsize
    by_memory = max(1, (32 << 20) // max(row_bytes, 1))
    by_balance = max(16, plan.n // (8 * n_jobs) or 1)
    return int(max(1, min(by_memory, by_balance, 1024)))


def _plan_hash(plan: Plan, stats: SourceStats) -> str:
    blob = json.dumps({"key": plan.key, "n": plan.n, "shape": plan.image_shape, "dtype": plan.image_dtype,
                       "k": plan.class_roi_k, "n_roi": plan.n_roi, "sources": stats.digest()}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def _open_store(path: Path, dtype: str, shape: tuple[int, ...], fresh: bool) -> np.ndarray:
    if fresh or not path.is_file():
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    arr = np.lib.format.open_memmap(path, mode="r+")
    if arr.shape != shape or str(arr.dtype) != dtype:
        raise OSError(f"{path} has shape {arr.shape}, expected {shape}")
    return arr


def _progress_bar(total: int, initial: int, desc: str, show: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="img", disable=not show, dynamic_ncols=True,
                file=sys.stderr)


def prepare(plan: Plan, root: Path, *, n_jobs: int | None = None, progress: bool | None = None,
            chunk_rows: int | None = None) -> Path:
    """Write ``plan`` into ``root/plan.dirname`` (resuming a partial run); return the folder."""
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    final, partial = root / plan.dirname, root / f"{plan.dirname}.partial"
    with FileLock(str(root / f"{plan.dirname}.lock")):
        if check_cache(final, plan.key) is None:
            return final  # another process finished it while we waited
        n_jobs = 1 if plan.n < _PARALLEL_MIN_ROWS else (n_jobs or _default_jobs())
        show = sys.stderr.isatty() if progress is None else progress
        stats = source_stats(plan.sources)
        phash = _plan_hash(plan, stats)
        state_path = partial / "progress.json"
        state: dict[str, Any] = {}
        if state_path.is_file():
            try:
                state = json.loads(state_path.read_text())
            except ValueError:
                state = {}
        fresh = state.get("plan") != phash
        if fresh:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            state = {"plan": phash, "chunk_rows": chunk_rows or _chunk_rows(plan, n_jobs), "done": []}
            _atomic_json(state_path, state)
        step = int(state["chunk_rows"])
        n_chunks = -(-plan.n // step)
        done = set(int(c) for c in state["done"])
        images = _open_store(partial / "images.npy", plan.image_dtype, (plan.n, *plan.image_shape), fresh)
        roi_store = class_store = None
        cum = np.zeros(plan.n + 1, dtype=np.int64)
        if plan.roi_rows is not None:
            cum[1:] = np.cumsum(plan.roi_rows >= 0)
            roi_store = _open_store(partial / "roi.npy", "uint8", (plan.n_roi, *plan.mask_shape()), fresh)
            if plan.class_roi_k:
                class_store = _open_store(partial / "class_roi.npy", "uint8",
                                          (plan.n_roi, plan.class_roi_k, *plan.mask_shape()), fresh)
        todo = [c for c in range(n_chunks) if c not in done]
        rows_done = sum(min(step, plan.n - c * step) for c in done)
        bar = _progress_bar(plan.n, rows_done, plan.dirname, show)
        try:
            for cid, arrays in plan.reader.stream(step, todo, n_jobs):
                a, b = cid * step, min(plan.n, (cid + 1) * step)
                images[a:b] = arrays["images"]
                images.flush()
                if roi_store is not None:
                    roi_store[cum[a]:cum[b]] = arrays["roi"]
                    roi_store.flush()
                if class_store is not None:
                    class_store[cum[a]:cum[b]] = arrays["class_roi"]
                    class_store.flush()
                done.add(cid)
                state["done"] = sorted(done)
                _atomic_json(state_path, state)
                bar.update(b - a)
        finally:
            bar.close()
        if len(done) != n_chunks:
            raise DataNotFoundError(f"preparation of {plan.dirname} stopped after {len(done)}/{n_chunks} chunks; "
                                    "run it again to resume")
        del images, roi_store, class_store
        _finalise(plan, partial, stats)
        trash = root / f"{plan.dirname}.old-{os.getpid()}"
        if final.exists():
            os.replace(final, trash)
        os.replace(partial, final)
        shutil.rmtree(trash, ignore_errors=True)
    return final


def _file_hash(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(16 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _finalise(plan: Plan, partial: Path, stats: SourceStats) -> None:
    arrays = ["images", "labels", "split"]
    np.save(partial / "labels.npy", plan.labels)
    np.save(partial / "split.npy", plan.split.astype(np.int8))
    if plan.groups is not None:
        np.save(partial / "groups.npy", np.asarray(plan.groups, dtype=str))
        arrays.append("groups")
    for name in ("label_mask", "annotated_slices"):
        value = getattr(plan, name)
        if value is not None:
            np.save(partial / f"{name}.npy", value)
            arrays.append(name)
    has_roi = np.zeros(plan.n, dtype=bool)
    if plan.roi_rows is not None:
        roi = np.load(partial / "roi.npy", mmap_mode="r")
        cand = np.flatnonzero(plan.roi_rows >= 0)
        for s in range(0, len(cand), 4096):
            part = cand[s:s + 4096]
            has_roi[part] = roi[plan.roi_rows[part]].reshape(len(part), -1).max(1) > 0
        np.save(partial / "roi_rows.npy", plan.roi_rows.astype(np.int64))
        arrays += ["roi_rows", "roi"] + (["class_roi"] if plan.class_roi_k else [])
    np.save(partial / "has_roi.npy", has_roi)
    arrays.append("has_roi")
    bundle = _assemble(partial, plan.meta, arrays, fingerprints=None)
    fingerprints = {s: mp.split_fingerprint(getattr(bundle, s)) for s in _SPLITS}
    del bundle
    stats.save(partial)
    manifest = {
        "format": FORMAT_VERSION, "key": plan.key, "dirname": plan.dirname, "n": plan.n,
        "image_shape": list(plan.image_shape), "image_dtype": plan.image_dtype, "arrays": arrays,
        "meta": asdict(plan.meta), "fingerprints": fingerprints,
        "content_sha256": _file_hash([partial / f"{a}.npy" for a in arrays]),
    }
    _atomic_json(partial / "manifest.json", manifest)
    (partial / "progress.json").unlink(missing_ok=True)


# ------------------------------------------------------------------------------- loading
def _meta(d: dict[str, Any]) -> DatasetMeta:
    d = dict(d)
    d["class_names"] = tuple(d["class_names"])
    d["image_shape"] = tuple(d["image_shape"])
    return DatasetMeta(**d)


def _assemble(cdir: Path, meta: DatasetMeta, arrays: list[str], fingerprints: dict[str, str] | None,
              in_memory_mb: int = 0) -> DatasetBundle:
    load = {a: (cdir / f"{a}.npy") for a in arrays}
    split = np.load(load["split"])
    labels = np.load(load["labels"])
    groups = np.load(load["groups"]).astype(object) if "groups" in load else None
    has_roi = np.load(load["has_roi"]) if "has_roi" in load else np.zeros(len(split), bool)
    roi_rows = np.load(load["roi_rows"]) if "roi_rows" in load else None
    label_mask = np.load(load["label_mask"]) if "label_mask" in load else None
    annotated = np.load(load["annotated_slices"]) if "annotated_slices" in load else None
    images = mp.MappedArray(load["images"])
    roi = class_roi = None
    if roi_rows is not None:
        roi = mp.MappedArray(load["roi"], roi_rows, max_value=1.0)
        if "class_roi" in load:
            class_roi = mp.MappedArray(load["class_roi"], roi_rows, max_value=1.0)
    total = sum(v.nbytes for v in (images, roi, class_roi) if v is not None)
    in_memory = total <= in_memory_mb * (1 << 20)
    splits: dict[str, Split] = {}
    for code, s in enumerate(_SPLITS):
        idx = np.flatnonzero(split == code)
        if idx.size == 0:
            raise ConfigError(f"dataset {meta.name!r}: split {s!r} is empty")
        t_idx = torch.from_numpy(idx)

        def view(a: mp.MappedArray | None, idx: np.ndarray = idx) -> Any:
            if a is None:
                return None
            v = a.take(idx)
            return v.materialize() if in_memory else v

        sp = mp.MappedSplit(
            images=view(images), labels=torch.from_numpy(labels)[t_idx], roi=view(roi),
            has_roi=torch.from_numpy(has_roi)[t_idx] if roi is not None else None, class_roi=view(class_roi),
            groups=None if groups is None else groups[idx],
            label_mask=None if label_mask is None else torch.from_numpy(label_mask)[t_idx],
            annotated_slices=None if annotated is None else torch.from_numpy(annotated)[t_idx],
            stored_fingerprint=None if fingerprints is None else fingerprints[s])
        splits[s] = sp
    return DatasetBundle(meta, splits["train"], splits["val"], splits["test"])


def load_prepared(cdir: Path, *, in_memory_mb: int = 0) -> DatasetBundle:
    """Map a prepared cache read-only; splits under ``in_memory_mb`` MiB (float32) are read into RAM."""
    m = json.loads((cdir / "manifest.json").read_text())
    return _assemble(cdir, _meta(m["meta"]), list(m["arrays"]), m["fingerprints"], in_memory_mb)


def materialize(plan: Plan) -> DatasetBundle:
    """Decode ``plan`` in this process into in-memory tensors (the direct loader; no cache)."""
    n, step = plan.n, max(1, min(plan.n, 256))
    images = np.zeros((n, *plan.image_shape), dtype=plan.image_dtype)
    rois: dict[int, dict[str, np.ndarray]] = {}
    for cid, arrays in plan.reader.stream(step, list(range(-(-n // step))), 1):
        images[cid * step:(cid + 1) * step] = arrays["images"]
        rois[cid] = arrays
    top = mp.MAX_VALUE[plan.image_dtype]
    roi = class_roi = None
    if plan.roi_rows is not None:
        order = sorted(rois)
        stored = np.concatenate([rois[c]["roi"] for c in order]) if order else \
            np.zeros((0, *plan.mask_shape()), np.uint8)
        roi = np.zeros((n, *plan.mask_shape()), dtype=np.float32)
        cand = plan.roi_rows >= 0
        roi[cand] = mp.to_float(stored[plan.roi_rows[cand]], 1.0)
        if plan.class_roi_k:
            cstored = np.concatenate([rois[c]["class_roi"] for c in order])
            class_roi = np.zeros((n, plan.class_roi_k, *plan.mask_shape()), dtype=np.float32)
            class_roi[cand] = mp.to_float(cstored[plan.roi_rows[cand]], 1.0)
    splits: dict[str, Split] = {}
    for code, s in enumerate(_SPLITS):
        idx = np.flatnonzero(plan.split == code)
        if idx.size == 0:
            raise ConfigError(f"dataset {plan.meta.name!r}: split {s!r} is empty")
        r = None if roi is None else torch.from_numpy(roi[idx])
        splits[s] = Split(
            images=torch.from_numpy(mp.to_float(images[idx], top)), labels=torch.from_numpy(plan.labels[idx]),
            roi=r, has_roi=None if r is None else r.flatten(1).amax(1) > 0,
            class_roi=None if class_roi is None else torch.from_numpy(class_roi[idx]),
            groups=None if plan.groups is None else np.asarray(plan.groups, dtype=object)[idx],
            label_mask=None if plan.label_mask is None else torch.from_numpy(plan.label_mask[idx]),
            annotated_slices=None if plan.annotated_slices is None else torch.from_numpy(plan.annotated_slices[idx]))
    return DatasetBundle(plan.meta, splits["train"], splits["val"], splits["test"])


def _writable(root: Path) -> bool:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def _say(msg: str) -> None:
    print(f"xalbench: {msg}", file=sys.stderr, flush=True)


def load_or_prepare(ds: Preparable, data_root: str | None = None, *, in_memory_mb: int = 0,
                    n_jobs: int | None = None, progress: bool | None = None,
                    on_plan: Callable[[Plan], None] | None = None) -> DatasetBundle:
    """Map ``ds``'s prepared cache; prepare it first if it is missing or out of date.

    An unwritable data root falls back to decoding in memory (one line on stderr).
    """
    root = cache_root(data_root)
    dirname, key = ds.cache_identity(data_root)
    cdir = root / dirname
    reason = check_cache(cdir, key)
    if reason is None:
        try:
            return load_prepared(cdir, in_memory_mb=in_memory_mb)
        except OSError:  # replaced by another process between the check and the load
            reason = "being prepared again"
    plan = ds.make_plan(data_root)
    if on_plan is not None:
        on_plan(plan)
    if not _writable(root):
        _say(f"cannot write the prepared cache under {root}; decoding {dirname} in memory this time "
             "(pass a writable --data-root to prepare it once)")
        return materialize(plan)
    if reason not in ("not prepared", "being prepared again"):
        _say(f"prepared cache {dirname} is out of date ({reason}); preparing it again")
    elif progress or (progress is None and sys.stderr.isatty()):
        _say(f"preparing {dirname} once under {root} (later loads map it)")
    prepare(plan, root, n_jobs=n_jobs, progress=progress)
    return load_prepared(cdir, in_memory_mb=in_memory_mb)
