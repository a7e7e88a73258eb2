"""What crosses the sandbox boundary: one spec and one data bundle per cell, one request and one
reply per round.

The dataclasses below are the **whole** vocabulary between the harness and a strategy's
sandbox, and they are deliberately narrow: none of them has a field for pool labels, for
pool masks on a hidden-mask track, for the test split or for the oracle, so there is no way
to send those by mistake. :class:`CellData` refuses pool masks unless the track shows them.

Everything is sent by value with the standard :mod:`pickle` module (never through
``multiprocessing``'s own pickler, which moves torch tensors to shared memory that the
receiver could write), and every builder copies what it takes from the harness, so neither
side ever holds a reference into the other's tensors.

The one exception is a pool larger than RAM: images (and ROIs) that the harness holds as a
read-only :class:`~xalbench.data.mapped.MappedArray` view of a prepared cache travel as a
:class:`MappedRef` — the cache file's path, the view's rows and scale, and the file's identity
(path, size, mtime, the content hash stored at preparation) — and the sandbox maps the same
file read-only (shared through the page cache, nothing copied). Only image and ROI files are
ever referenced, never the cache's labels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xalbench.base import Split, Task
from xalbench.data.mapped import MappedArray
from xalbench.data.mapped_pool import FileIdentity, file_identity, rows_identity, view_identity, view_parts

__all__ = [
    "CellData",
    "ComponentRef",
    "ErrorReply",
    "MappedRef",
    "QueryReply",
    "Ready",
    "RoundRequest",
    "SandboxSpec",
    "digest",
    "make_cell_data",
    "make_round_request",
    "private_copy",
    "send_array",
    "state_dict_tensors",
    "state_value",
]


@dataclasses.dataclass(frozen=True)
class ComponentRef:
    """A component the sandbox instantiates: a registered ``name`` looked up in the sandbox's
    own registry (built from :attr:`SandboxSpec.selection`), or the class itself (``cls``,
    pickled by reference: importable as ``module.QualName``), which skips building a registry."""

    kind: str
    name: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    cls: type | None = None

    @classmethod
    def of(cls, kind: str, component: str | type, options: Mapping[str, Any] | None = None) -> ComponentRef:
        """From a registered name or a component class."""
        if isinstance(component, str):
            return cls(kind, component, dict(options or {}))
        return cls(kind, getattr(component, "name", component.__name__), dict(options or {}), component)

    def resolve(self, registry: Any) -> type:
        """The class (``registry`` is a zero-argument callable returning a registry, called only if needed)."""
        if self.cls is not None:
            return self.cls
        return registry().get(self.kind, self.name)

    def portable(self) -> ComponentRef:
        """This reference with ``cls`` dropped when the class cannot be pickled by reference
        (defined in a function, created with ``type()``): the sandbox then looks the name up."""
        if self.cls is None or _picklable_by_reference(self.cls):
            return self
        return dataclasses.replace(self, cls=None)


def _picklable_by_reference(obj: type) -> bool:
    try:
        return pickle.loads(pickle.dumps(obj)) is obj
    except Exception:  # noqa: BLE001 - any failure means "not by reference"
        return False


@dataclasses.dataclass(frozen=True)
class SandboxSpec:
    """Everything fixed for one cell's sandbox (small, picklable)."""

    strategy: ComponentRef
    model: ComponentRef
    explainer: ComponentRef | None
    task: Task
    num_classes: int
    in_channels: int
    spatial_dims: int
    pool_masks_visible: bool = False
    selection: Any = None  #: a :class:`xalbench.plugins.PluginSelection` (``None``: every installed plugin)
    threads: int = 1
    device: str = "cpu"
    timeout: float = 600.0  #: seconds per query (the suite's ``strategy_timeout``)
    boot_timeout: float = 300.0  #: seconds for the sandbox to start (imports, strategy construction)
    batch_size: int = 256  #: the pool cache's batch size (the suite's eval batch size)
    #: bytes of address space (RLIMIT_AS) the sandbox may map, or None; a mapped pool's cache file counts
    #: with its whole size (address space, not memory: only the pages read are resident, and shared)
    memory_limit: int | None = None
    #: confine the sandbox with the kernel (:mod:`xalbench.confinement`) before any data arrives
    confine: bool = False
    #: files the strategy declared it reads (``Strategy.reads``): granted read-only when confined
    reads: tuple[str, ...] = ()
    #: record what the strategy tries to reach (:mod:`xalbench.sandbox.audit`; the conformance kit)
    audit: bool = False

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.boot_timeout <= 0:
            raise ValueError(f"timeouts must be > 0 seconds, got {self.timeout} and {self.boot_timeout}")
        if self.memory_limit is not None and self.memory_limit < (1 << 30):
            raise ValueError(f"memory_limit must be ≥ 1 GiB (torch alone maps more), got {self.memory_limit} bytes")


