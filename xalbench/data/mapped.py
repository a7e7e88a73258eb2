"""Read-only, lazily converted views over memory-mapped ``uint8``/``uint16`` arrays.

A prepared dataset (:mod:`xalbench.data.prepared`) stores images quantised to ``uint8``
(``uint16`` where the modality needs it) in ``.npy`` files. :class:`MappedArray` maps one
read-only and behaves like a ``float32`` tensor in [0, 1] whose rows are read on demand:
``shape``, ``dtype``, ``len``, indexing by ints, slices, index arrays, bool masks and
tensors (each returns a ``float32`` tensor), ``take`` (a lazy sub-view), ``numpy()``,
pickling (re-opens the map, never copies the data) and :meth:`MappedArray.update_hash`
(streams the bytes :meth:`xalbench.base.Split.fingerprint` would hash). Every process maps
the same file, so the operating system's page cache holds one copy for all workers.

Conversion is :func:`to_float` (``x / 255`` or ``x / 65535`` in float32) — the same
function the direct loaders use, so both give bitwise-identical tensors. Anything else a
tensor can do (``torch.sum(view)``, ``view.max()``) works by reading the whole view first;
reading more than 1 GiB that way warns once, naming the call, because that is where a
caller should index batches instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xalbench.base import Split
from xalbench.data.quant import MAX_VALUE, quantize, to_float

__all__ = ["MappedArray", "MappedSplit", "MaterializationWarning", "to_float", "quantize", "lazy_take",
           "split_fingerprint", "materialize_split", "MAX_VALUE"]

_WARN_BYTES = 1 << 30
_CHUNK_BYTES = 64 << 20


class MaterializationWarning(UserWarning):
    """A mapped view was read whole (more than 1 GiB) by an operation that is not indexing."""


def _open(path: str) -> np.ndarray:
    """A read-only map of ``path`` (the page cache shares its pages between every map and process)."""
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _as_index(key: Any, n: int) -> np.ndarray:
    """An int64 position array from an index array, list, tensor or bool mask."""
    if isinstance(key, Tensor):
        key = key.detach().cpu().numpy()
    arr = np.asarray(key)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise IndexError(f"boolean index of shape {arr.shape} does not match {n} rows")
        return np.flatnonzero(arr)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise IndexError(f"only integer or boolean indices select rows, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False).reshape(-1)
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise IndexError(f"row index out of range for {n} rows")
    return np.where(arr < 0, arr + n, arr)


class MappedArray:
    """A ``float32`` view of rows of a stored ``.npy`` array (see the module docstring).

    ``index[i]`` is the stored row behind view row ``i``; ``-1`` reads as zeros (sparse
    storage: ROIs are stored only for rows that can have one).
    """

    __slots__ = ("_path", "_index", "_max", "_base", "_warned", "__weakref__")

    def __init__(self, path: str | os.PathLike[str], index: np.ndarray | None = None, *,
                 max_value: float | None = None, base: np.ndarray | None = None) -> None:
        """``base``: an open read-only map of ``path`` to share (its holder keeps it open), else one is opened."""
        self._path = os.fspath(path)
        self._base = _open(self._path) if base is None else base
        n = int(self._base.shape[0])
        self._index = np.arange(n, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
        self._index.setflags(write=False)
        self._max = float(max_value if max_value is not None else MAX_VALUE[str(self._base.dtype)])
        self._warned = False

    # ------------------------------------------------------------------ tensor-like metadata
    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self._index), *self._base.shape[1:]))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def ndim(self) -> int:
        return self._base.ndim

    @property
    def requires_grad(self) -> bool:
        return False

    @property
    def is_cuda(self) -> bool:
        return False

    @property
    def _version(self) -> int:  # read-only map: never modified in place
        return 0

    @property
    def path(self) -> str:
        return self._path

    @property
    def index(self) -> np.ndarray:
        return self._index

    @property
    def nbytes(self) -> int:
        """Bytes of the float32 tensor this view stands for."""
        return int(np.prod(self.shape, dtype=np.int64)) * 4

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: int | None = None) -> torch.Size | int:
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"MappedArray(shape={tuple(self.shape)}, stored={self._base.dtype}, path={self._path!r})"

    # ------------------------------------------------------------------ reading
    def read(self, rows: np.ndarray) -> np.ndarray:
        """``float32`` array of view rows ``rows`` (int64 positions, already validated)."""
        stored = self._index[rows]
        out_shape = (len(stored), *self._base.shape[1:])
        if len(stored) == 0:
            return np.zeros(out_shape, dtype=np.float32)
        present = stored >= 0
        if not present.all():
            out = np.zeros(out_shape, dtype=np.float32)
            if present.any():
                out[present] = to_float(self._raw(stored[present]), self._max)
            return out
        return to_float(self._raw(stored), self._max)

    def _raw(self, stored: np.ndarray) -> np.ndarray:
        first, last = int(stored[0]), int(stored[-1])
        if last - first + 1 == len(stored) and (len(stored) == 1 or bool((np.diff(stored) == 1).all())):
            return self._base[first:last + 1]
        return self._base[stored]

    def __getitem__(self, key: Any) -> Tensor:
        n = len(self._index)
        if isinstance(key, tuple):
            if not key:
                return self.materialize()
            head, rest = key[0], key[1:]
            t = self[head]
            if isinstance(head, (int, np.integer)) or (isinstance(head, Tensor) and head.dim() == 0):
                return t[rest]
            return t[(slice(None), *rest)]
        if key is Ellipsis:
            return self.materialize()
        if isinstance(key, (int, np.integer)) or (isinstance(key, Tensor) and key.dim() == 0 and
                                                  not key.dtype == torch.bool):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"row {i} out of range for {n} rows")
            return torch.from_numpy(self.read(np.array([i % n]))[0])
        if isinstance(key, slice):
            rows = np.arange(n, dtype=np.int64)[key]
        else:
            rows = _as_index(key, n)
        return torch.from_numpy(self.read(rows))

    def take(self, rows: Any) -> MappedArray:
        """Lazy sub-view of view rows ``rows`` (nothing is read)."""
        pos = np.arange(len(self._index))[rows] if isinstance(rows, slice) else _as_index(rows, len(self._index))
        view = object.__new__(MappedArray)
        view._path, view._base, view._max, view._warned = self._path, self._base, self._max, False
        view._index = self._index[pos]
        view._index.setflags(write=False)
        return view

    def iter_chunks(self, max_bytes: int = _CHUNK_BYTES) -> Iterator[np.ndarray]:
        """The view's rows as consecutive ``float32`` arrays of at most ``max_bytes``."""
        row_bytes = max(1, int(np.prod(self._base.shape[1:], dtype=np.int64)) * 4)
        step = max(1, max_bytes // row_bytes)
        for s in range(0, len(self._index), step):
            yield self.read(np.arange(s, min(s + step, len(self._index))))

    def update_hash(self, h: Any) -> None:
        """Feed ``h`` exactly the bytes of ``self.numpy().tobytes()``, chunk by chunk."""
        for chunk in self.iter_chunks():
            h.update(chunk.tobytes())

    def materialize(self, why: str = "") -> Tensor:
        """The whole view as one ``float32`` tensor (warns once above 1 GiB)."""
        if self.nbytes > _WARN_BYTES and not self._warned:
            self._warned = True
            warnings.warn(f"reading a {self.nbytes / 2**30:.1f} GiB mapped dataset view into memory"
                          f"{' for ' + why if why else ''}; index it in batches instead",
                          MaterializationWarning, stacklevel=3)
        return torch.from_numpy(self.read(np.arange(len(self._index))))

    def numpy(self) -> np.ndarray:
        return self.materialize("numpy()").numpy()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    # ------------------------------------------------------------------ tensor protocol
    def detach(self) -> MappedArray:
        return self

    def cpu(self) -> MappedArray:
        return self

    def contiguous(self) -> MappedArray:
        return self

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.materialize("to()").to(*args, **kwargs)

    @classmethod
    def __torch_function__(cls, func: Callable[..., Any], types: Any, args: Sequence[Any] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        name = getattr(func, "__name__", str(func))

        def conv(x: Any) -> Any:
            if isinstance(x, MappedArray):
                return x.materialize(name)
            if isinstance(x, (list, tuple)):
                return type(x)(conv(v) for v in x)
            return x

        return func(*conv(tuple(args)), **{k: conv(v) for k, v in (kwargs or {}).items()})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.materialize(name), name)

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._path, np.array(self._index), self._max))


