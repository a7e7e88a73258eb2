"""The shared preamble of the scoring-only adapters over attribution libraries.

:class:`ScoringOnly` is the base of every one of them (these and Captum's in
:mod:`~xalbench.explain.captum_attr`): the declarations of a scoring-only explainer, and an
``explain`` that refuses (:meth:`~ScoringOnly.refuse`) ``create_graph=True`` (the maps are not
differentiable), inputs that are not ``B×C×H×W`` / ``B×C×D×H×W``, and 3D inputs when the adapter
is 2D only, before the subclass computes its maps (:meth:`~ScoringOnly.maps`).
:class:`ScoringAdapter` does everything around the library call, once for every adapter
(pytorch-grad-cam in :mod:`~xalbench.explain.gradcam_lib`, zennit in
:mod:`~xalbench.explain.lrp`):

* :meth:`~ScoringAdapter.check_model` (e.g. LRP's canonizer lookup) before any work;
* moves the images to the model's device and wraps the model in
  :class:`~xalbench.explain.wrappers.MarkedNet`, whose ``marker`` is the explanation layer;
* runs in eval mode with every module's ``training`` flag restored afterwards, and puts
  back every parameter's ``.grad`` (pytorch-grad-cam calls ``backward()`` on the model);
* turns ``targets`` into target sets: one class index per sample (validated), the
  predicted class when ``None`` (one no-grad forward), or one set per class for
  ``all_classes`` — the adapter then computes one map ``B×(D×)H×W`` per set
  (:meth:`~ScoringAdapter.attribute`, all sets in one call so the library is set up once);
* stacks the maps and normalises them to [0, 1] (:meth:`~ScoringAdapter.normalise`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from xalbench.base import ExplainableNet, Explainer
from xalbench.errors import ConfigError, UnsupportedError
from xalbench.explain.cam import check_targets
from xalbench.explain.wrappers import MarkedNet
from xalbench.utils.torch_modes import eval_mode, grads_restored

__all__ = ["ScoringAdapter", "ScoringOnly", "target_sets"]


def target_sets(model: ExplainableNet, images: Tensor, targets: Tensor | None, all_classes: bool) -> list[Tensor]:
    """One ``int64`` target per sample per set: every class (``all_classes``), the given
    ``targets`` (validated), or the predicted class (one no-grad forward in the current mode)."""
    n, k, device = images.shape[0], model.classifier.out_features, images.device
    if all_classes:
        return [torch.full((n,), c, dtype=torch.long, device=device) for c in range(k)]
    checked = check_targets(targets, n, k, device)
    if checked is None:
        with torch.no_grad():
            checked = model(images).argmax(1)
    return [checked]


class ScoringOnly(Explainer):
    """Base of the scoring-only explainers over an attribution library: their declarations, and
    :meth:`explain` refusing what none of them can serve (:meth:`refuse`) before a subclass's :meth:`maps`."""

    differentiable: ClassVar[bool] = False
    from_features: ClassVar[bool] = False
    supports_3d: ClassVar[bool] = True
    #: the library, as named in error messages
    library: ClassVar[str] = ""
    #: why the maps carry no gradient (completes "… is scoring-only")
    why_scoring_only: ClassVar[str] = "and not differentiable"

    def refuse(self, images: Tensor, create_graph: bool) -> None:
        """Raise for a call this explainer cannot serve: ``create_graph`` (no gradient flows through the
        maps), images that are not ``B×C×H×W`` / ``B×C×D×H×W``, 3D images when it is 2D only."""
        if create_graph:
            raise UnsupportedError(
                f"explainer {self.name!r} ({self.library}) is scoring-only {self.why_scoring_only}; "
                "use 'gradcam', 'hirescam' or 'cam' inside losses"
            )
        if images.dim() not in (4, 5):
            raise ConfigError(f"images must be B×C×H×W or B×C×D×H×W, got {tuple(images.shape)}")
        if images.dim() == 5 and not self.supports_3d:
            raise UnsupportedError(f"explainer {self.name!r} is 2D only in {self.library}; use 'gradcam' for 3D")

    def explain(
        self,
        model: ExplainableNet,
        images: Tensor,
        targets: Tensor | None = None,
        *,
        all_classes: bool = False,
        create_graph: bool = False,
    ) -> Tensor:
        self.refuse(images, create_graph)
        return self.maps(model, images, targets, all_classes)

    def maps(self, model: ExplainableNet, images: Tensor, targets: Tensor | None, all_classes: bool) -> Tensor:
        """:meth:`explain`'s maps, for a call :meth:`refuse` let through."""
        raise NotImplementedError


class ScoringAdapter(ScoringOnly):
    """Base of the scoring-only library adapters that explain a wrapped model; subclasses implement
    :meth:`attribute`."""

    #: ``MarkedNet(gap_module=…)``: pooling as a module (LRP composites need it)
    gap_module: ClassVar[bool] = False

    def check_model(self, model: ExplainableNet) -> None:
        """Raise :class:`UnsupportedError` for models the library cannot explain; default: accept."""

    def attribute(self, model: ExplainableNet, wrapped: MarkedNet, images: Tensor,
                  sets: list[Tensor]) -> list[Tensor]:
        """Raw maps ``B×(D×)H×W`` for each target set (one class per sample); called in eval mode."""
        raise NotImplementedError

    def normalise(self, maps: Tensor) -> Tensor:
        """Maps ``B×K×spatial`` → [0, 1]; default: clamp (the library already normalises)."""
        return maps.clamp_(0.0, 1.0)

    def maps(self, model: ExplainableNet, images: Tensor, targets: Tensor | None, all_classes: bool) -> Tensor:
        self.check_model(model)
        images = images.to(next(model.parameters()).device)
        wrapped = MarkedNet(model, gap_module=self.gap_module)
        with eval_mode(model), grads_restored(model):
            maps = self.attribute(model, wrapped, images, target_sets(model, images, targets, all_classes))
        out = self.normalise(torch.stack([m.detach() for m in maps], 1))
        return out if all_classes else out[:, 0]
