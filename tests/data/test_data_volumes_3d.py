"""``volumes-3d`` on fabricated volumes in the published forms: NIfTI image + NIfTI label volume
(Decathlon / Pancreas-CT), DICOM series + per-slice PNG masks, DICOM series + LIDC-IDRI XML outlines,
NumPy volume + NumPy mask (pylidc export). Four 8×16×16 volumes, loaded at 16×8×8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xalbench.data.lidc_xml import SliceInfo, reader_masks
from xalbench.data.volumes import Volumes3D
from xalbench.data.volumes_io import annotated_on_grid, read_mask_volume, read_volume
from xalbench.errors import ConfigError

D, H, W = 8, 16, 16
CUBE = (slice(2, 6), slice(4, 12), slice(4, 12))  # z, y, x of every volume's lesion
LIDC_NS = "http://www.nih.gov"


@pytest.fixture(autouse=True)
def _data_root(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XALBENCH_DATA", str(tmp_path_factory.getbasetemp() / "volumes-root"))


def _volume(seed: int) -> np.ndarray:
    """D×H×W intensities (CT-like units) with a bright cube and a z ramp (so slice order is visible)."""
    rng = np.random.default_rng(seed)
    vol = rng.uniform(-900, -700, (D, H, W)) + np.arange(D)[:, None, None] * 10.0
    vol[CUBE] = 200.0
    return vol.astype(np.float32)


def _cube_mask() -> np.ndarray:
    m = np.zeros((D, H, W), dtype=np.uint8)
    m[CUBE] = 1
    return m


def _write_series(folder: Path, vol: np.ndarray) -> list[str]:
    """One DICOM file per slice, named in *descending* z so the loader must sort by position."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True)
    uids = []
    for k in range(vol.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Rows, ds.Columns = vol.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.ImagePositionPatient = [0.0, 0.0, -100.0 + 2.5 * k]
        ds.InstanceNumber = vol.shape[0] - k
        ds.PixelData = (vol[k] + 1024).astype(np.uint16).tobytes()
        ds.save_as(str(folder / f"IM-{vol.shape[0] - k:04d}.dcm"), enforce_file_format=True)
        uids.append(str(ds.SOPInstanceUID))
    return uids


def _outline(uid: str, z: float, box: tuple[int, int, int, int], inclusion: str = "TRUE") -> str:
    x0, y0, x1, y1 = box
    points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    edges = "".join(f"<edgeMap><xCoord>{x}</xCoord><yCoord>{y}</yCoord></edgeMap>" for x, y in points)
    return (f"<roi><imageZposition>{z}</imageZposition><imageSOP_UID>{uid}</imageSOP_UID>"
            f"<inclusion>{inclusion}</inclusion>{edges}</roi>")


def _write_lidc_xml(path: Path, uids: list[str]) -> None:
    """Three readers: two outline the cube (x, y 4..11) on slices 2-5, one a square elsewhere on slice 1;
    a nodule < 3 mm (one point) and a hole (inclusion FALSE) outside the consensus region."""
    z = [-100.0 + 2.5 * k for k in range(D)]
    cube = "".join(_outline(uids[k], z[k], (4, 4, 11, 11)) for k in range(2, 6))
    hole = _outline(uids[2], z[2], (13, 13, 14, 14), "FALSE")
    small = (f"<unblindedReadNodule><noduleID>tiny</noduleID><roi><imageSOP_UID>{uids[6]}</imageSOP_UID>"
             "<inclusion>TRUE</inclusion><edgeMap><xCoord>1</xCoord><yCoord>1</yCoord></edgeMap></roi>"
             "</unblindedReadNodule>")
    other = _outline(uids[1], z[1], (0, 0, 3, 3))
    sessions = [f"<unblindedReadNodule><noduleID>1</noduleID>{cube}{hole}</unblindedReadNodule>",
                f"<unblindedReadNodule><noduleID>N1</noduleID>{cube}</unblindedReadNodule>{small}",
                f"<unblindedReadNodule><noduleID>a</noduleID>{other}</unblindedReadNodule>"]
    body = "".join(f"<readingSession><servicingRadiologistID>r{i}</servicingRadiologistID>{s}</readingSession>"
                   for i, s in enumerate(sessions))
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?><LidcReadMessage xmlns="{LIDC_NS}">'
                    f"<ResponseHeader><SeriesInstanceUid>1.2.3</SeriesInstanceUid></ResponseHeader>{body}"
                    "</LidcReadMessage>")


