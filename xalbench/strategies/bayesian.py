"""MC-dropout strategies: ``mcd-entropy`` and ``bald`` (Gal, Islam & Ghahramani 2017).

Both read ``ctx.cache.mc_probs(T)``: ``T`` stochastic passes of the head's dropout over
the cached penultimate embeddings (one shared forward of the pool per round, memory
``T×U×K``; never ``T`` copies of the pool images or activations). Dropout masks are
seeded by the round seed, so answers are deterministic.

Multi-label (one Bernoulli per label): per-label scores as below with binary entropy,
averaged over labels.

**Memory.** Scores are computed over blocks of pool rows (``mc[:, block]`` in float64), so a
query holds the cache's float32 ``T×U×K`` plus one block, never a float64 copy of all of it.
Blocks are multiples of :data:`~xalbench.strategies.blocks.ROW_ALIGN` rows, so with one thread
every score is bitwise the one a whole-pool computation gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from xalbench.base import Strategy, StrategyContext
from xalbench.options import Options
from xalbench.strategies import blocks
from xalbench.strategies.common import binary_entropy, categorical_entropy

__all__ = ["BALD", "MCDropoutEntropy"]

_GAL = "Gal, Islam & Ghahramani. Deep Bayesian Active Learning with Image Data. ICML 2017"
_HOULSBY = "Houlsby, Huszár, Ghahramani & Lengyel. Bayesian Active Learning for Classification and Preference Learning. arXiv:1112.5745 (2011)"


@dataclass(frozen=True)
class _MCOptions(Options):
    n_samples: int = 20

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be ≥ 1 (MC-dropout passes), got {self.n_samples}")


def _entropy(p: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Entropy over the last axis (multi-label: mean binary entropy over labels)."""
    return binary_entropy(p).mean(-1) if multilabel else categorical_entropy(p, -1)


class _MCStrategy(Strategy):
    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True
    Options = _MCOptions

    def score(self, mc: torch.Tensor, multilabel: bool) -> torch.Tensor:  # pragma: no cover - abstract
        """The score of each sample from MC probabilities ``T×U×K`` (float64)."""
        raise NotImplementedError

    def scores(self, ctx: StrategyContext) -> torch.Tensor:
        mc = ctx.cache.mc_probs(self.options.n_samples).detach()  # T×U×K (float32)
        multilabel = ctx.task == "multi-label"
        cuts = list(blocks.row_blocks(mc.shape[1], mc.shape[0] * mc.shape[2]))
        if len(cuts) <= 1:
            return self.score(mc.double(), multilabel)
        out = torch.empty(mc.shape[1], dtype=torch.float64, device=mc.device)
        for sl in cuts:
            out[sl] = self.score(mc[:, sl].double(), multilabel)
        return out


class MCDropoutEntropy(_MCStrategy):
    """Entropy of the MC-averaged predictive: ``H[(1/T) Σ_t p_t(y|x)]`` (Gal et al. 2017, "Max Entropy")."""

    name: ClassVar[str] = "mcd-entropy"
    summary: ClassVar[str] = "Entropy of the MC-dropout mean prediction (T=20 passes of the head)"
    paper: ClassVar[str] = _GAL

    def score(self, mc: torch.Tensor, multilabel: bool) -> torch.Tensor:
        return _entropy(mc.mean(0), multilabel)


class BALD(_MCStrategy):
    """Mutual information ``I[y; ω | x] = H[E_t p_t] − E_t H[p_t]`` (Houlsby et al. 2011; Gal et al. 2017)."""

    name: ClassVar[str] = "bald"
    summary: ClassVar[str] = "BALD mutual information between label and weights, MC-dropout (T=20)"
    paper: ClassVar[str] = f"{_HOULSBY}; {_GAL}"

    def score(self, mc: torch.Tensor, multilabel: bool) -> torch.Tensor:
        return _entropy(mc.mean(0), multilabel) - _entropy(mc, multilabel).mean(0)
