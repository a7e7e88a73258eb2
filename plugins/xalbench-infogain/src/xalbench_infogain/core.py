"""Information-gain scores of Mehta et al. (2022), eq. (1) and (2), on cached features.

Notation (paper §2): pool sample ``x_a``, class ``c ∈ {0..C-1}``, evaluation set
``D^eval`` = the val split (§2.2, "Choice of Evaluation Set"), ``V`` samples.

* ``H1 = H[Ŷ^eval | X^eval, D^L]`` — entropy of the predicted eval labels under the
  current model; eval samples are treated as independent, so it is the *mean* per-sample
  predictive entropy (nats). (Sum vs mean only rescales every score, ranks are equal.)
* ``H2(a, c) = H[Ŷ^eval | X^eval, y_a = c, x_a, D^L]`` — the same after updating the
  model with **one gradient step on the last layer only** (§2.2, "Model Parameters" and
  "Model Updates") on the single pair ``(x_a, c)`` with cross-entropy.
* ``score(a) = H1 − Σ_c P(a, c) · H2(a, c)`` with ``P`` = predicted softmax (EIG, eq. 1),
  softmax × eval class frequency (AEIG, eq. 2, *not* renormalised, as printed),
  ``1/C`` (UIG) or the eval class frequency (CFIG) (§4.2).

**Closed form.** The last layer is ``z = W e + b``. The CE gradient for ``(e_a, c)`` is
``∂W = g eₐᵀ, ∂b = g`` with ``g = p_a − onehot(c)``, so one SGD step of size ``η`` moves
every eval logit to ``z'_j = z_j − η (eₐ·e_j + 1) g`` (the ``+1`` is the bias term).
Since ``g = p_a − onehot(c)``, ``z'`` is a class-independent base ``z_j − δ p_a`` with
logit ``c`` raised by ``δ = η (eₐ·e_j + 1)``; the softmax entropy ``log S − T/S`` of the
base (``S = Σ e^z``, ``T = Σ e^z z``) then updates in closed form for every ``c``. That
gives ``H2`` for all pool samples, classes and eval samples at once (``chunk×V×K``
floats at a time) with no model copy and no autograd.

:func:`reference_ig_scores` is the slow literal algorithm (supplementary Algorithm 1):
copy the model, one ``torch.optim.SGD`` step on the classifier per (sample, class),
re-run the eval set through the *whole* network. Tests show both agree.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["Weighting", "class_frequencies", "ig_scores", "reference_ig_scores", "weights_for"]

Weighting = Literal["eig", "aeig", "uig", "cfig"]


def _entropy_from_logits(z: Tensor) -> Tensor:
    """Softmax entropy over the last axis (nats), numerically stable."""
    logp = torch.log_softmax(z, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def class_frequencies(labels: Tensor, num_classes: int) -> Tensor:
    """``|y_eval = c| / Σ_j |y_eval = j|`` as float64 (eq. 2's adaptation factor)."""
    counts = torch.bincount(labels.long().reshape(-1).cpu(), minlength=num_classes)[:num_classes].double()
    return counts / counts.sum().clamp_min(1.0)


def weights_for(weighting: Weighting, probs: Tensor, freq: Tensor) -> Tensor:
    """``P(a, c)`` of eq. (1)/(2) and the §4.2 baselines, ``U×C`` float64."""
    probs = probs.double()
    freq = freq.to(probs.device, torch.float64)
    if weighting == "eig":
        return probs
    if weighting == "aeig":
        return probs * freq[None, :]
    if weighting == "uig":
        return torch.full_like(probs, 1.0 / probs.shape[1])
    if weighting == "cfig":
        return freq[None, :].expand_as(probs).clone()
    raise ValueError(f"unknown weighting {weighting!r}; choose eig, aeig, uig or cfig")


def ig_scores(
    weight: Tensor,
    bias: Tensor | None,
    pool_emb: Tensor,
    val_emb: Tensor,
    freq: Tensor,
    *,
    weighting: Weighting,
    lr: float,
    chunk_size: int = 256,
) -> Tensor:
    """Closed-form information gain for every pool embedding (``U``), float64.

    ``weight`` ``K×d`` and ``bias`` ``K`` are the classifier; ``pool_emb`` ``U×d`` and
    ``val_emb`` ``V×d`` the penultimate embeddings; ``freq`` the eval class frequencies.
    """
    w = weight.detach().double()
    b = bias.detach().double() if bias is not None else torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)
    eu = pool_emb.detach().double().to(w.device)
    ev = val_emb.detach().double().to(w.device)
    z_val = ev @ w.T + b  # V×K
    h1 = _entropy_from_logits(z_val).mean()
    probs = torch.softmax(eu @ w.T + b, dim=1)  # U×K, p(y_a = c | x_a, D^L)
    weights = weights_for(weighting, probs, freq)
    bias_term = 1.0 if bias is not None else 0.0
    out = torch.empty(eu.shape[0], dtype=torch.float64, device=w.device)
    for start in range(0, eu.shape[0], chunk_size):
        sl = slice(start, start + chunk_size)
        delta = lr * (eu[sl] @ ev.T + bias_term)  # n×V: η (eₐ·e_j + 1)
        # z'(a, c, j) = base(a, j) + δ(a, j)·onehot(c), with base = z_j − δ p_a (shared by all c).
        base = z_val[None, :, :] - delta[:, :, None] * probs[sl, None, :]  # n×V×K
        shifted = base - base.amax(-1, keepdim=True)
        e = shifted.exp()
        s_sum = e.sum(-1, keepdim=True)  # S = Σ_k e^{z_k}
        t_sum = (e * shifted).sum(-1, keepdim=True)  # T = Σ_k e^{z_k} z_k;  H = log S − T/S
        d = delta[:, :, None]
        em1 = torch.expm1(d)
        # Raising logit c by δ: S' = S + e_c(e^δ − 1), T' = T + e_c(z_c(e^δ − 1) + δ e^δ); last axis = c.
        s_new = s_sum + e * em1
        t_new = t_sum + e * (shifted * em1 + d * (em1 + 1.0))
        h2 = (s_new.log() - t_new / s_new).mean(1)  # n×C, mean over eval samples
        out[sl] = h1 - (weights[sl] * h2).sum(1)
    return out


