"""Calls into Quantus (``pip install xalbench[xai]``) with the model's state and every RNG preserved.

Quantus is imported lazily (it takes seconds). Each call:

* runs in eval mode (Quantus refuses a model in train mode; module flags are restored after);
* forks the torch RNG (``MPRT`` calls ``torch.manual_seed``) and saves/restores numpy's
  global RNG, which is seeded for Quantus' noise (ROAD's imputation) so results repeat;
* passes numpy inputs with ``channel_first=True`` (shape inference is ambiguous for small
  images) and explicit ``softmax``/``abs``/``normalise`` settings;
* passes the *rank* of each pixel in :func:`~xalbench.metrics.perturbation.relevance_order`
  as the attribution, so Quantus removes pixels in exactly the order the torch
  implementation uses (Quantus' unstable ``argsort`` would otherwise break ties arbitrarily;
  the perturbation metrics depend on the order only).

Areas under curves are computed by the caller with ``np.trapezoid``: Quantus 0.6's own AUC
helper calls ``np.trapz``, which numpy 2.4 removed, so it is never used here.
"""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from xalbench.errors import UnsupportedError
from xalbench.explain.cam import eval_mode
from xalbench.metrics.perturbation import rank_of

__all__ = ["import_quantus", "preserved_state", "quantus_perturbation_curve", "quantus_road", "quantus_mprt"]


def import_quantus() -> Any:
    try:
        import quantus
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UnsupportedError("faithfulness metrics need the 'quantus' package: pip install 'xalbench[xai]'") from exc
    return quantus


@contextlib.contextmanager
def preserved_state(model: nn.Module, numpy_seed: int | None = None) -> Iterator[None]:
    """Eval mode, forked torch RNG, saved numpy/python RNG (numpy seeded if asked) for the block."""
    np_state, py_state = np.random.get_state(), random.getstate()
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=devices), eval_mode(model):
            if numpy_seed is not None:
                np.random.seed(int(numpy_seed) % 2**32)
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _rank_attributions(order: Tensor, shape: tuple[int, ...], lerf: bool = False) -> np.ndarray:
    """Positive distinct float32 ``N×1×spatial`` scores, larger = removed earlier: ``P − rank`` (MoRF)
    or ``rank + 1`` (LeRF; Quantus asserts attributions are not all negative, so no negation)."""
    rank = rank_of(order)
    score = rank + 1 if lerf else order.shape[1] - rank
    return score.to(torch.float32).reshape(shape[0], 1, *shape[2:]).numpy()


def _device(model: nn.Module) -> str:
    return str(next(model.parameters()).device)


def quantus_perturbation_curve(model: nn.Module, images: Tensor, order: Tensor, targets: Tensor, *, steps: int,
                               baseline: float, lerf: bool, batch_size: int) -> np.ndarray:
    """Quantus ``PixelFlipping`` curve ``N×steps`` (without the intact image), MoRF or LeRF (reversed ranks)."""
    quantus = import_quantus()
    x = images.detach().cpu().numpy().astype(np.float32)
    a = _rank_attributions(order, tuple(x.shape), lerf)
    metric = quantus.PixelFlipping(features_in_step=order.shape[1] // steps, perturb_baseline=float(baseline),
                                   abs=False, normalise=False, disable_warnings=True, display_progressbar=False)
    with preserved_state(model), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curves = metric(model=model, x_batch=x, y_batch=targets.cpu().numpy(), a_batch=a, channel_first=True,
                        softmax=True, device=_device(model), batch_size=batch_size)
    return np.asarray(curves, dtype=np.float64)


def quantus_road(model: nn.Module, images: Tensor, order: Tensor, targets: Tensor, *, percentages: Sequence[float],
                 noise: float, seed: int, batch_size: int) -> np.ndarray:
    """Quantus ``ROAD``: mean accuracy (prediction == target) per percentage (MoRF order)."""
    quantus = import_quantus()
    x = images.detach().cpu().numpy().astype(np.float32)
    a = _rank_attributions(order, tuple(x.shape))
    metric = quantus.ROAD(percentages=list(percentages), noise=float(noise), abs=False, normalise=False,
                          disable_warnings=True, display_progressbar=False)
    with preserved_state(model, numpy_seed=seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = metric(model=model, x_batch=x, y_batch=targets.cpu().numpy(), a_batch=a, channel_first=True,
                        softmax=True, device=_device(model), batch_size=batch_size)
    return np.array([float(scores[p]) for p in percentages])


ExplainFn = Callable[[nn.Module, Tensor, Tensor], Tensor]


def quantus_mprt(model: nn.Module, images: Tensor, targets: Tensor, maps: Tensor, explain: ExplainFn, *, seed: int,
                 average: bool, batch_size: int) -> np.ndarray:
    """Quantus ``MPRT`` (cascading, top-down): per-sample Spearman ρ between the original maps and the
    maps of the fully randomised model (``average=False``) or the mean over the cascade (``True``).

    A constant map has no ranking, so its ρ (``nan`` in scipy) counts as 0: no agreement.
    """
    quantus = import_quantus()
    device = next(model.parameters()).device

    def explain_func(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: Any) -> np.ndarray:
        x = torch.as_tensor(inputs, dtype=torch.float32, device=device)
        t = torch.as_tensor(targets, dtype=torch.long, device=device)
        with eval_mode(model):
            return explain(model, x, t).detach().cpu().numpy().astype(np.float32)

    x = images.detach().cpu().numpy().astype(np.float32)
    a = maps.detach().cpu().numpy().astype(np.float32)[:, None]
    # per-layer scores are read from the returned dict: Quantus 0.6's own average
    # (``return_average_correlation``) skips a key "orig" but stores "original", so it
    # would include the unrandomised model's self-similarity
    metric = quantus.MPRT(layer_order="top_down", seed=int(seed), skip_layers=not average,
                          return_last_correlation=False, return_average_correlation=False,
                          abs=True, normalise=False, disable_warnings=True, display_progressbar=False)
    with preserved_state(model), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = metric(model=model, x_batch=x, y_batch=targets.cpu().numpy(), a_batch=a, channel_first=True,
                        explain_func=explain_func, softmax=False, device=str(device), batch_size=batch_size)
    layers = [np.nan_to_num(np.asarray(v, dtype=np.float64), nan=0.0) for k, v in scores.items() if k != "original"]
    return np.mean(layers, axis=0) if average else layers[-1]
