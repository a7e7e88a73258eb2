"""Scoring-only adapters over pytorch-grad-cam (``grad-cam`` on PyPI).

``gradcam++`` (Grad-CAM++), ``xgradcam``, ``scorecam`` (2D only: the library upsamples with
``UpsamplingBilinear2d``), ``eigencam`` (class-agnostic first principal component of the
activations) and ``layercam``. Around the preamble of
:class:`~xalbench.explain.adapter.ScoringAdapter` (model wrapped in
:class:`~xalbench.explain.wrappers.MarkedNet`, eval mode with every module's ``training``
flag restored — the library calls ``model.eval()`` and never restores it — targets, [0, 1]),
each call:

* targets the wrapper's marker (the output of ``model.features``), so no per-architecture
  layer names are needed;
* passes **one** ``ClassifierOutputTarget`` per sample (the library ``zip``-truncates a
  shorter target list, silently zeroing the other samples' maps);
* runs inside ``with`` (hooks released) and returns torch tensors at input resolution on
  the model's device.

Not differentiable: the library computes maps in numpy. Use the core ``gradcam`` in losses.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from xalbench.base import ExplainableNet
from xalbench.explain.adapter import ScoringAdapter
from xalbench.explain.wrappers import MarkedNet
from xalbench.options import Options

__all__ = ["LibraryCAMExplainer", "GradCAMPlusPlusExplainer", "XGradCAMExplainer", "ScoreCAMExplainer",
           "EigenCAMExplainer", "LayerCAMExplainer"]


@contextlib.contextmanager
def _quiet_tqdm() -> Iterator[None]:
    """Silence ScoreCAM's per-batch tqdm bar (the library offers no switch)."""
    import pytorch_grad_cam.score_cam as score_cam

    original = score_cam.tqdm
    score_cam.tqdm = types.SimpleNamespace(tqdm=lambda iterable, *a, **k: iterable)  # type: ignore[assignment]
    try:
        yield
    finally:
        score_cam.tqdm = original


class LibraryCAMExplainer(ScoringAdapter):
    """Shared pytorch-grad-cam adapter; subclasses name the library class."""

    library: ClassVar[str] = "pytorch-grad-cam"
    library_class: ClassVar[str] = "GradCAM"

    @dataclass(frozen=True)
    class Options(Options):
        batch_size: int = 64  # images per library call (ScoreCAM: masked forwards per batch too)

    def _cam_class(self) -> Any:
        import pytorch_grad_cam

        return getattr(pytorch_grad_cam, self.library_class)

    def attribute(self, model: ExplainableNet, wrapped: MarkedNet, images: Tensor,
                  sets: list[Tensor]) -> list[Tensor]:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        bs = self.options.batch_size
        maps = []
        with _quiet_tqdm(), self._cam_class()(model=wrapped, target_layers=[wrapped.marker]) as cam:
            if hasattr(cam, "batch_size"):
                cam.batch_size = bs
            for tset in sets:
                parts = []
                for s in range(0, images.shape[0], bs):
                    out = cam(input_tensor=images[s : s + bs],
                              targets=[ClassifierOutputTarget(int(c)) for c in tset[s : s + bs].tolist()])
                    parts.append(torch.from_numpy(out.copy()))
                maps.append(torch.cat(parts).to(device=images.device, dtype=torch.float32))
        return maps


class GradCAMPlusPlusExplainer(LibraryCAMExplainer):
    """Grad-CAM++ via pytorch-grad-cam (2D and 3D)."""

    name: ClassVar[str] = "gradcam++"
    summary: ClassVar[str] = "Grad-CAM++ (pytorch-grad-cam adapter); scoring only, 2D/3D"
    paper: ClassVar[str] = "Chattopadhay et al., Grad-CAM++, WACV 2018"
    library_class: ClassVar[str] = "GradCAMPlusPlus"


class XGradCAMExplainer(LibraryCAMExplainer):
    """XGrad-CAM via pytorch-grad-cam (2D and 3D)."""

    name: ClassVar[str] = "xgradcam"
    summary: ClassVar[str] = "XGrad-CAM (pytorch-grad-cam adapter); scoring only, 2D/3D"
    paper: ClassVar[str] = "Fu et al., Axiom-based Grad-CAM, BMVC 2020"
    library_class: ClassVar[str] = "XGradCAM"


class ScoreCAMExplainer(LibraryCAMExplainer):
    """Score-CAM via pytorch-grad-cam: one masked forward per channel; 2D only (slow)."""

    name: ClassVar[str] = "scorecam"
    summary: ClassVar[str] = "Score-CAM (pytorch-grad-cam adapter); scoring only, 2D only, C forwards per image"
    paper: ClassVar[str] = "Wang et al., Score-CAM, CVPR Workshops 2020"
    library_class: ClassVar[str] = "ScoreCAM"
    supports_3d: ClassVar[bool] = False


class EigenCAMExplainer(LibraryCAMExplainer):
    """Eigen-CAM via pytorch-grad-cam: first principal component of the activations (class-agnostic)."""

    name: ClassVar[str] = "eigencam"
    summary: ClassVar[str] = "Eigen-CAM (pytorch-grad-cam adapter); class-agnostic, scoring only, 2D/3D"
    paper: ClassVar[str] = "Muhammad & Yeasin, Eigen-CAM, IJCNN 2020"
    library_class: ClassVar[str] = "EigenCAM"


class LayerCAMExplainer(LibraryCAMExplainer):
    """Layer-CAM via pytorch-grad-cam: ReLU(gradient) ⊙ activation."""

    name: ClassVar[str] = "layercam"
    summary: ClassVar[str] = "Layer-CAM (pytorch-grad-cam adapter); scoring only, 2D/3D"
    paper: ClassVar[str] = "Jiang et al., LayerCAM, IEEE TIP 2021"
    library_class: ClassVar[str] = "LayerCAM"