def private_copy(t: torch.Tensor | np.ndarray | None) -> np.ndarray | None:
    """A private, C-contiguous numpy copy (never a view of the harness's storage)."""
    if t is None:
        return None
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return np.array(t.numpy(), copy=True, order="C")
    arr = np.array(t, copy=True, order="C")
    return arr.astype(str) if arr.dtype == object else arr


@dataclasses.dataclass(frozen=True, eq=False)
class MappedRef:
    """A read-only mapped view sent by reference: the sandbox maps ``path`` itself.

    ``index`` holds the view's stored rows (``-1``: a row without a stored mask, read as
    zeros), ``max_value`` its scale, ``row_shape`` the shape of one row and ``identity`` the
    file's :func:`~xalbench.data.mapped_pool.file_identity` when the harness built the ref.
    """

    path: str
    index: np.ndarray
    max_value: float
    row_shape: tuple[int, ...]
    identity: FileIdentity

    @classmethod
    def of(cls, view: MappedArray) -> MappedRef:
        path, index, max_value = view_parts(view)
        return cls(path, np.array(index, dtype=np.int64, copy=True), max_value, tuple(int(d) for d in view.shape[1:]),
                   file_identity(path))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.row_shape)

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_map"}  # a reference, never the mapped pages

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def check(self) -> None:
        """Raise ``OSError`` if the file is gone or differs from when the harness referenced it."""
        now = file_identity(self.path)
        if now != tuple(self.identity):
            raise OSError(f"the prepared cache file {self.path} changed since the cell started (size, mtime or "
                          "content hash differ); prepare the dataset again and rerun the cell")

    def open(self) -> MappedArray:
        """A fresh read-only view of the referenced rows (checks the file first). The reference keeps
        one read-only map of the file open for its lifetime (a cell's), shared by every view it opens."""
        self.check()
        base = self.__dict__.get("_map")
        view = MappedArray(self.path, self.index, max_value=self.max_value, base=base)
        if base is None:
            object.__setattr__(self, "_map", view._base)
        if tuple(view.shape[1:]) != self.row_shape:
            raise OSError(f"the prepared cache file {self.path} has rows of shape {tuple(view.shape[1:])}, "
                          f"expected {self.row_shape}")
        return view

    def save(self, directory: Path, name: str) -> None:
        np.save(directory / f"{name}.index.npy", self.index, allow_pickle=False)
        (directory / f"{name}.ref.json").write_text(json.dumps(
            {"path": self.path, "max_value": self.max_value, "row_shape": list(self.row_shape),
             "identity": list(self.identity)}), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, name: str) -> MappedRef:
        meta = json.loads((directory / f"{name}.ref.json").read_text(encoding="utf-8"))
        index = np.array(np.load(directory / f"{name}.index.npy", allow_pickle=False), dtype=np.int64, copy=True)
        path, size, mtime, content = meta["identity"]
        return cls(str(meta["path"]), index, float(meta["max_value"]), tuple(int(d) for d in meta["row_shape"]),
                   (str(path), int(size), int(mtime), str(content)))


