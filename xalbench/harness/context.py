"""The read-only world a strategy sees, and the per-round pool cache.

:class:`StrategyContext` holds pool images but **no pool labels**, no oracle and no test
set; pool ROIs only when the suite's track says ``pool_masks = "visible"``. Touching a
forbidden attribute raises :class:`InformationAccessError` *and* is recorded, so a
strategy that catches the error still fails its cell.

:class:`PoolCache` computes, once per round and lazily, the unlabelled pool's
explanation-layer activations, embeddings, logits, probabilities, saliency maps and
MC-dropout probabilities, in batches, without gradients and with the model in eval mode.
Every array is aligned with ``ctx.unlabelled``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xalbench.base import ExplainableNet, Explainer, Split, Task
from xalbench.errors import InformationAccessError

__all__ = ["EvalMode", "PoolCache", "StrategyContext", "model_fingerprint"]


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (names, shapes, bytes)."""
    h = hashlib.sha256()
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        h.update(name.encode())
        arr = t.detach().cpu().contiguous()
        h.update(str(tuple(arr.shape)).encode())
        h.update(arr.numpy().tobytes() if arr.dtype != torch.bfloat16 else arr.float().numpy().tobytes())
    return h.hexdigest()


class EvalMode:
    """Context manager: eval mode inside, previous ``training`` flags restored after."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.flags: list[tuple[torch.nn.Module, bool]] = []

    def __enter__(self) -> torch.nn.Module:
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        return self.model

    def __exit__(self, *exc: Any) -> None:
        for m, flag in self.flags:
            m.training = flag


class PoolCache:
    """Lazily computed, shared per-round quantities over the unlabelled pool."""

    def __init__(
        self,
        model: ExplainableNet,
        images: Tensor,
        *,
        task: Task,
        explainer: Explainer | None,
        device: torch.device,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        self._model = model
        self._images = images
        self.task = task
        self._explainer = explainer
        self.device = device
        self.batch_size = batch_size
        self.seed = seed
        self._store: dict[Any, Tensor] = {}

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def _forward(self) -> None:
        feats, logits = [], []
        with torch.no_grad(), EvalMode(self._model):
            for start in range(0, len(self), self.batch_size):
                x = self._images[start : start + self.batch_size].to(self.device)
                a = self._model.features(x)
                feats.append(a)
                logits.append(self._model.classifier(self._model.embed(a)))
        empty_logits = torch.zeros(0, self._model.classifier.out_features, device=self.device)
        self._store["features"] = torch.cat(feats) if feats else torch.zeros(0, device=self.device)
        self._store["logits"] = torch.cat(logits) if logits else empty_logits

    def features(self) -> Tensor:
        """Explanation-layer activations ``U×C'×(d×)h×w`` (on the device)."""
        if "features" not in self._store:
            self._forward()
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
        """Penultimate features ``U×d`` (pooled explanation-layer activations)."""
        if "embeddings" not in self._store:
            with torch.no_grad():
                self._store["embeddings"] = self._model.embed(self.features())
        return self._store["embeddings"]

    def predictions(self) -> Tensor:
        if self.task == "multi-label":
            return (self.probs() > 0.5).long()
        return self.logits().argmax(1)

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
        with EvalMode(self._model):
            for start in range(0, len(self), self.batch_size):
                sl = slice(start, start + self.batch_size)
                t = None if all_classes else preds[sl]
                if self._explainer.from_features:
                    m = self._explainer.explain_from_features(
                        self._model, self.features()[sl], t, all_classes=all_classes, output_shape=out_shape
                    )
                else:
                    x = self._images[sl].to(self.device)
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


class StrategyContext:
    """Everything a strategy may read in one round (pool coordinates throughout)."""

    def __init__(
        self,
        *,
        model: ExplainableNet,
        pool_images: Tensor,
        labelled: np.ndarray,
        labelled_labels: Tensor,
        labelled_roi: Tensor | None,
        labelled_has_roi: Tensor | None,
        val: Split,
        task: Task,
        num_classes: int,
        spatial_dims: int,
        rng: np.random.Generator,
        device: torch.device,
        round_index: int,
        seed: int,
        explainer: Explainer | None = None,
        pool_roi: Tensor | None = None,
        pool_has_roi: Tensor | None = None,
        pool_masks_visible: bool = False,
        batch_size: int = 256,
        pool_annotated_slices: Tensor | None = None,
    ) -> None:
        n = int(pool_images.shape[0])
        self.model = model
        self.pool_images = pool_images
        self.n_pool = n
        self.labelled = np.asarray(labelled, dtype=np.int64)
        mask = np.ones(n, dtype=bool)
        mask[self.labelled] = False
        self.unlabelled = np.flatnonzero(mask)
        self.labelled_labels = labelled_labels
        self.labelled_roi = labelled_roi
        self.labelled_has_roi = labelled_has_roi
        self.val = val
        self.task = task
        self.num_classes = num_classes
        self.spatial_dims = spatial_dims
        self.rng = rng
        self.device = device
        self.round_index = round_index
        self.seed = seed
        self.explainer = explainer
        self.batch_size = batch_size
        self._pool_roi = pool_roi
        self._pool_has_roi = pool_has_roi
        self._pool_masks_visible = pool_masks_visible
        self._pool_annotated = pool_annotated_slices
        self.violations: list[str] = []
        self.cache = PoolCache(
            model,
            pool_images[torch.as_tensor(self.unlabelled)],
            task=task,
            explainer=explainer,
            device=device,
            batch_size=batch_size,
            seed=seed,
        )

    def _deny(self, what: str) -> InformationAccessError:
        self.violations.append(what)
        return InformationAccessError(what)

    @property
    def unlabelled_images(self) -> Tensor:
        return self.pool_images[torch.as_tensor(self.unlabelled)]

    @property
    def pool_masks_visible(self) -> bool:
        return self._pool_masks_visible

    @property
    def pool_roi(self) -> Tensor:
        """ROIs of the unlabelled pool (aligned with ``unlabelled``), only on visible-mask tracks."""
        if not self._pool_masks_visible or self._pool_roi is None:
            raise self._deny("pool ROIs are hidden on this suite's track (pool_masks = 'hidden')")
        return self._pool_roi[torch.as_tensor(self.unlabelled)]

    @property
    def pool_has_roi(self) -> Tensor:
        if not self._pool_masks_visible or self._pool_has_roi is None:
            raise self._deny("pool ROI flags are hidden on this suite's track (pool_masks = 'hidden')")
        return self._pool_has_roi[torch.as_tensor(self.unlabelled)]

    @property
    def pool_annotated_slices(self) -> Tensor | None:
        """3D only: ``U×D`` flags of the slices whose ROI an expert drew (visible-mask tracks only);
        ``None`` when the dataset marks no slices (every slice of a non-empty ROI is annotated)."""
        if not self._pool_masks_visible:
            raise self._deny("pool annotation flags are hidden on this suite's track (pool_masks = 'hidden')")
        if self._pool_annotated is None:
            return None
        return self._pool_annotated[torch.as_tensor(self.unlabelled)]

    @property
    def pool_labels(self) -> Tensor:
        raise self._deny("pool labels are never visible to a strategy (only ctx.labelled_labels)")

    @property
    def test(self) -> Split:
        raise self._deny("the test set is never visible to a strategy")

    @property
    def oracle(self) -> Any:
        raise self._deny("the oracle is never visible to a strategy")

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("StrategyContext is not picklable: strategies must not ship it elsewhere")