@pytest.fixture(scope="module")
def volumes(tmp_path_factory) -> Path:
    import nibabel as nib
    from PIL import Image

    root = tmp_path_factory.mktemp("volumes")
    # A: NIfTI image + NIfTI label volume (x×y×z on disk; the Decathlon's 1 = organ, 2 = tumour)
    labels = _cube_mask() * 2
    labels[0, :2, :2] = 1
    for name, arr in (("a_image.nii.gz", _volume(0)), ("a_label.nii.gz", labels)):
        nib.save(nib.Nifti1Image(np.transpose(arr, (2, 1, 0)), np.eye(4)), str(root / name))
    # B: DICOM series + per-slice PNG masks for slices 0 and 4 only
    _write_series(root / "b_series", _volume(1))
    (root / "b_masks").mkdir()
    for k in (0, 4):
        Image.fromarray(_cube_mask()[k] * 255).save(root / "b_masks" / f"slice_{k:03d}.png")
    # C: DICOM series + LIDC XML reading file
    uids = _write_series(root / "c_series", _volume(2))
    _write_lidc_xml(root / "c_series" / "069.xml", uids)  # as released: the reading file beside the slices
    # D: NumPy volume + mask (e.g. exported with pylidc), slices 0, 3 and 6 drawn
    np.save(root / "d_image.npy", _volume(3))
    np.save(root / "d_mask.npy", _cube_mask())
    (root / "manifest.csv").write_text(
        "image_path,mask_path,label,split,group_id,annotated\n"
        "a_image.nii.gz,a_label.nii.gz,lesion,train,p1,\n"
        "b_series,b_masks,lesion,train,p2,\n"
        "c_series,c_series/069.xml,nodule,val,p3,all\n"
        "d_image.npy,d_mask.npy,nodule,test,p4,0|3|6\n")
    return root


def _load(volumes: Path, **options) -> object:
    return Volumes3D({"path": str(volumes / "manifest.csv"), "depth": 16, "size": 8, **options}).load()


def test_readers_give_d_h_w_in_ascending_z(volumes) -> None:
    nifti, _ = read_volume(volumes / "a_image.nii.gz")
    assert np.array_equal(nifti, _volume(0))
    series, slices = read_volume(volumes / "b_series")
    assert np.allclose(series, _volume(1), atol=1)  # uint16 storage, rescale intercept applied
    assert [s.z for s in slices] == sorted(s.z for s in slices)
    assert np.array_equal(read_volume(volumes / "d_image.npy")[0], _volume(3))
    tumour, flags = read_mask_volume(volumes / "a_label.nii.gz", (D, H, W), None, labels=(2,))
    assert flags is None and np.array_equal(tumour, _cube_mask())
    assert read_mask_volume(volumes / "a_label.nii.gz", (D, H, W), None)[0].sum() == _cube_mask().sum() + 4
    masks, flags = read_mask_volume(volumes / "b_masks", (D, H, W), slices)
    assert flags.tolist() == [k in (0, 4) for k in range(D)] and np.array_equal(masks[4], _cube_mask()[4])


def test_lidc_outlines_fill_per_reader_and_keep_the_50_percent_consensus(volumes) -> None:
    _, slices = read_volume(volumes / "c_series")
    readers = reader_masks(volumes / "c_series" / "069.xml", slices, (H, W))
    assert len(readers) == 3
    assert np.array_equal(readers[1], _cube_mask().astype(bool))  # the < 3 mm point nodule is not drawn
    assert readers[2].sum() == 16 and readers[2][1, :4, :4].all()
    consensus, _ = read_mask_volume(volumes / "c_series" / "069.xml", (D, H, W), slices)
    assert np.array_equal(consensus, _cube_mask())  # ≥ 2 of 3 readers
    assert read_mask_volume(volumes / "c_series" / "069.xml", (D, H, W), slices, consensus=0.3)[0].sum() > consensus.sum()
    shifted = [SliceInfo("", s.z + 100) for s in slices]
    with pytest.raises(ConfigError, match="matches no slice"):
        reader_masks(volumes / "c_series" / "069.xml", shifted, (H, W))


def test_annotated_slices_land_on_dues_linspace_grid() -> None:
    # every original slice drawn: DUE's round(linspace(0, depth - 1, d))
    assert np.flatnonzero(annotated_on_grid(np.ones(8, bool), 16)).tolist() == \
        np.round(np.linspace(0, 15, 8)).astype(int).tolist() == [0, 2, 4, 6, 9, 11, 13, 15]
    assert annotated_on_grid(np.ones(8, bool), 8).all() and annotated_on_grid(np.ones(16, bool), 8).all()
    assert np.flatnonzero(annotated_on_grid(np.eye(8, dtype=bool)[3], 16)).tolist() == [6]