def send_array(t: torch.Tensor | np.ndarray | MappedArray | None) -> np.ndarray | MappedRef | None:
    """What a :class:`CellData` field carries: a :class:`MappedRef` for a mapped view (no pixel
    copied), else a :func:`private_copy`."""
    return MappedRef.of(t) if isinstance(t, MappedArray) else private_copy(t)


#: Array fields of :class:`CellData`, in file order.
CELL_ARRAYS = ("pool_images", "val_images", "val_labels", "val_roi", "val_has_roi", "val_class_roi",
               "val_annotated_slices", "val_groups", "pool_roi", "pool_has_roi", "pool_annotated_slices")


#: Fields that may be a :class:`MappedRef` (images and masks; labels and flags are always copies).
REF_FIELDS = ("pool_images", "val_images", "val_roi", "val_class_roi", "pool_roi")


@dataclasses.dataclass(frozen=True, eq=False)
class CellData:
    """Per-cell data, sent once: pool images, the val split and — only on a visible-mask track —
    the pool's ROIs, ROI flags and annotated-slice flags. There is no field for pool labels.

    Images and masks are private copies, or :class:`MappedRef` s to a prepared cache when the
    harness holds them as mapped views (then no array of them exists on either side)."""

    pool_images: np.ndarray | MappedRef
    val_images: np.ndarray | MappedRef
    val_labels: np.ndarray
    pool_masks_visible: bool = False
    val_roi: np.ndarray | MappedRef | None = None
    val_has_roi: np.ndarray | None = None
    val_class_roi: np.ndarray | MappedRef | None = None
    val_annotated_slices: np.ndarray | None = None
    val_groups: np.ndarray | None = None
    pool_roi: np.ndarray | MappedRef | None = None
    pool_has_roi: np.ndarray | None = None
    pool_annotated_slices: np.ndarray | None = None

    def __post_init__(self) -> None:
        hidden = [f for f in ("pool_roi", "pool_has_roi", "pool_annotated_slices") if getattr(self, f) is not None]
        if hidden and not self.pool_masks_visible:
            raise ValueError(f"{', '.join(hidden)} may only be sent on a track with pool_masks = 'visible'")
        refs = [f for f in CELL_ARRAYS if isinstance(getattr(self, f), MappedRef) and f not in REF_FIELDS]
        if refs:
            raise ValueError(f"{', '.join(refs)} cannot be sent by reference (only {', '.join(REF_FIELDS)})")

    @property
    def n_pool(self) -> int:
        return int(self.pool_images.shape[0])

    def save(self, directory: Path) -> None:
        """One ``.npy`` per array (no pickles) or a reference (``.ref.json`` + ``.index.npy``), for
        :meth:`load` in the sandbox."""
        directory.mkdir(parents=True, exist_ok=True)
        for name in CELL_ARRAYS:
            arr = getattr(self, name)
            if isinstance(arr, MappedRef):
                arr.save(directory, name)
            elif arr is not None:
                np.save(directory / f"{name}.npy", arr, allow_pickle=False)
        (directory / "visible").write_text("1" if self.pool_masks_visible else "0", encoding="ascii")

    @classmethod
    def load(cls, directory: Path) -> CellData:
        """Map each file read-only and copy it into this process's own memory (references stay
        references: :meth:`MappedRef.open` maps the cache file read-only when a view is needed)."""
        arrays: dict[str, np.ndarray | MappedRef] = {}
        for name in CELL_ARRAYS:
            path = directory / f"{name}.npy"
            if path.exists():
                arrays[name] = np.array(np.load(path, mmap_mode="r", allow_pickle=False), copy=True)
            elif (directory / f"{name}.ref.json").exists():
                arrays[name] = MappedRef.load(directory, name)
        visible = (directory / "visible").read_text(encoding="ascii") == "1"
        return cls(pool_masks_visible=visible, **arrays)  # type: ignore[arg-type]

    def referenced_files(self) -> tuple[str, ...]:
        """The prepared-cache files this data maps (and their ``manifest.json``, which holds the content
        hash a reference is checked against): what a confined sandbox must be able to read."""
        out: list[str] = []
        for name in REF_FIELDS:
            ref = getattr(self, name)
            if isinstance(ref, MappedRef):
                manifest = Path(ref.path).parent / "manifest.json"
                out += [ref.path] + ([str(manifest)] if manifest.exists() else [])
        return tuple(dict.fromkeys(out))

    def check_refs(self) -> None:
        """Open every reference once (raises ``OSError`` if a cache file changed or is gone)."""
        for name in REF_FIELDS:
            ref = getattr(self, name)
            if isinstance(ref, MappedRef):
                ref.open()

    def val_split(self) -> Split:
        return Split(images=_tensor(self.val_images), labels=torch.from_numpy(self.val_labels),  # type: ignore[arg-type]
                     roi=_tensor(self.val_roi), has_roi=_tensor(self.val_has_roi), class_roi=_tensor(self.val_class_roi),
                     annotated_slices=_tensor(self.val_annotated_slices), groups=self.val_groups)

    def digests(self) -> tuple[str, str]:
        """SHA-256 of (pool images, val split) as held now: full for copies, of the file identity for
        references (see :func:`digest`)."""
        return digest(self.pool_images), digest(*(getattr(self, f) for f in CELL_ARRAYS if f.startswith("val_")))