def _binary(op: str) -> Callable[[MappedArray, Any], Any]:
    def method(self: MappedArray, other: Any) -> Any:
        return getattr(self.materialize(op), op)(other.materialize(op) if isinstance(other, MappedArray) else other)

    method.__name__ = op
    return method


for _op in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
            "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__and__", "__or__"):
    setattr(MappedArray, _op, _binary(_op))
MappedArray.__hash__ = object.__hash__  # type: ignore[assignment]


def _rebuild(path: str, index: np.ndarray, max_value: float) -> MappedArray:
    return MappedArray(path, index, max_value=max_value)


def lazy_take(images: Tensor | MappedArray, rows: Any) -> Tensor | MappedArray:
    """``images[rows]`` for tensors; a lazy sub-view (nothing read) for mapped views."""
    if isinstance(images, MappedArray):
        return images.take(rows)
    return images[torch.as_tensor(np.asarray(rows, dtype=np.int64))]


# ---------------------------------------------------------------------------------- splits
def _hash_part(h: Any, t: Tensor | MappedArray) -> None:
    if isinstance(t, MappedArray):
        h.update(str(tuple(t.shape)).encode())
        h.update(b"float32")
        t.update_hash(h)
        return
    arr = t.detach().cpu().contiguous().numpy()
    h.update(str(arr.shape).encode())
    h.update(str(arr.dtype).encode())
    h.update(arr.tobytes())


