"""Source of the ``xalbench-cheaters`` fixture distribution (installed by ``tests/sandbox/cheaters.py``
as the top-level module ``xalbench_cheaters``): one strategy per way a strategy has reached data it
must not see, or changed state it must not change, from inside ``query``.

Every label cheater picks ``ctx.unlabelled[:k]`` ("first k", exactly what ``honest-first`` picks)
when it finds nothing, and :func:`picks_from_labels` of the pool labels when it finds them; the
mutation cheaters change something in round 0 and pick the *last* k unlabelled from round 1 on if
the change is still there. So a cheater's picks say what it found.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

import xalbench
from xalbench.base import DatasetBundle, Split


def first_k(ctx: Any, k: int) -> np.ndarray:
    return ctx.unlabelled[: min(k, len(ctx.unlabelled))]


def last_k(ctx: Any, k: int) -> np.ndarray:
    n = min(k, len(ctx.unlabelled))
    return ctx.unlabelled[len(ctx.unlabelled) - n:]


def picks_from_labels(labels: np.ndarray, unlabelled: np.ndarray, k: int) -> np.ndarray:
    """What a label cheater picks: the unlabelled samples of the highest class first (then by index)."""
    lab = np.asarray(labels)
    key = lab[unlabelled] if lab.ndim == 1 else lab[unlabelled].sum(1)
    order = np.lexsort((unlabelled, -key))
    return unlabelled[order[: min(k, len(unlabelled))]].astype(np.int64)


def _pool_split(obj: Any, ctx: Any) -> Split | None:
    """``obj`` (a Split or a DatasetBundle) if it holds this pool's images."""
    if isinstance(obj, DatasetBundle):
        obj = obj.train
    if isinstance(obj, Split) and tuple(obj.images.shape) == tuple(ctx.pool_images.shape):
        if torch.equal(obj.images, ctx.pool_images):
            return obj
    return None


def roi_key(roi: torch.Tensor) -> np.ndarray:
    """A per-sample number that depends on where each ROI lies (what ``cheat-private`` ranks by)."""
    flat = roi.flatten(1).double()
    return (flat @ torch.arange(flat.shape[1], dtype=torch.float64)).numpy()


class _Base(xalbench.Strategy):
    summary: ClassVar[str] = "fixture strategy of the sandbox tests"
    supports_multilabel: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        pass

    def find(self, ctx: Any) -> Split | None:
        return None

    def query(self, ctx: Any, k: int) -> np.ndarray:
        found = self.find(ctx)
        if found is None:
            return first_k(ctx, k)
        return picks_from_labels(found.labels.numpy(), ctx.unlabelled, k)


class HonestFirst(_Base):
    """The reference: the picks every label cheater makes when it finds nothing."""

    name: ClassVar[str] = "honest-first"


class CheatGC(_Base):
    """Walks every object the garbage collector tracks, looking for the pool's Split or bundle."""

    name: ClassVar[str] = "cheat-gc"

    def find(self, ctx: Any) -> Split | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for obj in gc.get_objects():
                if isinstance(obj, (Split, DatasetBundle)):
                    hit = _pool_split(obj, ctx)
                    if hit is not None:
                        return hit
        return None


class CheatFrames(_Base):
    """Walks up every thread's stack frames (the harness's own), looking at locals and their attributes."""

    name: ClassVar[str] = "cheat-frames"

    def find(self, ctx: Any) -> Split | None:
        for frame in sys._current_frames().values():
            while frame is not None:
                for value in list(frame.f_locals.values()):
                    for obj in (value, *getattr(value, "__dict__", {}).values()):
                        hit = _pool_split(obj, ctx)
                        if hit is not None:
                            return hit
                frame = frame.f_back
        return None


class CheatPrivate(_Base):
    """Reads the context's private pool ROIs (hidden on a hidden-mask track) and ranks by where they lie."""

    name: ClassVar[str] = "cheat-private"

    def query(self, ctx: Any, k: int) -> np.ndarray:
        roi = getattr(ctx, "_pool_roi", None)
        if roi is None:
            return first_k(ctx, k)
        return picks_from_labels(roi_key(roi), ctx.unlabelled, k)