def _tensor(a: np.ndarray | MappedRef | None) -> torch.Tensor | MappedArray | None:
    """A fresh tensor over ``a``'s memory, or a fresh read-only view of a reference."""
    if a is None:
        return None
    return a.open() if isinstance(a, MappedRef) else torch.from_numpy(a)


def make_cell_data(pool: Split, val: Split, *, pool_masks_visible: bool) -> CellData:
    """What a strategy may see of one cell's data (pool ROIs only if visible): private copies, or
    references for mapped views (:func:`send_array`)."""
    show = pool_masks_visible and pool.roi is not None
    cp, ship = private_copy, send_array
    return CellData(
        pool_images=ship(pool.images), val_images=ship(val.images), val_labels=cp(val.labels),
        pool_masks_visible=pool_masks_visible, val_roi=ship(val.roi), val_has_roi=cp(val.has_roi),
        val_class_roi=ship(val.class_roi), val_annotated_slices=cp(val.annotated_slices), val_groups=cp(val.groups),
        pool_roi=ship(pool.roi) if show else None, pool_has_roi=cp(pool.has_roi) if show else None,
        pool_annotated_slices=cp(pool.annotated_slices) if show else None,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class RoundRequest:
    """One round's query: the trained weights and the labelled set with what the oracle revealed."""

    round_index: int
    state_dict: dict[str, np.ndarray | torch.Tensor]  #: numpy copies (torch only for dtypes numpy lacks)
    module_training: tuple[bool, ...]  #: ``m.training`` for every module in ``model.modules()`` order
    labelled: np.ndarray  #: int64 pool indices, acquisition order
    labelled_labels: np.ndarray
    labelled_roi: np.ndarray | None  #: zero where the mask is not revealed
    labelled_has_roi: np.ndarray | None  #: revealed and non-empty
    rng_seed: int  #: seeds ``ctx.rng``
    torch_seed: int  #: ``ctx.seed``, and the global torch CPU generator during the query
    k: int

    @classmethod
    def of(cls, round_index: int, model: torch.nn.Module, labelled: np.ndarray, labels: torch.Tensor | np.ndarray,
           roi: torch.Tensor | np.ndarray | None, has_roi: torch.Tensor | np.ndarray | None, *, rng_seed: int,
           torch_seed: int, k: int) -> RoundRequest:
        """The one builder of a round's request: private copies of the model's state dict (numpy where
        the dtype allows), of its per-module train flags, and of the labelled set's labels and revealed
        ROIs (``roi`` zero and ``has_roi`` false where the oracle revealed no mask)."""
        return cls(round_index=int(round_index),
                   state_dict={name: state_value(v) for name, v in model.state_dict().items()},
                   module_training=tuple(m.training for m in model.modules()),
                   labelled=np.array(labelled, dtype=np.int64, copy=True), labelled_labels=private_copy(labels),
                   labelled_roi=private_copy(roi), labelled_has_roi=private_copy(has_roi),
                   rng_seed=int(rng_seed), torch_seed=int(torch_seed), k=int(k))


def make_round_request(round_index: int, model: torch.nn.Module, pool: Split, labelled: np.ndarray,
                       revealed: np.ndarray, *, rng_seed: int, torch_seed: int, k: int) -> RoundRequest:
    """Round ``round_index``'s request from a whole pool split (labels of the labelled set only; ROIs
    only where ``revealed`` — a bool per labelled sample, acquisition order): an adapter over
    :meth:`RoundRequest.of` for callers that hold the pool rather than a labelled view."""
    lab = torch.as_tensor(np.asarray(labelled, dtype=np.int64))
    roi = has_roi = None
    if pool.roi is not None:
        has_roi = torch.as_tensor(np.asarray(revealed, dtype=bool)) & pool.has_roi[lab].bool()
        roi = pool.roi[lab] * has_roi.view((-1,) + (1,) * (pool.roi.dim() - 1)).to(pool.roi.dtype)
    return RoundRequest.of(round_index, model, labelled, pool.labels[lab], roi, has_roi, rng_seed=rng_seed,
                           torch_seed=torch_seed, k=k)


def state_value(t: torch.Tensor) -> np.ndarray | torch.Tensor:
    """A CPU copy; numpy when the dtype allows (pickling numpy is ~30× cheaper than torch tensors)."""
    t = t.detach().to("cpu", copy=True)
    try:
        return t.numpy()
    except TypeError:  # bfloat16 and friends: stay a tensor (pickled by value all the same)
        return t


def state_dict_tensors(state: dict[str, np.ndarray | torch.Tensor]) -> dict[str, torch.Tensor]:
    """The request's state dict as tensors (for ``load_state_dict``)."""
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in state.items()}