def split_fingerprint(split: Split) -> str:
    """:meth:`Split.fingerprint` computed chunk by chunk (same digest; bounded memory)."""
    h = hashlib.sha256()
    for t in (split.images, split.labels, split.roi, split.label_mask):
        if t is not None:
            _hash_part(h, t)
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class MappedSplit(Split):
    """A :class:`Split` whose images/ROIs may be :class:`MappedArray` views.

    ``fingerprint()`` returns the digest stored at preparation (identical to the direct
    loader's :meth:`Split.fingerprint`) or streams it; ``subset`` stays lazy.
    """

    stored_fingerprint: str | None = dataclasses.field(default=None, compare=False, repr=False)

    def fingerprint(self) -> str:
        return self.stored_fingerprint or split_fingerprint(self)

    def subset(self, index: np.ndarray | Sequence[int] | Tensor) -> MappedSplit:
        idx = np.asarray(index.cpu().numpy() if isinstance(index, Tensor) else index, dtype=np.int64)
        t_idx = torch.as_tensor(idx)

        def take(t: Tensor | MappedArray | None) -> Tensor | MappedArray | None:
            if t is None:
                return None
            return t.take(idx) if isinstance(t, MappedArray) else t[t_idx]

        return MappedSplit(images=take(self.images), labels=self.labels[t_idx], roi=take(self.roi),  # type: ignore[arg-type]
                           has_roi=take(self.has_roi), class_roi=take(self.class_roi),  # type: ignore[arg-type]
                           annotated_slices=take(self.annotated_slices),  # type: ignore[arg-type]
                           groups=None if self.groups is None else self.groups[idx],
                           label_mask=take(self.label_mask))  # type: ignore[arg-type]

    @property
    def is_mapped(self) -> bool:
        return isinstance(self.images, MappedArray)


def materialize_split(split: Split) -> Split:
    """A plain :class:`Split` of in-memory tensors with the same values."""

    def mat(t: Any) -> Any:
        return t.materialize() if isinstance(t, MappedArray) else t

    return Split(images=mat(split.images), labels=split.labels, roi=mat(split.roi), has_roi=split.has_roi,
                 class_roi=mat(split.class_roi), annotated_slices=split.annotated_slices, groups=split.groups,
                 label_mask=split.label_mask)
