"""Component contracts: Dataset, Model, Explainer, Loss, Strategy and what a strategy may read.

Conventions shared by every component:

* images are ``float32`` tensors in [0, 1], ``N×C×H×W`` (2D) or ``N×C×D×H×W`` (3D);
* multi-class labels are ``int64`` ``N``; multi-label labels are ``float32`` ``N×K`` in {0, 1}, with an
  optional ``label_mask`` ``N×K`` (1 = label known, 0 = unknown: left out of losses and metrics, e.g.
  CheXpert's uncertain labels under U-Ignore; ``None`` = every label known);
* ROIs are ``float32`` ``N×(D×)H×W`` in {0, 1} with a ``has_roi`` bool flag per sample;
  multi-label datasets may add per-finding ROIs ``class_roi`` ``N×K×(D×)H×W``;
  3D datasets may add ``annotated_slices`` ``N×D`` (slices whose ROI an expert drew);
* saliency maps are ``N×(D×)H×W`` (one target per sample) or ``N×K×(D×)H×W`` (all classes),
  in [0, 1], at input resolution unless an explainer option says otherwise.

Every component class carries ``name`` (a slug), ``summary`` (one line), ``paper``
(reference or ``""``) and a nested ``Options`` dataclass; it is built from a mapping of
options with :meth:`Component.from_options`, which rejects unknown keys.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from xalbench.options import Options
from xalbench.selection import stable_topk, topk_by_score

__all__ = [
    "Component",
    "Split",
    "DatasetMeta",
    "DatasetBundle",
    "Dataset",
    "ExplainableNet",
    "Model",
    "Explainer",
    "Batch",
    "LossOutput",
    "RoundInfo",
    "Loss",
    "Equivalence",
    "PoolCacheView",
    "Strategy",
    "StrategyContext",
    "Task",
    "stable_topk",
    "strategy_skip_reason",
]

Task = Literal["multi-class", "multi-label"]


class Component:
    """Shared shape of every registered component class.

    Class attributes: ``kind`` (set by each contract: ``"strategy"``, ``"loss"``, …), ``name`` (a
    slug, the registry key suites use), ``summary`` (one line), ``paper`` (the reference, or ``""``),
    ``Options`` (a frozen :class:`~xalbench.options.Options` dataclass with typed, defaulted fields),
    ``identity_exempt`` (options that cannot change a result) and ``declarations`` (the names of the
    class attributes by which each kind declares what it supports or needs, set by each contract:
    checked by the kits, listed by ``xalbench plugins``). An instance holds its parsed options in
    ``self.options``.
    """

    kind: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Options: ClassVar[type[Options]] = Options
    #: options that cannot change a result (caching, memory use): left out of a cell's identity
    identity_exempt: ClassVar[tuple[str, ...]] = ()
    #: the kind's capability declarations (class attributes), in display order
    declarations: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: Mapping[str, Any] | Options | None = None) -> None:
        self.options = self.Options.parse(options, owner=f"{self.kind} {self.name!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None) -> Component:
        """An instance with ``options`` validated by :meth:`Options.parse` (unknown keys are an error)."""
        return cls(options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options!r})"


# --------------------------------------------------------------------------- datasets
@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a dataset (train-pool, val or test); all tensors on the CPU."""

    images: Tensor
    labels: Tensor
    roi: Tensor | None = None
    has_roi: Tensor | None = None
    class_roi: Tensor | None = None
    annotated_slices: Tensor | None = None
    groups: np.ndarray | None = None
    label_mask: Tensor | None = None  #: multi-label ``N×K`` float in {0, 1}: 1 = known; ``None`` = all known

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        for name in ("labels", "roi", "has_roi", "class_roi", "annotated_slices", "label_mask"):
            value = getattr(self, name)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"Split.{name} has {value.shape[0]} rows, images have {n}")
        if self.label_mask is not None and tuple(self.label_mask.shape) != tuple(self.labels.shape):
            raise ValueError(f"Split.label_mask has shape {tuple(self.label_mask.shape)}, labels have "
                             f"{tuple(self.labels.shape)} (one flag per label)")
        if self.roi is not None and self.has_roi is None:
            object.__setattr__(self, "has_roi", self.roi.flatten(1).amax(1) > 0)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: np.ndarray | Sequence[int] | Tensor) -> Split:
        """The rows ``index`` of every tensor (and of ``groups``), in that order."""
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64))

        def take(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[idx]

        return Split(
            images=self.images[idx],
            labels=self.labels[idx],
            roi=take(self.roi),
            has_roi=take(self.has_roi),
            class_roi=take(self.class_roi),
            annotated_slices=take(self.annotated_slices),
            groups=None if self.groups is None else self.groups[np.asarray(index, dtype=np.int64)],
            label_mask=take(self.label_mask),
        )

    def fingerprint(self) -> str:
        """SHA-256 over images, labels, ROIs and the label mask when there is one (stable across runs
        on any machine; a split without a label mask hashes as before masks existed)."""
        h = hashlib.sha256()
        for t in (self.images, self.labels, self.roi, self.label_mask):
            if t is not None:
                arr = t.detach().cpu().contiguous().numpy()
                h.update(str(arr.shape).encode())
                h.update(str(arr.dtype).encode())
                h.update(arr.tobytes())
        return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class DatasetMeta:
    """What a dataset is: task, classes, modality, dims, provenance."""

    name: str
    task: Task
    class_names: tuple[str, ...]
    in_channels: int
    spatial_dims: int
    image_shape: tuple[int, ...]
    modality: str = "unknown"
    license: str = "unknown"
    source: str = ""
    synthetic: bool = True
    has_roi: bool = False
    notes: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclasses.dataclass(frozen=True)
class DatasetBundle:
    """A loaded dataset: metadata plus fixed train-pool / val / test splits."""

    meta: DatasetMeta
    train: Split
    val: Split
    test: Split

    def split_hash(self) -> str:
        """SHA-256 over the three splits' fingerprints: part of every cell's identity."""
        h = hashlib.sha256()
        for split in (self.train, self.val, self.test):
            h.update(split.fingerprint().encode())
        return h.hexdigest()


class Dataset(Component, abc.ABC):
    """Loads fixed splits. ``load`` must be deterministic given options (and files)."""

    kind: ClassVar[str] = "dataset"
    declarations: ClassVar[tuple[str, ...]] = ("synthetic",)
    synthetic: ClassVar[bool] = True

    @abc.abstractmethod
    def load(self, data_root: str | None = None) -> DatasetBundle:
        """Return the dataset's splits; raise ``DataNotFoundError`` if files are missing."""

    def available(self, data_root: str | None = None) -> bool:
        """Whether ``load`` can succeed without downloading (embedded data: always)."""
        return True


# --------------------------------------------------------------------------- models
class ExplainableNet(nn.Module):
    """A classifier split at its explanation layer: ``logits = head(features(x))``.

    ``features`` returns the explanation layer's activations ``B×C'×(d×)h×w`` (last conv
    block); ``embed`` pools them to the penultimate vector; ``classifier`` is the final
    ``nn.Linear``. Explainers, the pool cache and CAM-based losses use these three, so
    they need no per-architecture code. ``dropout`` sits between ``embed`` and
    ``classifier`` (MC-dropout strategies switch only it to train mode).
    """

    spatial_dims: int = 2

    def __init__(self) -> None:
        super().__init__()
        self.dropout: nn.Module = nn.Identity()
        self.classifier: nn.Linear

    @abc.abstractmethod
    def features(self, x: Tensor) -> Tensor:
        """The explanation layer's activations ``B×C'×(d×)h×w`` for images ``x``."""

    def embed(self, a: Tensor) -> Tensor:
        """Global average pool of the explanation-layer activations → ``B×C'``."""
        return a.flatten(2).mean(-1)

    def head(self, a: Tensor) -> Tensor:
        """Logits ``B×K`` from explanation-layer activations: ``classifier(dropout(embed(a)))``."""
        return self.classifier(self.dropout(self.embed(a)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class Model(Component, abc.ABC):
    """Factory of :class:`ExplainableNet` for a dataset's shape."""

    kind: ClassVar[str] = "model"
    declarations: ClassVar[tuple[str, ...]] = ("supports_3d",)
    supports_3d: ClassVar[bool] = False

    @abc.abstractmethod
    def build(self, in_channels: int, num_classes: int, spatial_dims: int = 2) -> ExplainableNet:
        """A freshly initialised network for images with ``in_channels`` channels, ``num_classes``
        outputs and ``spatial_dims`` (2 or 3) spatial dimensions. The harness calls it under the cell's
        seed, so initialise with torch's global generator."""


# --------------------------------------------------------------------------- explainers
class Explainer(Component, abc.ABC):
    """Saliency maps for one target per sample, or for all classes.

    ``differentiable`` explainers may be used inside losses (``create_graph=True``);
    the others are for scoring only and return detached maps.
    """

    kind: ClassVar[str] = "explainer"
    declarations: ClassVar[tuple[str, ...]] = ("differentiable", "supports_3d", "from_features")
    differentiable: ClassVar[bool] = False
    supports_3d: ClassVar[bool] = True

    @abc.abstractmethod
    def explain(
        self,
        model: ExplainableNet,
        images: Tensor,
        targets: Tensor | None = None,
        *,
        all_classes: bool = False,
        create_graph: bool = False,
    ) -> Tensor:
        """Maps ``B×(D×)H×W`` for ``targets`` (``None`` → predicted class), or ``B×K×…``."""

    #: True if :meth:`explain_from_features` works: the pool cache then reuses the cached
    #: explanation-layer activations (one forward per round, head-only backward).
    from_features: ClassVar[bool] = False

    def explain_from_features(
        self,
        model: ExplainableNet,
        features: Tensor,
        targets: Tensor | None = None,
        *,
        all_classes: bool = False,
        output_shape: tuple[int, ...] | None = None,
    ) -> Tensor:
        """Same maps as :meth:`explain`, from cached activations ``features`` (no grad)."""
        raise NotImplementedError(f"explainer {self.name!r} cannot work from cached features")


# --------------------------------------------------------------------------- losses
@dataclasses.dataclass
class Batch:
    """A training batch as the harness gives it to a loss (all on the model's device).

    ``roi``/``has_roi`` only carry masks that were revealed under the protocol's mask
    budget; ``has_roi[i]`` is False for samples whose mask is hidden or absent. On 3D data with
    sparse annotations, ``roi`` is zero on slices an expert did not draw (``annotated_slices``
    says which were drawn), so every loss sees the same sparse supervision. ``index`` are the
    batch rows' positions in the round's labelled set (``RoundInfo.labelled``; their pool
    indices are ``RoundInfo.index[batch.index]``).
    """

    images: Tensor
    labels: Tensor
    task: Task
    roi: Tensor | None = None
    has_roi: Tensor | None = None
    class_roi: Tensor | None = None
    annotated_slices: Tensor | None = None
    index: Tensor | None = None
    label_mask: Tensor | None = None  #: multi-label ``N×K``: 1 = label known (in the loss), 0 = left out


@dataclasses.dataclass
class LossOutput:
    """``total`` is minimised; ``terms`` are logged (floats, detached)."""

    total: Tensor
    terms: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RoundInfo:
    """What a loss may know at round start (no test data, no unlabelled pool labels).

    ``labelled`` is the round's labelled set as a :class:`Split` (acquisition order) whose
    ``roi``/``has_roi``/``class_roi``/``annotated_slices`` carry only the masks revealed
    under the protocol's mask budget (zero and ``has_roi`` False elsewhere), so a stateful
    loss can fit auxiliary models (e.g. DUE's slice interpolator) at round start; ``index``
    are their pool indices. ``None`` when the harness has no labelled set to give (tests).
    """

    round_index: int
    n_labelled: int
    labelled_fraction: float
    seed: int
    task: Task
    num_classes: int
    spatial_dims: int
    labelled: Split | None = None
    index: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Equivalence:
    """A component that equals another one by construction on some datasets: training with it is
    bit for bit training with ``name`` built with ``options`` (complete, as its ``Options.to_dict()``).
    ``reason`` is one line for the report (why the two cannot differ there)."""

    name: str
    options: Mapping[str, Any]
    reason: str


class Loss(Component, abc.ABC):
    """The training objective for one batch: CE alone or CE + explanation term.

    Declare what it needs: ``needs_masks`` (the harness skips it on data without ROI masks),
    ``supports_multilabel``, ``supports_3d`` and ``supports_2d`` (skipped with that reason where false).
    """

    kind: ClassVar[str] = "loss"
    declarations: ClassVar[tuple[str, ...]] = ("needs_masks", "supports_multilabel", "supports_3d", "supports_2d")
    needs_masks: ClassVar[bool] = False
    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True
    supports_2d: ClassVar[bool] = True

    def on_round_start(self, info: RoundInfo) -> None:
        """Hook for stateful losses (auxiliary models, imputed masks); default: nothing."""

    def equivalent_on(self, meta: DatasetMeta) -> Equivalence | None:
        """The loss this one reduces to on datasets like ``meta`` (same batches → same gradients, bit for
        bit, and no random numbers drawn that the other does not draw), or ``None`` (default: none). A
        planner may then list this loss as n/a there, naming the other, or share the other's cell."""
        return None

    @abc.abstractmethod
    def __call__(self, model: ExplainableNet, batch: Batch) -> LossOutput:
        """The batch's loss: ``total`` to minimise (the harness calls ``backward``) and logged ``terms``.
        A batch without usable masks (``roi`` absent or every ``has_roi`` False) must give exactly
        the ``ce`` loss, value and gradients."""


# --------------------------------------------------------------------------- strategies
@runtime_checkable
class PoolCacheView(Protocol):
    """Per-round quantities over the **unlabelled** pool, computed once and shared (rows
    aligned with ``ctx.unlabelled``; tensors on ``ctx.device``)."""

    def features(self) -> Tensor:
        """Explanation-layer activations ``U×C'×(d×)h×w``."""

    def logits(self) -> Tensor:
        """Model outputs ``U×K``."""

    def probs(self) -> Tensor:
        """Softmax (multi-class) or sigmoid (multi-label) of the logits, ``U×K``."""

    def embeddings(self) -> Tensor:
        """Penultimate features ``U×d``."""

    def predictions(self) -> Tensor:
        """Predicted class ``U`` (multi-label: ``U×K`` in {0, 1})."""

    def saliency(self, target: str = "pred") -> Tensor:
        """Maps of the predicted class ``U×(D×)H×W`` (``"pred"``) or of every class ``U×K×…`` (``"all"``)."""

    def mc_probs(self, n_samples: int = 20) -> Tensor:
        """MC-dropout probabilities ``T×U×K`` (head dropout on cached embeddings, seeded)."""


@runtime_checkable
class StrategyContext(Protocol):
    """Everything a strategy may read in one round (pool coordinates throughout).

    The harness builds it in the strategy's own sandbox process from what the contract
    allows — pool labels, hidden pool masks, the test split and the oracle do not exist
    there. Pool masks (``pool_roi``, ``pool_has_roi``, ``pool_annotated_slices``) are
    readable only when ``pool_masks_visible`` (a track that shows expert ROIs for the
    pool); elsewhere reading them raises ``InformationAccessError``.
    """

    model: ExplainableNet
    pool_images: Tensor
    n_pool: int
    labelled: np.ndarray
    unlabelled: np.ndarray
    labelled_labels: Tensor
    labelled_roi: Tensor | None
    labelled_has_roi: Tensor | None
    val: Split
    task: Task
    num_classes: int
    spatial_dims: int
    rng: np.random.Generator
    device: torch.device
    round_index: int
    seed: int
    explainer: Explainer | None
    batch_size: int
    cache: PoolCacheView

    @property
    def unlabelled_images(self) -> Tensor: ...

    @property
    def pool_masks_visible(self) -> bool: ...

    @property
    def pool_roi(self) -> Tensor: ...

    @property
    def pool_has_roi(self) -> Tensor: ...

    @property
    def pool_annotated_slices(self) -> Tensor | None: ...


class Strategy(Component, abc.ABC):
    """Chooses ``k`` distinct unlabelled pool indices from a read-only :class:`StrategyContext`.

    Most strategies only score: implement :meth:`scores` (one finite number per unlabelled
    sample, higher = query first) and the default :meth:`query` takes the top ``k`` (ties →
    lower pool index); the harness logs each round's top-k scores. Strategies that select
    otherwise (batch-aware, random) override :meth:`query` and may return ``None`` from
    :meth:`scores`.

    Indices are *pool coordinates* (rows of ``ctx.pool_images``) and must come from
    ``ctx.unlabelled``. Use ``ctx.cache`` for logits/embeddings/saliency (computed once
    per round and shared) and ``ctx.rng`` for randomness. Declare what you need:
    ``requires_pool_masks`` (harness skips you where the track hides pool masks),
    ``supports_multilabel`` and ``supports_3d`` (harness skips you with that reason).
    """

    kind: ClassVar[str] = "strategy"
    declarations: ClassVar[tuple[str, ...]] = ("supports_multilabel", "supports_3d", "requires_pool_masks")
    requires_pool_masks: ClassVar[bool] = False
    supports_multilabel: ClassVar[bool] = False
    supports_3d: ClassVar[bool] = True

    def scores(self, ctx: StrategyContext) -> np.ndarray | Tensor | None:
        """Per-sample acquisition scores aligned with ``ctx.unlabelled`` (higher = more informative),
        or ``None`` for strategies that do not rank by a score."""
        return None

    @classmethod
    def reads(cls, options: Options) -> tuple[str, ...]:
        """Files or folders outside the installed code that this strategy reads, as absolute paths
        (e.g. its own weight file, named by an option): a confined sandbox grants exactly these,
        read-only, and nothing else. Called with the parsed options before any data exists; default
        none."""
        return ()

    def query(self, ctx: StrategyContext, k: int) -> Sequence[int] | np.ndarray:
        """``min(k, |unlabelled|)`` pool indices; default: the top ``k`` of :meth:`scores`
        (:func:`~xalbench.selection.topk_by_score`: NaN refused, ties to the lower pool index)."""
        scores = self.scores(ctx)
        if scores is None:
            raise NotImplementedError(f"strategy {self.name!r} implements neither scores() nor query()")
        return topk_by_score(scores, ctx, k, who=f"strategy {self.name!r}")

    @classmethod
    def selects_by_scores(cls) -> bool:
        """Whether the default :meth:`query` applies (the class ranks by :meth:`scores` only): then the
        harness calls :meth:`scores` itself, takes the top ``k`` and logs the chosen scores."""
        return cls.query is Strategy.query


def strategy_skip_reason(strategy_cls: Any, *, task: str, spatial_dims: int, pool_masks_visible: bool) -> str | None:
    """``None`` if the strategy can run in this setting, else why the harness skips it (from its
    declarations ``supports_multilabel``, ``supports_3d`` and ``requires_pool_masks``)."""
    name = getattr(strategy_cls, "name", getattr(strategy_cls, "__name__", "strategy"))
    if task == "multi-label" and not getattr(strategy_cls, "supports_multilabel", False):
        return f"strategy {name!r} does not support multi-label datasets (supports_multilabel = False)"
    if spatial_dims == 3 and not getattr(strategy_cls, "supports_3d", True):
        return f"strategy {name!r} does not support 3D volumes (supports_3d = False)"
    if getattr(strategy_cls, "requires_pool_masks", False) and not pool_masks_visible:
        return (
            f"strategy {name!r} needs pool ROI masks, which this suite's track hides "
            "(run it on a track with pool_masks = 'visible' or 'as-needed')"
        )
    return None