class CheatCache(_Base):
    """Looks through every module's globals and the containers they hold (module-level caches: dicts of
    loaded bundles and the like) for the pool's bundle. (A ``functools.lru_cache`` keeps its results where
    only the garbage collector sees them: that route is ``cheat-gc``'s.)"""

    name: ClassVar[str] = "cheat-cache"

    def find(self, ctx: Any) -> Split | None:
        with warnings.catch_warnings():  # module attributes include deprecated aliases
            warnings.simplefilter("ignore")
            for module in list(sys.modules.values()):
                hit = self._search(list(getattr(module, "__dict__", {}).values()), ctx, depth=2)
                if hit is not None:
                    return hit
        return None

    def _search(self, values: list[Any], ctx: Any, depth: int) -> Split | None:
        for value in values:
            hit = _pool_split(value, ctx)
            if hit is None and depth > 0 and isinstance(value, (dict, list, tuple)):
                inner = list(value.values()) if isinstance(value, dict) else list(value)
                hit = self._search(inner, ctx, depth - 1)
            if hit is not None:
                return hit
        return None


class CheatRegenerate(_Base):
    """Re-creates the dataset through the registry from public options and matches the pool's images.

    This one *succeeds* in the sandbox when it knows the generator's options: closing it is the
    leaderboard's job (verification on data seeds that submitters never see), not the sandbox's."""

    name: ClassVar[str] = "cheat-regenerate"

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        dataset: str = "synth-lesion-2d"
        dataset_options: str = "{}"

    def find(self, ctx: Any) -> Split | None:
        import json

        from xalbench.plugins import load_registry

        bundle = load_registry().create("dataset", self.options.dataset,
                                        json.loads(self.options.dataset_options)).load(None)
        return _pool_split(bundle, ctx)


class _Persist(_Base):
    """Changes the model in round 0; from round 1 on picks the last k if the change is still there."""

    def mutate(self, model: torch.nn.Module) -> None:
        raise NotImplementedError

    def persisted(self, model: torch.nn.Module) -> bool:
        raise NotImplementedError

    def query(self, ctx: Any, k: int) -> np.ndarray:
        if ctx.round_index == 0:
            self.mutate(ctx.model)
            return first_k(ctx, k)
        return last_k(ctx, k) if self.persisted(ctx.model) else first_k(ctx, k)


class CheatDropout(_Persist):
    """Sets the head's dropout probability (a module attribute, outside the state dict)."""

    name: ClassVar[str] = "cheat-dropout"

    def mutate(self, model: torch.nn.Module) -> None:
        model.dropout.p = 0.97

    def persisted(self, model: torch.nn.Module) -> bool:
        return getattr(model.dropout, "p", None) == 0.97


def _spy(module: torch.nn.Module, inputs: Any, output: Any) -> None:
    _spy.seen = getattr(_spy, "seen", 0) + 1  # e.g. every test batch the harness evaluates


class CheatHook(_Persist):
    """Registers a forward hook (it would see every later training and test batch)."""

    name: ClassVar[str] = "cheat-hook"

    def mutate(self, model: torch.nn.Module) -> None:
        model.register_forward_hook(_spy)

    def persisted(self, model: torch.nn.Module) -> bool:
        return any(hook is _spy for hook in model._forward_hooks.values())


class CheatRequiresGrad(_Persist):
    """Freezes every parameter (later rounds would not train)."""

    name: ClassVar[str] = "cheat-requires-grad"

    def mutate(self, model: torch.nn.Module) -> None:
        for p in model.parameters():
            p.requires_grad_(False)

    def persisted(self, model: torch.nn.Module) -> bool:
        return not any(p.requires_grad for p in model.parameters())


class CheatPoolWrite(_Base):
    """Swaps two unlabelled pool images through a numpy view (sum and norm unchanged)."""

    name: ClassVar[str] = "cheat-pool-write"

    def query(self, ctx: Any, k: int) -> np.ndarray:
        arr = ctx.pool_images.numpy()
        i, j = int(ctx.unlabelled[0]), int(ctx.unlabelled[1])
        arr[[i, j]] = arr[[j, i]]
        return first_k(ctx, k)


class CheatValWrite(_Base):
    """Overwrites the val split's labels in place (``ctx.val`` is a frozen dataclass, its tensors are not)."""

    name: ClassVar[str] = "cheat-val-write"

    def query(self, ctx: Any, k: int) -> np.ndarray:
        ctx.val.labels.numpy()[...] = 0
        return first_k(ctx, k)


