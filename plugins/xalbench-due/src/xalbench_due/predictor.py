"""DUE's imputed uncertainty predictor (§4.3, Fig. 2): a small neural-process VAE that regresses
the diffusion variance of a missing slice from the two ground-truth context slices and the
slice's position between them — the paper's speed-up (diffusion sampling T times is slow; the
VAE gives the variance in one pass and handles any spacing).

Architecture (small stand-in for NPVP-S, see README): a conv encoder of
``[previous, next, coordinate maps]`` gives a feature map ``h``; a global latent ``z`` has a
prior ``p(z | h)`` (the context, neural-process style) and, in training, a posterior
``q(z | h, var)`` that also sees the target; the decoder maps ``[h, z]`` to the variance map.
Loss ``MSE + β·KL(q ‖ p)`` with β = 1e-6 on the standard deviation divided by its maximum over the
training slices. (Deviation: the reference uses L1. The variance maps are mostly ≈ 0 with a few
large values; at this training budget the L1 optimum — a per-voxel median — collapsed to a zero
map, so every block got the constant-block weight. The squared error's optimum is the conditional
mean, which is not zero near lesion borders.)
Inference uses the prior mean of ``z`` (deterministic, so reruns agree; NPVP samples it).

Coordinates (4 values per slice, broadcast as maps): ``has_prev``, ``has_next`` and the distances
to the previous / next context slice divided by the volume's annotation spacing (0 when that
context is absent), so heads and tails (one context) and gaps of any size are covered.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PredictorConfig", "UncertaintyPredictor"]


@dataclasses.dataclass(frozen=True)
class PredictorConfig:
    width: int = 8
    latent: int = 8
    steps: int = 80
    batch_size: int = 32
    lr: float = 3e-3
    beta: float = 1e-6
    downsample: int = 3


class _NPVAE(nn.Module):
    def __init__(self, width: int, latent: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(6, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.GELU(),
        )
        self.prior = nn.Linear(width, 2 * latent)
        self.posterior = nn.Sequential(nn.Conv2d(width + 1, width, 3, padding=1), nn.GELU())
        self.posterior_head = nn.Linear(width, 2 * latent)
        self.decoder = nn.Sequential(
            nn.Conv2d(width + latent, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, 1, 1),
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.encoder(x)
        mu, logvar = self.prior(h.mean((-2, -1))).chunk(2, -1)
        return h, mu, logvar.clamp(-8, 8)

    def decode(self, h: Tensor, z: Tensor) -> Tensor:
        zmap = z[:, :, None, None].expand(-1, -1, *h.shape[-2:])
        return self.decoder(torch.cat([h, zmap], 1))[:, 0]  # linear: a sigmoid saturated at 0 on sparse targets

    def posterior_params(self, h: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        g = self.posterior(torch.cat([h, target[:, None]], 1)).mean((-2, -1))
        mu, logvar = self.posterior_head(g).chunk(2, -1)
        return mu, logvar.clamp(-8, 8)


def _kl(mq: Tensor, lq: Tensor, mp: Tensor, lp: Tensor) -> Tensor:
    """KL(N(mq, e^lq) ‖ N(mp, e^lp)), summed over latent dims, mean over the batch."""
    return 0.5 * (lp - lq + (lq.exp() + (mq - mp) ** 2) / lp.exp() - 1).sum(-1).mean()


class UncertaintyPredictor:
    """``fit(prev, next, coords, var)`` then ``predict(prev, next, coords)`` (maps ``B×H×W``)."""

    def __init__(self, config: PredictorConfig = PredictorConfig()) -> None:
        self.config = config
        self.net = _NPVAE(config.width, config.latent)
        self.fitted = False
        self.scale = 1.0
        self.losses: list[float] = []

    def _inputs(self, prev: Tensor, nxt: Tensor, coords: Tensor) -> Tensor:
        x = torch.stack([prev.float(), nxt.float()], 1)
        f = self.config.downsample
        if f > 1:
            x = F.avg_pool2d(x, f, ceil_mode=True)
        cmaps = coords.float()[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return torch.cat([x, cmaps], 1)

    def _target(self, var: Tensor) -> Tensor:
        """Standard deviation on the predictor's grid, divided by its maximum over the training set."""
        f = self.config.downsample
        t = var.float().clamp_min(0)[:, None]
        if f > 1:
            t = F.avg_pool2d(t, f, ceil_mode=True)
        return (t[:, 0].sqrt() / self.scale).clamp(0, 1)

    def fit(self, prev: Tensor, nxt: Tensor, coords: Tensor, var: Tensor, *, seed: int) -> UncertaintyPredictor:
        if prev.shape[0] == 0:
            raise ValueError("the uncertainty predictor needs at least one slice with a diffusion variance")
        cfg = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            self.net = _NPVAE(cfg.width, cfg.latent)
            self.scale = max(float(var.float().clamp_min(0).sqrt().max()), 1e-6)
            x_all, y_all = self._inputs(prev, nxt, coords), self._target(var)
            opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
            self.net.train()
            self.losses = []
            for _ in range(cfg.steps):
                idx = torch.randint(0, x_all.shape[0], (min(cfg.batch_size, x_all.shape[0]),), generator=gen)
                x, y = x_all[idx], y_all[idx]
                h, mp, lp = self.net.encode(x)
                mq, lq = self.net.posterior_params(h, y)
                z = mq + (0.5 * lq).exp() * torch.randn(mq.shape, generator=gen)
                pred = self.net.decode(h, z)
                loss = F.mse_loss(pred, y) + cfg.beta * _kl(mq, lq, mp, lp)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.losses.append(float(loss.detach()))
            self.net.eval()
        self.fitted = True
        return self

    @torch.no_grad()
    def predict(self, prev: Tensor, nxt: Tensor, coords: Tensor) -> Tensor:
        """Variance maps ``B×H×W`` (prior-mean latent), on the inputs' grid."""
        if not self.fitted:
            raise RuntimeError("UncertaintyPredictor.predict called before fit")
        shape = tuple(prev.shape[-2:])
        h, mp, _ = self.net.encode(self._inputs(prev, nxt, coords))
        out = (self.net.decode(h, mp)[:, None].clamp(0, 1) * self.scale) ** 2
        if tuple(out.shape[-2:]) != shape:
            out = F.interpolate(out, size=shape, mode="bilinear", align_corners=False)
        return out[:, 0].clamp_min(0)