@pytest.mark.parametrize("cache", ["auto", "off"])
def test_volumes_load_with_rois_flags_and_splits(volumes, cache) -> None:
    b = _load(volumes, cache=cache, window_low=-1000.0, window_high=400.0)
    assert b.meta.spatial_dims == 3 and b.meta.image_shape == (1, 16, 8, 8) and b.meta.has_roi
    assert b.meta.class_names == ("lesion", "nodule") and b.meta.task == "multi-class"
    assert [len(s) for s in (b.train, b.val, b.test)] == [2, 1, 1]
    assert b.train.groups.tolist() == ["p1", "p2"] and b.train.labels.tolist() == [0, 0]
    every = [0, 2, 4, 6, 9, 11, 13, 15]
    flags = [np.flatnonzero(s.annotated_slices[i].numpy()).tolist() for s in (b.train, b.val, b.test)
             for i in range(len(s))]
    assert flags == [every, [0, 9], every, [0, 6, 13]]  # all; per-slice files 0, 4; all (LIDC); 0|3|6
    expected = np.zeros((16, 8, 8), dtype=np.float32)  # the cube z 2..5, y/x 4..11 on the 16×8×8 grid
    expected[4:12, 2:6, 2:6] = 1
    organ = expected.copy()
    organ[0:2, 0, 0] = 1  # A's label 1 at z 0, y/x 0..1: any non-zero label is ROI by default (mask_labels = [])
    assert torch.equal(b.train.roi[0], torch.from_numpy(organ))
    assert torch.equal(b.val.roi[0], torch.from_numpy(expected)) and torch.equal(b.test.roi[0], torch.from_numpy(expected))
    only = expected.copy()
    only[[t for t in range(16) if round(t * 7 / 15) not in (0, 4)]] = 0  # per-slice masks: slices 0 and 4 only
    assert torch.equal(b.train.roi[1], torch.from_numpy(only))
    x = b.train.images
    assert x.shape == (2, 1, 16, 8, 8) and float(x.min()) >= 0.0 and float(x.max()) == 1.0  # min-max, then resampled
    assert float(x[0, 0][expected > 0].mean()) > float(x[0, 0][expected == 0].mean()) + 0.5


def test_prepared_and_direct_loads_are_identical_and_options_validated(volumes) -> None:
    assert _load(volumes).split_hash() == _load(volumes, cache="off").split_hash()
    assert torch.equal(_load(volumes).test.annotated_slices, _load(volumes, cache="off").test.annotated_slices)
    with pytest.raises(Exception, match="window_high"):
        Volumes3D({"path": "m.csv", "window_low": 10.0, "window_high": 0.0})
    with pytest.raises(Exception, match="not found"):
        Volumes3D({"path": str(volumes / "missing.csv")}).load()


def test_crop_keeps_a_block_of_image_and_mask(volumes, tmp_path) -> None:
    csv = tmp_path / "crop.csv"
    image, mask = volumes / "d_image.npy", volumes / "d_mask.npy"
    csv.write_text("image_path,mask_path,label,split,group_id,crop\n"
                   f'{image},{mask},a,train,p1,"2:6,4:12,4:12"\n{image},,b,val,p2,\n{image},,a,test,p3,\n')
    b = Volumes3D({"path": str(csv), "depth": 4, "size": 8, "cache": "off"}).load()
    assert bool((b.train.roi[0] == 1).all())  # the block is the cube
    assert b.train.annotated_slices[0].all() and b.val.roi is not None and not bool(b.val.has_roi[0])


def test_a_due_loss_trains_on_the_loaded_volumes(volumes, tmp_path) -> None:
    """One supervised round (the whole pool labelled) of DUE's Baseline⁺ on the loaded volumes."""
    import xalbench

    suite = tmp_path / "suite.toml"
    suite.write_text(f"""
name = "volumes-smoke"
description = "volumes-3d through the harness"
seeds = [0]
strategies = ["random"]
losses = ["ce", "due-baseline-plus"]

[model]
name = "small-cnn"
options = {{ width = 4, n_blocks = 2 }}

[explainer]
name = "gradcam"

[protocol]
base = "aeig"
initial = 1.0
rounds = 0

[training]
epochs = 1
batch_size = 2

[[datasets]]
name = "volumes-3d"
options = {{ path = "{volumes / 'manifest.csv'}", depth = 16, size = 8 }}
""")
    results = xalbench.run(str(suite), out_dir=str(tmp_path / "out"), isolation="inline")
    assert [r["status"] for r in results] == ["ok", "ok"], [r.get("error") for r in results]
    due = next(r for r in results if r["cell"]["loss"] == "due-baseline-plus")
    assert due["rounds"][0]["train_terms"]["n_annotated"] > 0
