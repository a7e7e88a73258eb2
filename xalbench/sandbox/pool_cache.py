"""The per-round pool cache a strategy reads through ``ctx.cache``.

:class:`PoolCache` computes, once per round and lazily, the unlabelled pool's
explanation-layer activations, embeddings, logits, probabilities, saliency maps and
MC-dropout probabilities, in batches, without gradients and with the model in eval mode.
Every array is aligned with ``ctx.unlabelled``.

The images may be a tensor or a lazy :class:`~xalbench.data.mapped.MappedArray` view of a
prepared cache (pools larger than RAM): they are read batch by batch
(:func:`~xalbench.data.mapped_pool.iter_batches`) and never held whole. What the cache
keeps is per-sample output: logits and embeddings always (``U×K`` and ``U×d``); the
explanation-layer activations of one forward pass only while they fit in
:data:`FEATURE_BYTES` — above that, :meth:`PoolCache.saliency` recomputes them batch by
batch (same batches, so bitwise the same maps) and :meth:`PoolCache.features`, asked
explicitly, builds the ``U×C'×h×w`` tensor it returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from xalbench.base import ExplainableNet, Explainer, Task
from xalbench.data.mapped import MappedArray
from xalbench.data.mapped_pool import iter_batches
from xalbench.utils.torch_modes import eval_mode

__all__ = ["FEATURE_BYTES", "PoolCache"]

#: Explanation-layer activations of the whole unlabelled pool are kept from the forward pass
#: while they take at most this many bytes (they are recomputed per batch otherwise).
FEATURE_BYTES = 512 << 20


class PoolCache:
    """Lazily computed, shared per-round quantities over the unlabelled pool."""

    def __init__(
        self,
        model: ExplainableNet,
        images: Tensor | MappedArray,
        *,
        task: Task,
        explainer: Explainer | None,
        device: torch.device,
        batch_size: int = 256,
        seed: int = 0,
        feature_bytes: int = FEATURE_BYTES,
    ) -> None:
        self._model = model
        self._images = images
        self.task = task
        self._explainer = explainer
        self.device = device
        self.batch_size = batch_size
        self.seed = seed
        self.feature_bytes = feature_bytes
        self._store: dict[Any, Tensor] = {}

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def _batches(self) -> Iterator[tuple[slice, Tensor]]:
        """``(rows, images on the device)`` of consecutive batches of the unlabelled pool."""
        for start, x in zip(range(0, len(self), self.batch_size), iter_batches(self._images, self.batch_size),
                            strict=True):
            yield slice(start, start + self.batch_size), x.to(self.device)

    def _forward(self) -> None:
        feats: list[Tensor] | None = []
        logits, embs = [], []
        model = self._model
        with torch.no_grad(), eval_mode(model):
            for _, x in self._batches():
                a = model.features(x)
                e = model.embed(a)
                if feats is not None and a[:1].numel() * a.element_size() * len(self) > self.feature_bytes:
                    feats = None  # the pool's activations would not fit: saliency recomputes them per batch
                if feats is not None:
                    feats.append(a)
                embs.append(e)
                logits.append(model.classifier(e))
        head = model.classifier
        self._store["logits"] = torch.cat(logits) if logits else torch.zeros(0, head.out_features, device=self.device)
        self._store["embeddings"] = torch.cat(embs) if embs else torch.zeros(0, head.in_features, device=self.device)
        if feats is not None:
            self._store["features"] = torch.cat(feats) if feats else torch.zeros(0, device=self.device)

    def features(self) -> Tensor:
        """Explanation-layer activations ``U×C'×(d×)h×w`` (on the device)."""
        if "logits" not in self._store:
            self._forward()
        if "features" not in self._store:
            with torch.no_grad(), eval_mode(self._model):
                self._store["features"] = torch.cat([self._model.features(x) for _, x in self._batches()])
        return self._store["features"]

    def logits(self) -> Tensor:
        if "logits" not in self._store:
            self._forward()
        return self._store["logits"]

    def probs(self) -> Tensor:
        """Softmax (multi-class) or sigmoid (multi-label) of :meth:`logits`."""
        if "probs" not in self._store:
            z = self.logits()
            self._store["probs"] = torch.sigmoid(z) if self.task == "multi-label" else torch.softmax(z, dim=1)
        return self._store["probs"]

    def embeddings(self) -> Tensor:
        """Penultimate features ``U×d`` (pooled explanation-layer activations, from the forward pass)."""
        if "embeddings" not in self._store:
            self._forward()
        return self._store["embeddings"]

    def predictions(self) -> Tensor:
        if self.task == "multi-label":
            return (self.probs() > 0.5).long()
        return self.logits().argmax(1)

    def _features_of(self, rows: slice, x: Tensor) -> Tensor:
        """The activations of batch ``rows`` (kept from the forward pass, or recomputed from ``x``)."""
        if "features" in self._store:
            return self._store["features"][rows]
        with torch.no_grad(), eval_mode(self._model):
            return self._model.features(x)

    def saliency(self, target: str = "pred") -> Tensor:
        """Maps ``U×(D×)H×W`` of the predicted class (``"pred"``) or ``U×K×…`` (``"all"``)."""
        key = ("saliency", target)
        if key in self._store:
            return self._store[key]
        if self._explainer is None:
            raise RuntimeError("this suite configured no explainer; saliency is unavailable")
        all_classes = target == "all"
        if target not in ("pred", "all"):
            raise ValueError("target must be 'pred' or 'all'")
        out_shape = tuple(self._images.shape[2:])
        maps = []
        preds = self.logits().argmax(1)
        with eval_mode(self._model):
            for sl, x in self._batches():
                t = None if all_classes else preds[sl]
                if self._explainer.from_features:
                    m = self._explainer.explain_from_features(
                        self._model, self._features_of(sl, x), t, all_classes=all_classes, output_shape=out_shape
                    )
                else:
                    m = self._explainer.explain(self._model, x, t, all_classes=all_classes)
                maps.append(m.detach())
        self._store[key] = torch.cat(maps) if maps else torch.zeros((0, *out_shape), device=self.device)
        return self._store[key]

    def mc_probs(self, n_samples: int = 20) -> Tensor:
        """MC-dropout probabilities ``T×U×K`` from the head's dropout on cached embeddings.

        Dropout masks come from a generator seeded by the round seed (deterministic, no
        global RNG). Memory is ``T×U×K`` (never ``T`` copies of the pool).
        """
        key = ("mc", n_samples)
        if key in self._store:
            return self._store[key]
        emb = self.embeddings()
        p = float(getattr(self._model.dropout, "p", 0.0))
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        out = []
        with torch.no_grad():
            for _ in range(n_samples):
                keep = (torch.rand(emb.shape, generator=gen) >= p).to(emb.device, emb.dtype)
                scale = 1.0 / (1.0 - p) if p < 1 else 0.0
                z = self._model.classifier(emb * keep * scale)
                out.append(torch.sigmoid(z) if self.task == "multi-label" else torch.softmax(z, 1))
        self._store[key] = torch.stack(out) if out else torch.zeros(0)
        return self._store[key]
