"""From sparse slice annotations to DUE's imputed target ĩ, variance and weights W (§4.2–4.3).

For a set of volumes (the round's labelled, annotated ones):

1. **Interpolator** (:class:`~xalbench_due.diffusion.SliceDiffusion`) trained on the
   (previous, middle, next) triplets of consecutive annotated slices of the first
   ``fit_volumes`` volumes in the order given (0 = all) — a deterministic prefix, so later AL
   rounds whose labelled set extends the same prefix reuse the trained interpolator.
2. **Algorithm 1**: every missing slice is sampled autoregressively
   (:func:`~xalbench_due.slices.fill_schedule`), ``T = n_samples`` times; ĩ = the mean of the
   samples, the diffusion variance = their per-voxel variance.
3. **Variance**: ``variance = "diffusion"`` (default) samples every volume ``T`` times and uses
   that variance; ``"predictor"`` (the paper's deployed path) trains the imputed uncertainty
   predictor (:class:`~xalbench_due.predictor.UncertaintyPredictor`) on the diffusion variance of
   the first ``predictor_volumes`` volumes (canonical order, ``T`` samples each); the other
   volumes get ``target_samples`` samples (their ĩ) and the predictor gives every variance.
4. **Weights** (:func:`~xalbench_due.weights.block_weights`).

Blocks whose context slices are all empty are not sampled (``skip_empty``): ĩ = 0 and variance 0
there, which is what the trained interpolator returns up to sampling noise (tested) — the
interpolation of nothing is nothing — at no cost.

Results are cached (in memory, and on disk under ``cache_dir`` when set) under a SHA-256 of the
options and the volumes' annotated masks; all randomness is seeded from that key and ``seed``,
so the same labelled masks give the same result in every method, cell and process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from xalbench_due.diffusion import DiffusionConfig, SliceDiffusion
from xalbench_due.predictor import PredictorConfig, UncertaintyPredictor
from xalbench_due.slices import Block, Step, blocks, fill_schedule, nearest_fill, triplets
from xalbench_due.weights import ConstantBlock, block_weights

__all__ = ["ImputeConfig", "Volume", "Imputed", "Imputer", "clear_memory_cache"]

#: bump when the computation changes, so stale on-disk caches are not reused
CACHE_FORMAT = 4
_MEMORY: OrderedDict[str, object] = OrderedDict()
_MEMORY_SIZE = 16


def clear_memory_cache() -> None:
    _MEMORY.clear()


def _remember(key: str, value: object) -> None:
    _MEMORY[key] = value
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _MEMORY_SIZE:
        _MEMORY.popitem(last=False)


@dataclasses.dataclass(frozen=True)
class ImputeConfig:
    n_samples: int = 4
    variance: Literal["predictor", "diffusion"] = "diffusion"
    predictor_volumes: int = 8
    target_samples: int = 2
    fit_volumes: int = 32
    skip_empty: bool = True
    constant_block: ConstantBlock = "one"
    eps: float = 1e-6
    seed: int = 0
    cache_dir: str = ""
    diffusion: DiffusionConfig = DiffusionConfig()
    predictor: PredictorConfig = PredictorConfig()

    def check(self) -> None:
        if self.variance not in ("predictor", "diffusion"):
            raise ValueError(f"variance must be 'predictor' or 'diffusion', got {self.variance!r}")
        if self.n_samples < 2:
            raise ValueError(f"n_samples (T) must be ≥ 2 to give a variance, got {self.n_samples}")
        if self.target_samples < 1 or self.predictor_volumes < 1 or self.fit_volumes < 0:
            raise ValueError("target_samples and predictor_volumes must be ≥ 1, fit_volumes ≥ 0")
        self.diffusion.check()

    def key_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("cache_dir")
        return out


@dataclasses.dataclass(frozen=True)
class Volume:
    """One annotated volume: ``roi`` ``D×H×W`` (zero off the annotated slices) and its positions."""

    roi: Tensor
    positions: np.ndarray

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        arr = (self.roi.detach().cpu().numpy() > 0.5)
        h.update(str(arr.shape).encode())
        h.update(np.packbits(arr).tobytes())
        h.update(np.asarray(self.positions, dtype=np.int64).tobytes())
        return h.hexdigest()

    @property
    def blocks(self) -> list[Block]:
        return blocks(self.positions, int(self.roi.shape[0]))


@dataclasses.dataclass
class Imputed:
    """Per-volume tensors ``D×H×W``: target ĩ, variance, weights W and the nearest-filled mask m."""

    target: Tensor
    variance: Tensor
    weight: Tensor
    nearest: Tensor
    diffusion_variance: Tensor | None = None


def _atomic_save(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _seed(*parts: object) -> int:
    h = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return int(h[:15], 16)


def _empty(x: Tensor) -> bool:
    return bool((x <= 0.5).all())


class Imputer:
    """Computes (and caches) :class:`Imputed` for a list of :class:`Volume`."""

    def __init__(self, config: ImputeConfig = ImputeConfig(), interpolator: SliceDiffusion | None = None) -> None:
        """``interpolator``: a fitted :class:`SliceDiffusion` to use instead of training one."""
        config.check()
        if interpolator is not None and not interpolator.fitted:
            raise ValueError("Imputer(interpolator=...) needs a fitted SliceDiffusion")
        self.config = config
        self.fixed = interpolator
        self.stats: dict[str, float] = {}

    # ------------------------------------------------------------------ public
    def __call__(self, volumes: Sequence[Volume], fit_count: int | None = None) -> list[Imputed]:
        """Imputations of ``volumes``; ``fit_count`` overrides ``fit_volumes`` (how many of the
        first volumes train the interpolator; the loss counts the labelled rows, empty or not)."""
        cfg = self.config
        self.stats = {}
        self._fit_count = cfg.fit_volumes if fit_count is None else fit_count
        digests = [v.digest for v in volumes]
        fit = self._fit_digests(digests) if self.fixed is None else [self._weights_digest(self.fixed)]
        key = hashlib.sha256(json.dumps({"format": CACHE_FORMAT, "cfg": cfg.key_dict(), "fit": fit,
                                         "vols": sorted(digests)}, sort_keys=True, default=str).encode()).hexdigest()
        cached = self._load(key)
        if cached is None:
            cached = self._compute(volumes, digests, key)
            self._store(key, cached)
            self.stats["cache_hit"] = 0.0
        else:
            self.stats["cache_hit"] = 1.0
        return [cached[d] for d in digests]  # type: ignore[index]

    # ------------------------------------------------------------------ cache
    @staticmethod
    def _weights_digest(model: SliceDiffusion) -> str:
        h = hashlib.sha256()
        for name, t in model.net.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def _fit_digests(self, digests: list[str]) -> list[str]:
        n = getattr(self, "_fit_count", self.config.fit_volumes)
        return list(digests[:n]) if n else sorted(digests)

    def _path(self, key: str) -> Path | None:
        return Path(self.config.cache_dir) / f"due-{key[:40]}.pt" if self.config.cache_dir else None

    def _load(self, key: str) -> dict[str, Imputed] | None:
        if key in _MEMORY:
            _MEMORY.move_to_end(key)
            return _MEMORY[key]  # type: ignore[return-value]
        path = self._path(key)
        if path is not None and path.exists():
            try:
                raw = torch.load(path, map_location="cpu", weights_only=True)
                out = {d: Imputed(**fields) for d, fields in raw.items()}
            except Exception as exc:  # noqa: BLE001 - a bad cache file is recomputed, never fatal
                warnings.warn(f"DUE cache file {path} unreadable ({exc!r}); recomputing", RuntimeWarning, stacklevel=2)
                return None
            _remember(key, out)
            return out
        return None

    def _store(self, key: str, value: dict[str, Imputed]) -> None:
        _remember(key, value)
        path = self._path(key)
        if path is None:
            return
        _atomic_save({d: dataclasses.asdict(v) for d, v in value.items()}, path)

    # ------------------------------------------------------------------ interpolator
    def interpolator(self, volumes: Sequence[Volume], digests: list[str]) -> SliceDiffusion | None:
        """The trained interpolator for ``volumes`` (memory-cached by its training data)."""
        if self.fixed is not None:
            return self.fixed
        cfg = self.config
        fit = self._fit_digests(digests)
        key = "interp-" + hashlib.sha256(json.dumps({"format": CACHE_FORMAT, "d": dataclasses.asdict(cfg.diffusion),
                                                     "s": cfg.seed,
                                                     "fit": fit}, sort_keys=True).encode()).hexdigest()
        if key in _MEMORY:
            _MEMORY.move_to_end(key)
            return _MEMORY[key]  # type: ignore[return-value]
        by_digest = dict(zip(digests, volumes, strict=True))
        parts = [triplets(by_digest[d].roi, by_digest[d].positions) for d in fit]
        parts = [p for p in parts if p[0].shape[0]]
        if not parts:
            return None
        model = SliceDiffusion(cfg.diffusion)
        path = self._path(key)
        if path is not None and path.exists():
            try:
                model.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
                model.net.eval()
                model.fitted = True
            except Exception as exc:  # noqa: BLE001 - a bad cache file is refitted, never fatal
                warnings.warn(f"DUE cache file {path} unreadable ({exc!r}); refitting", RuntimeWarning, stacklevel=2)
        if not model.fitted:
            prev, mid, nxt = (torch.cat([p[i] for p in parts]) for i in range(3))
            t0 = time.perf_counter()
            model.fit(prev, mid, nxt, seed=_seed(key, "fit"))
            self.stats["fit_s"] = time.perf_counter() - t0
            self.stats["mask_rate"] = model.last_mask_rate
            self.stats["n_triplets"] = float(prev.shape[0])
            self.stats["interpolator_fitted"] = 1.0
            if path is not None:
                _atomic_save(model.net.state_dict(), path)
        _remember(key, model)
        return model

    # ------------------------------------------------------------------ Algorithm 1
    def _compute(self, volumes: Sequence[Volume], digests: list[str], key: str) -> dict[str, Imputed]:
        cfg = self.config
        order = sorted(set(digests))
        by_digest = dict(zip(digests, volumes, strict=True))
        vols = [by_digest[d] for d in order]
        model = self.interpolator(volumes, digests)
        if model is None:
            warnings.warn("DUE: no volume has 3 annotated slices to train the interpolator; using the nearest "
                          "annotated mask with weight 1 (Baseline+) this round", RuntimeWarning, stacklevel=3)
        n_var = len(vols) if cfg.variance == "diffusion" else min(cfg.predictor_volumes, len(vols))
        samples = [cfg.n_samples if i < n_var else cfg.target_samples for i in range(len(vols))]
        states = [v.roi.float()[None].repeat(s, 1, 1, 1) for v, s in zip(vols, samples, strict=True)]
        active = [[b for b in v.blocks if not (cfg.skip_empty and self._empty_block(v, b))] for v in vols]
        if model is not None:
            t0 = time.perf_counter()
            self._sample(model, vols, active, states, key)
            self.stats["sample_s"] = time.perf_counter() - t0
        means = [s.mean(0) for s in states]
        dvars = [s.var(0, unbiased=False) for s in states]
        if cfg.variance == "predictor" and model is not None:
            t0 = time.perf_counter()
            variances = self._predict(vols, active, dvars[:n_var], key)
            self.stats["predictor_s"] = time.perf_counter() - t0
        else:
            variances = dvars
        out: dict[str, Imputed] = {}
        for d, v, act, mean, var, dvar in zip(order, vols, active, means, variances, dvars, strict=True):
            missing = torch.zeros(v.roi.shape[0], dtype=torch.bool)
            for b in act:
                missing[b.lo:b.hi + 1] = True
            var = torch.where(missing[:, None, None], var, torch.zeros_like(var))
            nearest = nearest_fill(v.roi.float(), v.positions)
            target = mean if model is not None else nearest
            weight = block_weights(var, v.blocks, v.positions, eps=cfg.eps, constant_block=cfg.constant_block)
            out[d] = Imputed(target.contiguous(), var.contiguous(), weight.contiguous(), nearest.contiguous(),
                             dvar.contiguous() if model is not None else None)
        return out

    @staticmethod
    def _empty_block(v: Volume, b: Block) -> bool:
        ctx = [i for i in (b.prev, b.next) if i is not None]
        return all(_empty(v.roi[i]) for i in ctx)

    def _sample(self, model: SliceDiffusion, vols: list[Volume], active: list[list[Block]], states: list[Tensor],
                key: str) -> None:
        schedules = [fill_schedule(a) for a in active]
        n_levels = max((len(s) for s in schedules), default=0)
        gen = torch.Generator().manual_seed(_seed(key, self.config.seed, "noise"))
        shape = tuple(vols[0].roi.shape[-2:]) if vols else (0, 0)
        n_rows = 0
        for level in range(n_levels):
            rows: list[tuple[int, Step, int]] = [(vi, step, s)
                                                 for vi, sched in enumerate(schedules) if level < len(sched)
                                                 for step in sched[level] for s in range(states[vi].shape[0])]
            if not rows:
                continue
            zero = torch.zeros(shape)
            prev = torch.stack([states[vi][s, st.prev] if st.prev is not None else zero for vi, st, s in rows])
            nxt = torch.stack([states[vi][s, st.next] if st.next is not None else zero for vi, st, s in rows])
            has_p = torch.tensor([st.prev is not None for _, st, _ in rows])
            has_n = torch.tensor([st.next is not None for _, st, _ in rows])
            noise = torch.randn(model.noise_shape(len(rows), shape), generator=gen)  # type: ignore[arg-type]
            out = model.sample(prev, nxt, has_p, has_n, noise)
            for (vi, st, s), x in zip(rows, out, strict=True):
                states[vi][s, st.target] = x
            n_rows += len(rows)
        self.stats["sampled_slices"] = float(n_rows)

    # ------------------------------------------------------------------ predictor
    @staticmethod
    def _rows(vols: list[Volume], active: list[list[Block]], limit: int | None = None):
        """(volume, slice, prev ctx, next ctx, coords) for every missing slice of active blocks."""
        for vi, (v, act) in enumerate(zip(vols, active, strict=True)):
            if limit is not None and vi >= limit:
                break
            pos = np.asarray(v.positions)
            spacing = float(np.diff(pos).mean()) if pos.size > 1 else 1.0
            zero = torch.zeros(v.roi.shape[-2:])
            for b in act:
                p = v.roi[b.prev].float() if b.prev is not None else zero
                n = v.roi[b.next].float() if b.next is not None else zero
                for j in b.slices:
                    coords = torch.tensor([float(b.prev is not None), float(b.next is not None),
                                           (j - b.prev) / spacing if b.prev is not None else 0.0,
                                           (b.next - j) / spacing if b.next is not None else 0.0])
                    yield vi, j, p, n, coords

    def _predict(self, vols: list[Volume], active: list[list[Block]], dvars: list[Tensor], key: str) -> list[Tensor]:
        train = list(self._rows(vols, active, limit=len(dvars)))
        out = [torch.zeros_like(v.roi, dtype=torch.float32) for v in vols]
        if not train:
            return out
        prev = torch.stack([r[2] for r in train])
        nxt = torch.stack([r[3] for r in train])
        coords = torch.stack([r[4] for r in train])
        var = torch.stack([dvars[vi][j] for vi, j, *_ in train])
        predictor = UncertaintyPredictor(self.config.predictor).fit(prev, nxt, coords, var,
                                                                    seed=_seed(key, self.config.seed, "predictor"))
        rows = list(self._rows(vols, active))
        pred = predictor.predict(torch.stack([r[2] for r in rows]), torch.stack([r[3] for r in rows]),
                                 torch.stack([r[4] for r in rows]))
        for (vi, j, *_), v in zip(rows, pred, strict=True):
            out[vi][j] = v
        return out
