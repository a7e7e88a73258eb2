"""Saliency map → latent code encoders (the ``z`` of GESTALT's eq. 1).

GESTALT never names the encoder that turns a saliency map into a latent vector (its abstract
speaks of "saliency map model encodings", and its image-feature ablation applies the same
"feature extraction" to the input images, which suggests one shared extractor). This is an
inference, made pluggable:

* ``"classifier"`` (default): the current classifier's pooled penultimate features of the
  map, ``model.embed(model.features(x))``, where ``x`` is the map min-max normalised to
  [0, 1] per (sample, class) and replicated over the model's input channels. Costs one
  forward per (sample, class); ``size > 0`` resamples the maps to ``size`` per spatial axis
  first (cheaper, coarser).
* ``"pixels"``: the normalised map itself, area-pooled to ``grid`` per axis and flattened
  (no network; the cheap baseline encoder).

Subclass a GESTALT strategy and override ``encode`` to plug in any other encoder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xalbench.base import ExplainableNet
from xalbench.errors import ConfigError

__all__ = ["EncoderName", "classifier_encoder", "frozen", "normalise_maps", "pixel_encoder"]

EncoderName = Literal["classifier", "pixels"]


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no autograd inside; every module's previous ``training`` flag restored after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        for m, flag in flags:
            m.training = flag


def _minmax(maps: Tensor) -> tuple[Tensor, Tensor]:
    """Per-map minimum and range (1 where the map is constant) over the spatial axes, ``B×1``."""
    flat = maps.flatten(1)
    lo = flat.amin(1, keepdim=True)
    span = flat.amax(1, keepdim=True) - lo
    return lo, torch.where(span > 0, span, torch.ones_like(span))


def normalise_maps(maps: Tensor) -> Tensor:
    """Per-map min-max to [0, 1] over the spatial axes of ``B×spatial`` maps (float32).

    A constant map becomes all zeros. Positive rescaling of a map does not change the result
    (exactly for powers of two, up to float rounding otherwise), so GESTALT is invariant to the
    explainer's map scale.
    """
    m = maps.detach().to(torch.float32)
    lo, span = _minmax(m)
    return ((m.flatten(1) - lo) / span).reshape(m.shape)


def _resample(x: Tensor, size: int) -> Tensor:
    """``B×C×spatial`` → ``size`` per spatial axis (area pooling down, bilinear/trilinear up)."""
    spatial = x.dim() - 2
    target = (size,) * spatial
    if tuple(x.shape[2:]) == target:
        return x
    if all(s >= size for s in x.shape[2:]):
        return F.adaptive_avg_pool2d(x, target) if spatial == 2 else F.adaptive_avg_pool3d(x, target)
    mode = "bilinear" if spatial == 2 else "trilinear"
    return F.interpolate(x, size=target, mode=mode, align_corners=False)


def classifier_encoder(
    maps: Tensor,
    model: ExplainableNet,
    *,
    in_channels: int,
    batch_size: int,
    device: torch.device,
    size: int = 0,
) -> np.ndarray:
    """``N×K×spatial`` maps → ``N×K×d`` latents: ``model.embed(model.features(replicated map))``."""
    if maps.dim() < 4:
        raise ConfigError(f"gestalt: all-class maps must be N×K×(D×)H×W, got shape {tuple(maps.shape)}")
    n, k = maps.shape[:2]
    flat = maps.reshape(n * k, *maps.shape[2:])
    out: list[Tensor] = []
    step = max(int(batch_size), 1)
    with frozen(model):
        for start in range(0, n * k, step):
            x = normalise_maps(flat[start:start + step].to(device))[:, None]
            if size > 0:
                x = _resample(x, size)
            x = x.expand(-1, in_channels, *x.shape[2:])
            out.append(model.embed(model.features(x)).to("cpu", torch.float64))
    if not out:
        return np.zeros((n, k, 0))
    z = torch.cat(out).numpy()
    return z.reshape(n, k, -1)


def pixel_encoder(maps: Tensor, *, grid: int = 8) -> np.ndarray:
    """``N×K×spatial`` maps → ``N×K×grid^dims``: normalised maps area-pooled to ``grid`` per axis."""
    if grid < 1:
        raise ConfigError(f"gestalt: the pixels encoder needs grid ≥ 1, got {grid}")
    n, k = maps.shape[:2]
    flat = maps.detach().to(torch.float32).reshape(n * k, 1, *maps.shape[2:])
    lo, span = _minmax(flat)  # min-max is affine: pool the raw map, then normalise with its own min/range
    if all(s >= grid for s in flat.shape[2:]):
        flat = _resample(flat, grid)
    pooled = (flat.flatten(1) - lo) / span
    return pooled.reshape(n, k, -1).to("cpu", torch.float64).numpy()