class Sleeper(_Base):
    """Hangs: optionally ignores SIGTERM and starts a grandchild process whose pid it writes to a file."""

    name: ClassVar[str] = "sleeper"

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        seconds: float = 3600.0
        ignore_term: bool = False
        pid_file: str = ""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        if self.options.ignore_term and threading_main():  # built in the sandbox's main thread
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def query(self, ctx: Any, k: int) -> np.ndarray:
        if self.options.pid_file:  # a grandchild that ignores SIGTERM as well
            child = subprocess.Popen(["sh", "-c", f"trap '' TERM; sleep {int(self.options.seconds)}"])
            with open(self.options.pid_file, "w", encoding="ascii") as fh:
                fh.write(str(child.pid))
        time.sleep(self.options.seconds)
        return first_k(ctx, k)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class Crasher(_Base):
    """Kills its own process: ``exit`` (os._exit(7)) or ``segfault`` (reads address 0)."""

    name: ClassVar[str] = "crasher"

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        how: str = "exit"

    def query(self, ctx: Any, k: int) -> np.ndarray:
        if self.options.how == "segfault":
            import ctypes

            ctypes.string_at(0)  # reads address 0: a real segmentation fault in this thread
        os._exit(7)


class Hog(_Base):
    """Allocates far more memory than any limit allows."""

    name: ClassVar[str] = "hog"

    def query(self, ctx: Any, k: int) -> np.ndarray:
        block = torch.ones(1 << 36, dtype=torch.uint8)  # 64 GiB
        return first_k(ctx, k + int(block[0]) - 1)


class Raiser(_Base):
    """Raises from deep inside a helper (its traceback must reach the cell's error)."""

    name: ClassVar[str] = "raiser"

    def query(self, ctx: Any, k: int) -> np.ndarray:
        return self.helper(ctx)

    def helper(self, ctx: Any) -> np.ndarray:
        raise ZeroDivisionError("the helper divided by zero on purpose")


class EnvProbe(_Base):
    """Picks the last k if any environment variable looks like a credential (it must not)."""

    name: ClassVar[str] = "env-probe"

    def query(self, ctx: Any, k: int) -> np.ndarray:
        words = ("TOKEN", "SECRET", "KEY", "PASSWORD")
        return last_k(ctx, k) if any(w in name.upper() for name in os.environ for w in words) else first_k(ctx, k)


class Probe(_Base):
    """Searches everything reachable from the garbage collector's objects (one level of referents, which
    covers numpy arrays) for an array or tensor whose SHA-256 is one of the given digests; picks the last
    k if it finds one."""

    name: ClassVar[str] = "probe"

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        digests: str = ""  # comma-separated

    def query(self, ctx: Any, k: int) -> np.ndarray:
        from xalbench.sandbox.messages import digest

        wanted = set(filter(None, self.options.digests.split(",")))
        seen: set[int] = set()
        for obj in gc.get_objects():
            for candidate in (obj, *gc.get_referents(obj)):
                if id(candidate) in seen or not isinstance(candidate, (np.ndarray, torch.Tensor)):
                    continue
                seen.add(id(candidate))
                if candidate.ndim >= 1 and candidate.shape[0] == ctx.n_pool and digest(candidate) in wanted:
                    return last_k(ctx, k)
        return first_k(ctx, k)


class Stateful(_Base):
    """Skips as many samples as it was called before (its instance must live for the whole cell)."""

    name: ClassVar[str] = "stateful"

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.calls = 0

    def query(self, ctx: Any, k: int) -> np.ndarray:
        self.calls += 1
        return ctx.unlabelled[self.calls - 1: self.calls - 1 + k]


class WhereAmI(_Base):
    """Picks differently in a child process than in the main one (depends on its process)."""

    name: ClassVar[str] = "where-am-i"

    def query(self, ctx: Any, k: int) -> np.ndarray:
        import multiprocessing

        return last_k(ctx, k) if multiprocessing.parent_process() is not None else first_k(ctx, k)


CHEATERS = (HonestFirst, CheatGC, CheatFrames, CheatPrivate, CheatCache, CheatRegenerate, CheatDropout, CheatHook,
            CheatRequiresGrad, CheatPoolWrite, CheatValWrite, Sleeper, Crasher, Hog, Raiser, EnvProbe, Probe,
            Stateful, WhereAmI)


@xalbench.hookimpl
def register_strategies(register: Any) -> None:
    for cls in CHEATERS:
        register(cls)
