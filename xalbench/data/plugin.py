"""Registers the built-in datasets through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench import hookimpl
from xalbench.data.decoy_digits import DecoyDigits
from xalbench.data.synth_3d import SynthLesion3D
from xalbench.data.synth_cxr import SynthCXRMultilabel
from xalbench.data.synth_lesion import SynthLesion2D
from xalbench.hookspecs import Register


@hookimpl
def register_datasets(register: Register) -> None:
    register(SynthLesion2D)
    register(SynthLesion3D)
    register(SynthCXRMultilabel)
    register(DecoyDigits)
