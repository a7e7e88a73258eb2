"""SAL's round trainers (Boyd et al., "Increasing Interpretability of Neural Networks by Approximating
Human Visual Saliency", Algorithm 1), on xalbench's trainer extension point.

* ``sal-dual`` — each round trains **M_acc** with the method's loss (CYBORG, α = 0.9: the model
  that is evaluated and selects the next queries) and **M_interp** with CYBORG α = 0.1 (the model
  whose CAMs become the masks of samples labelled after the change point C; extra model
  ``"interp"``). Both from the cell's initial weights, on the same labelled set (human masks up
  to C, AI masks after), with separate seed streams; with ``training.warm_start`` both continue
  from their previous round's weights, as the ``standard`` trainer's model does.
* ``sal-tait`` — the TAIT baseline: a saliency generator trained with CYBORG α = 0.5 while every
  labelled sample still has a human mask, then **frozen** at C (extra model ``"generator"``,
  checkpointed so a resumed cell uses the same frozen generator). With ``training.warm_start``,
  M_acc and the generator (until C) continue from their previous round's weights.

SAL-Single (AI masks from M_acc) needs no trainer of its own: the core ``standard`` trainer
with the ``model-cam`` mask source on ``"main"``. α weights the cross-entropy throughout
(``α·CE + (1 − α)·saliency``), as in the main text (the supplement's §I uses the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from xalbench.options import Options
from xalbench.training.base import TrainedModels, Trainer, TrainJob
from xalbench.training.standard import fit_one

__all__ = ["DualTrainer", "TAITTrainer"]

PAPER = "Boyd et al., Increasing Interpretability of Neural Networks by Approximating Human Visual Saliency (SAL), Alg. 1"


def _prefixed(prefix: str, terms: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}.{k}": v for k, v in terms.items()}


def _warm(job: TrainJob) -> bool:
    """Whether this round continues from the previous round's models (``training.warm_start``)."""
    return bool(getattr(job.training, "warm_start", False)) and job.previous is not None


def _start(job: TrainJob, previous: Any) -> tuple[Any, bool]:
    """(the model a round trains, whether it continues): the previous round's under warm start, else a fresh
    copy of the initial weights."""
    if _warm(job) and previous is not None:
        return previous, True
    return job.new_model(), False


class DualTrainer(Trainer):
    """M_acc (the method's loss) and M_interp (``interp_loss``, CYBORG α = 0.1) every round."""

    name: ClassVar[str] = "sal-dual"
    summary: ClassVar[str] = "SAL: M_acc (method's loss) + M_interp (CYBORG alpha 0.1) each round; M_acc is evaluated"
    paper: ClassVar[str] = PAPER
    #: M_interp is checkpointed each round, so a resumed warm-started cell continues the same model
    keeps_state: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        interp_loss: str = "cyborg"
        interp_options: dict[str, Any] = field(default_factory=lambda: {"alpha": 0.1})

    def fit(self, job: TrainJob) -> TrainedModels:
        o = self.options
        previous = job.previous
        acc, warm = _start(job, previous.main if previous is not None else None)
        terms = fit_one(job, job.loss, acc, continued=warm)
        interp, warm = _start(job, previous.extra.get("interp") if previous is not None else None)
        interp_terms = fit_one(job, job.create("loss", o.interp_loss, dict(o.interp_options)), interp, stream="interp",
                               continued=warm)
        return TrainedModels(main=acc, extra={"interp": interp}, terms={**terms, **_prefixed("interp", interp_terms)})


class TAITTrainer(Trainer):
    """M_acc (the method's loss) plus a generator trained with CYBORG α = 0.5 until the change point
    C and frozen after it."""

    name: ClassVar[str] = "sal-tait"
    summary: ClassVar[str] = "TAIT baseline: a saliency generator (CYBORG alpha 0.5) trained until the change point, then frozen"
    paper: ClassVar[str] = PAPER + "; TAIT (arXiv 2306.05527)"
    keeps_state: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        generator_loss: str = "cyborg"
        generator_options: dict[str, Any] = field(default_factory=lambda: {"alpha": 0.5})

    def fit(self, job: TrainJob) -> TrainedModels:
        o = self.options
        acc, warm = _start(job, job.previous.main if job.previous is not None else None)
        terms = fit_one(job, job.loss, acc, continued=warm)
        previous = job.previous.extra.get("generator") if job.previous is not None else None
        if job.past_change_point and previous is not None:
            return TrainedModels(main=acc, extra={"generator": previous}, terms={**terms, "generator.frozen": 1.0})
        generator, warm = _start(job, previous)
        g_terms = fit_one(job, job.create("loss", o.generator_loss, dict(o.generator_options)), generator,
                          stream="generator", continued=warm)
        return TrainedModels(main=acc, extra={"generator": generator},
                             terms={**terms, **_prefixed("generator", g_terms), "generator.frozen": 0.0})
