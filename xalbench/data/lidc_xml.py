"""LIDC-IDRI's XML reading files → nodule masks on the DICOM series they annotate.

Each XML file holds up to four ``readingSession`` elements (one per radiologist). A session's
``unblindedReadNodule`` (nodules ≥ 3 mm) has one ``roi`` per slice it was outlined on:
``imageSOP_UID`` and ``imageZposition`` name the slice, ``edgeMap`` gives the outline's
``xCoord``/``yCoord`` pixels, ``inclusion`` says whether the outline adds the region (``TRUE``) or
cuts it out (``FALSE``, a hole). Here each outline is filled as a polygon (its edge pixels included,
Pillow's ``ImageDraw.polygon``); a reader's mask is the union of its nodules; the consensus mask
keeps the voxels marked by at least ``consensus`` of the readers (0.5: DUE's "50 % consensus
consolidation"). Not used: nodules < 3 mm (a single centroid point, no outline) and
``nonNodule`` loci. Slices are matched by SOP Instance UID, else by the nearest z position.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from xalbench.errors import ConfigError

__all__ = ["SliceInfo", "lidc_consensus_mask", "reader_masks"]


@dataclass(frozen=True)
class SliceInfo:
    """One slice of a DICOM series, in volume order: its SOP Instance UID and z position (mm)."""

    uid: str
    z: float


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(node: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in node if _local(c.tag) == name]


def _text(node: ET.Element, name: str) -> str:
    found = _children(node, name)
    return (found[0].text or "").strip() if found else ""


def _slice_index(roi: ET.Element, slices: Sequence[SliceInfo], by_uid: dict[str, int], where: str) -> int:
    uid = _text(roi, "imageSOP_UID")
    if uid in by_uid:
        return by_uid[uid]
    z_text = _text(roi, "imageZposition")
    if not z_text or not slices:
        raise ConfigError(f"{where}: an outline names slice {uid or '(no UID)'} which is not in the image's DICOM "
                          "series; give mask_path the XML file of that series")
    z = float(z_text)
    dist = [abs(s.z - z) for s in slices]
    best = int(np.argmin(dist))
    spacing = min((abs(a.z - b.z) for a, b in zip(slices, slices[1:], strict=False) if a.z != b.z), default=1.0)
    if dist[best] > spacing / 2 + 1e-3:
        raise ConfigError(f"{where}: an outline at z = {z} mm matches no slice of the series (nearest "
                          f"{slices[best].z} mm); give mask_path the XML file of the image's series")
    return best


def _fill(points: list[tuple[float, float]], hw: tuple[int, int]) -> np.ndarray:
    img = Image.new("L", (hw[1], hw[0]), 0)
    ImageDraw.Draw(img).polygon(points, fill=1, outline=1)
    return np.asarray(img, dtype=bool)


def reader_masks(xml_path: str | Path, slices: Sequence[SliceInfo], hw: tuple[int, int]) -> list[np.ndarray]:
    """One ``D×H×W`` bool mask per reading session (the union of that reader's outlined nodules)."""
    where = f"LIDC XML {xml_path}"
    try:
        root = ET.parse(str(xml_path)).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ConfigError(f"{where} cannot be read ({exc})") from exc
    by_uid = {s.uid: i for i, s in enumerate(slices) if s.uid}
    out = []
    for session in root.iter():
        if _local(session.tag) != "readingSession":
            continue
        mask = np.zeros((len(slices), *hw), dtype=bool)
        for nodule in _children(session, "unblindedReadNodule"):
            for roi in _children(nodule, "roi"):
                points = [(float(_text(e, "xCoord")), float(_text(e, "yCoord"))) for e in _children(roi, "edgeMap")]
                if len(points) < 3:  # a nodule < 3 mm: one centroid point, no outline
                    continue
                k = _slice_index(roi, slices, by_uid, where)
                region = _fill(points, hw)
                if _text(roi, "inclusion").upper() == "FALSE":
                    mask[k] &= ~region
                else:
                    mask[k] |= region
        out.append(mask)
    if not out:
        raise ConfigError(f"{where} has no readingSession; is it a LIDC-IDRI reading file?")
    return out


def lidc_consensus_mask(xml_path: str | Path, slices: Sequence[SliceInfo], hw: tuple[int, int],
                        consensus: float = 0.5) -> np.ndarray:
    """``D×H×W`` float32 {0, 1}: voxels outlined by at least ``consensus`` of the file's readers."""
    if not 0.0 < consensus <= 1.0:
        raise ConfigError(f"LIDC consensus must lie in (0, 1], got {consensus}")
    readers = reader_masks(xml_path, slices, hw)
    votes = np.sum(readers, axis=0)
    need = max(1, math.ceil(consensus * len(readers) - 1e-9))
    return (votes >= need).astype(np.float32)
