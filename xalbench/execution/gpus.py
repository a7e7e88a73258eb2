"""Which GPUs cells run on: one queue per visible GPU, never two running cells on one GPU.

``--device cuda`` plans cells with the device *kind* ``cuda`` (a cell's identity holds the kind
only, so a result does not depend on which GPU ran it). An executor that runs several cells at
once on one machine gives each running cell its own GPU: :func:`visible_gpus` lists the GPUs
this process may use (``CUDA_VISIBLE_DEVICES`` as CUDA reads it, capped at
``torch.cuda.device_count()``), and a :class:`GpuQueues` hands the next cell to whichever GPU
becomes free, as ``cuda:i`` (``i`` = index among the visible devices). In the worker,
:func:`prepare_device` makes that GPU current and sets ``CUBLAS_WORKSPACE_CONFIG`` before the
first cuBLAS call; :func:`cuda_settings` is what a cell's provenance should record about it.

Executors on clusters leave the choice to the cluster instead: a SLURM task or a Ray task with
one GPU sees exactly one (``CUDA_VISIBLE_DEVICES`` set by the scheduler) and runs on ``cuda``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from xalbench.errors import ConfigError

__all__ = ["GpuQueues", "cuda_settings", "on_device", "parse_visible_devices", "prepare_device", "visible_gpus",
           "wants_gpu_queues"]

CUBLAS_DEFAULT = ":4096:8"
T = TypeVar("T")


def _leading_int(text: str) -> int:
    """``strtoul``-like: the integer a string starts with (``"1gpu"`` → 1), ``-1`` if none."""
    match = re.match(r"[+-]?\d+", text)
    return int(match.group()) if match else -1


def parse_visible_devices(value: str | None) -> list[str] | None:
    """The device identifiers ``CUDA_VISIBLE_DEVICES`` lists (``None`` when unset = every device).

    Read as CUDA (and ``torch.cuda``) read it: comma-separated ordinals, parsed like ``strtoul``,
    ending at the first negative or empty one; or ``GPU-``/``MIG-`` UUIDs, ending at the first
    entry without that prefix; a repeated entry hides every GPU. So ``""`` and ``"-1"`` hide all.
    """
    if value is None:
        return None
    out: list[str] = []
    prefix = next((p for p in ("GPU-", "MIG-") if value.startswith(p)), None)
    for raw in value.split(","):
        if prefix is not None:
            if not raw.startswith(prefix):
                break
            token = raw
        else:
            ordinal = _leading_int(raw.strip())
            if ordinal < 0:
                break
            token = str(ordinal)
        if token in out:
            return []
        out.append(token)
    return out


def _torch_device_count() -> int:
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def visible_gpus(environ: Mapping[str, str] | None = None,
                 device_count: Callable[[], int] | None = None) -> list[str]:
    """Physical identifiers of the GPUs this process can use, in ``cuda:i`` order."""
    env = os.environ if environ is None else environ
    n = (device_count or _torch_device_count)()
    listed = parse_visible_devices(env.get("CUDA_VISIBLE_DEVICES"))
    if listed is None:
        return [str(i) for i in range(n)]
    return listed[:n]


def wants_gpu_queues(cells: Iterable[Any]) -> bool:
    """True when some cell asks for the ``cuda`` kind without naming a GPU."""
    return any(getattr(c, "device", "cpu") == "cuda" for c in cells)


def on_device(spec: T, device: str) -> T:
    """``spec`` with ``device`` (its identity holds the device kind only, so it is unchanged)."""
    evolve = getattr(spec, "evolve", None)  # a CellSpec keeps its device in its config
    return evolve(device=device) if evolve is not None else dataclasses.replace(spec, device=device)  # type: ignore[type-var]


class GpuQueues:
    """Hand cells to GPUs as they become free: at most one running cell per GPU.

    ``start()`` returns the first ``(device, cell)`` per GPU; after a cell on ``device`` finished,
    ``next(device)`` returns that GPU's next ``(device, cell)`` or ``None`` when none is left.
    Cells keep the plan order; each is given as ``on_device(cell, "cuda:i")``.
    """

    def __init__(self, cells: Iterable[T], n_gpus: int) -> None:
        if n_gpus < 1:
            raise ConfigError("--device cuda was asked for but no GPU is visible to this process "
                              "(check CUDA_VISIBLE_DEVICES); use --device cpu")
        self._todo: deque[Any] = deque(cells)
        self.devices = [f"cuda:{i}" for i in range(n_gpus)]
        self.running: dict[str, Any] = {}

    def _take(self, device: str) -> tuple[str, Any] | None:
        if not self._todo:
            return None
        if device in self.running:
            raise RuntimeError(f"{device} already runs {self.running[device]!r}")
        cell = self._todo.popleft()
        if getattr(cell, "device", "cuda") == "cuda":
            cell = on_device(cell, device)
        self.running[device] = cell
        return device, cell

    def start(self) -> list[tuple[str, Any]]:
        out = []
        for device in self.devices:
            taken = self._take(device)
            if taken is None:
                break
            out.append(taken)
        return out

    def next(self, device: str) -> tuple[str, Any] | None:
        """``device`` finished its cell: its next one (or ``None``)."""
        self.running.pop(device, None)
        return self._take(device)

    @classmethod
    def for_run(cls, cells: list[T], workers: int, *, environ: Mapping[str, str] | None = None,
                device_count: Callable[[], int] | None = None) -> GpuQueues:
        """One queue per visible GPU, at most ``workers`` of them (``0`` = one per GPU)."""
        gpus = visible_gpus(environ, device_count)
        n = len(gpus) if workers <= 0 else min(workers, len(gpus))
        return cls(cells, min(n, max(1, len(cells))) if gpus else 0)


def prepare_device(device: str) -> None:
    """In the worker, before the cell: cuBLAS's deterministic workspace and the cell's GPU current."""
    if not device.startswith("cuda"):
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DEFAULT)
    if ":" in device:
        import torch

        torch.cuda.set_device(torch.device(device))


def cuda_settings(device: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What to record about a CUDA cell: its GPU (index, physical identifier, name) and the
    determinism settings in force (``{}`` for a CPU cell)."""
    if not device.startswith("cuda"):
        return {}
    import torch

    env = os.environ if environ is None else environ
    index = int(device.split(":")[1]) if ":" in device else 0
    listed = parse_visible_devices(env.get("CUDA_VISIBLE_DEVICES"))
    physical = (listed[index] if listed is not None and index < len(listed) else
                None if listed is not None else str(index))
    out: dict[str, Any] = {
        "device": device,
        "physical_gpu": physical,
        "CUDA_VISIBLE_DEVICES": env.get("CUDA_VISIBLE_DEVICES"),
        "CUBLAS_WORKSPACE_CONFIG": env.get("CUBLAS_WORKSPACE_CONFIG"),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }
    if torch.cuda.is_available() and index < torch.cuda.device_count():
        out["name"] = torch.cuda.get_device_name(index)
        out["capability"] = list(torch.cuda.get_device_capability(index))
    return out