@dataclasses.dataclass(frozen=True, eq=False)
class QueryReply:
    """The strategy's answer: pool indices (int64, in order), its scores aligned with the round's
    unlabelled pool (or ``None``), the strategy's own seconds, and the parent's wall seconds."""

    indices: np.ndarray
    scores: np.ndarray | None
    seconds: float
    wall_seconds: float = 0.0
    attempts: tuple[str, ...] = ()  #: escape attempts seen during the query (only with ``SandboxSpec.audit``)


@dataclasses.dataclass(frozen=True)
class ErrorReply:
    """The strategy (or its sandbox) failed: a rule of :class:`~xalbench.errors.StrategyContractError`,
    the message, and the last lines of the traceback from inside the sandbox."""

    rule: str
    message: str
    traceback_tail: str = ""


@dataclasses.dataclass(frozen=True)
class Ready:
    """The sandbox booted: its process id, how long the boot took, and the confinement it applied to
    itself (:meth:`xalbench.confinement.Applied.as_dict`, or ``None`` when not confined)."""

    pid: int
    boot_seconds: float
    confinement: dict[str, Any] | None = None


def digest(*arrays: np.ndarray | torch.Tensor | MappedArray | MappedRef | None) -> str:
    """SHA-256 over the bytes, dtypes and shapes of ``arrays`` (``None`` counts as a marker).

    A read-only mapped view (or a :class:`MappedRef` to one) counts by its identity — the
    cache file's path, size, mtime and stored content hash, its rows and scale — never by a
    pass over its pixels: the map cannot be written, so only a changed file changes them."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        if isinstance(a, (MappedArray, MappedRef)):
            h.update(_identity_bytes(a))
            continue
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu()
            a = (a.float() if a.dtype == torch.bfloat16 else a).numpy()
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a)
    return h.hexdigest()


def _identity_bytes(a: MappedArray | MappedRef) -> bytes:
    """The identity of a mapped view or reference now (a view and a reference to it agree)."""
    try:
        ident = view_identity(a) if isinstance(a, MappedArray) else rows_identity(a.path, a.index, a.max_value)
    except OSError as exc:
        ident = ("unreadable", str(exc))
    return ("mapped" + json.dumps([str(x) for x in ident])).encode()
