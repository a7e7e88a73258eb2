"""Registers the built-in datasets through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench.data.decoy_digits import DecoyDigits
from xalbench.data.medmnist import MedMNIST
from xalbench.data.real import NAMED_REAL, ManifestDataset
from xalbench.data.synth_3d import SynthLesion3D
from xalbench.data.synth_cxr import SynthCXRMultilabel
from xalbench.data.synth_lesion import SynthLesion2D
from xalbench.data.volumes import Volumes3D
from xalbench.hookspecs import Register, hookimpl


@hookimpl
def register_datasets(register: Register) -> None:
    for cls in (SynthLesion2D, SynthLesion3D, SynthCXRMultilabel, DecoyDigits, MedMNIST, ManifestDataset,
                Volumes3D, *NAMED_REAL):
        register(cls)