def reference_ig_scores(
    model: nn.Module,
    pool_images: Tensor,
    val_images: Tensor,
    freq: Tensor,
    *,
    weighting: Weighting,
    lr: float,
) -> Tensor:
    """Literal Algorithm 1 (slow): per sample and class, copy, one SGD step on the head, re-evaluate.

    Runs in float64 on a deep copy of ``model`` in eval mode; ``model`` is untouched.
    ``model`` must expose ``classifier`` (the last layer) like ``xalbench.ExplainableNet``.
    """
    base = copy.deepcopy(model).double().eval()
    for name, param in base.named_parameters():
        param.requires_grad_(name.startswith("classifier."))
    xs = pool_images.double()
    xv = val_images.double()
    with torch.no_grad():
        h1 = _entropy_from_logits(base(xv)).mean()
        probs = torch.softmax(base(xs), dim=1)
    weights = weights_for(weighting, probs, freq)
    n_cls = probs.shape[1]
    head_state = copy.deepcopy(base.classifier.state_dict())
    scores = torch.empty(xs.shape[0], dtype=torch.float64)
    for a in range(xs.shape[0]):
        h2 = torch.empty(n_cls, dtype=torch.float64)
        for c in range(n_cls):
            base.classifier.load_state_dict(head_state)  # θ_a ← θ
            opt = torch.optim.SGD(base.classifier.parameters(), lr=lr)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(base(xs[a : a + 1]), torch.tensor([c]))
            loss.backward()
            opt.step()
            with torch.no_grad():
                h2[c] = _entropy_from_logits(base(xv)).mean()
        scores[a] = h1 - (weights[a] * h2).sum()
    return scores

