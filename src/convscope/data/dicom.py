"""DICOM through pydicom: one file (every frame), or a folder that is one series ordered by position.

Stored values go through the Modality LUT to physical units: ``value * RescaleSlope + RescaleIntercept``
(a Modality LUT table, where present, through pydicom's ``apply_modality_lut``). The file's own window
(Window Center/Width, VOI LUT Function) is kept for when ``--window`` is not given; without either, the
file's (a series': all its slices') min..max is shown black..white, as viewers do. ``MONOCHROME1`` is
inverted after windowing.
Sizes are checked from the header (read without the pixel data) before any pixel is decoded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import numpy as np

from convscope.data.files import check_file, file_problem, open_regular
from convscope.data.readopts import DEFAULT_MAX_VOXELS
from convscope.data.stack import Stack, check_size, require
from convscope.data.window import WINDOW_FUNCTIONS, Window, WindowFunction, finite_span
from convscope.errors import InputError, OptionError

logger = logging.getLogger(__name__)

DICOM_EXTENSIONS: tuple[str, ...] = (".dcm", ".dicom")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_DECODE_ERRORS = (ValueError, AttributeError, NotImplementedError, RuntimeError, KeyError, TypeError, OSError)


def _read(path: Path, *, pixels: bool) -> Any:
    """``pydicom.dcmread`` of a checked regular file (header only unless ``pixels``)."""
    pydicom = require("pydicom", "DICOM files")
    check_file(path, "DICOM file")
    try:
        with open_regular(path) as fh:
            try:
                return pydicom.dcmread(fh, stop_before_pixels=not pixels)
            except pydicom.errors.InvalidDicomError:
                fh.seek(0)
                ds = pydicom.dcmread(fh, stop_before_pixels=not pixels, force=True)  # no 128-byte preamble
    except (pydicom.errors.InvalidDicomError, *_DECODE_ERRORS, EOFError) as err:
        raise InputError(f"{path} is not a readable DICOM file: {' '.join(str(err).split())}") from None
    if "SOPClassUID" not in ds and "Rows" not in ds:
        raise InputError(f"{path} is not a DICOM file (no DICOM header found)")
    return ds


def _frames(ds: Any) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


def _header_check(ds: Any, path: Path, max_pixels: int, max_voxels: int, *, pixels: bool = True) -> None:
    """Pixel data present (``pixels``: read with them); frames x rows x columns x samples within the caps."""
    if pixels and not any(k in ds for k in _PIXEL_KEYWORDS):
        what = ds.get("Modality", "") or ds.get("SOPClassUID", "")
        kind = f" ({getattr(what, 'name', what)})" if what else ""
        raise InputError(
            f"{path} is a DICOM file without pixel data{kind}; convscope reads DICOM images "
            "(CT, MR, CR, US, ... with a Pixel Data element)"
        )
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows < 1 or cols < 1:
        raise InputError(f"{path}: DICOM image of {cols}x{rows} pixels (Columns x Rows); expected both >= 1")
    shape = (_frames(ds), rows, cols, int(ds.get("SamplesPerPixel", 1) or 1))
    check_size(str(path), shape, plane=(rows, cols), max_pixels=max_pixels, max_voxels=max_voxels)


def _group_item(ds: Any, sequence: str, keyword: str) -> Any:
    """``keyword`` from ``ds``, else from the first item of ``sequence`` in the shared functional groups."""
    if keyword in ds:
        return ds
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and sequence in shared[0] and keyword in shared[0][sequence][0]:
        return shared[0][sequence][0]
    return None


def rescale(ds: Any) -> tuple[float, float]:
    """``(slope, intercept)`` of the Modality LUT (``(1, 0)`` when the file sets none)."""
    item = _group_item(ds, "PixelValueTransformationSequence", "RescaleSlope")
    if item is None:
        return 1.0, 0.0
    return float(item.RescaleSlope), float(item.get("RescaleIntercept", 0.0) or 0.0)


def own_window(ds: Any) -> Window | None:
    """The file's first window (Window Center/Width and VOI LUT Function), or ``None``."""
    item = _group_item(ds, "FrameVOILUTSequence", "WindowCenter")
    if item is None or "WindowWidth" not in item:
        return None
    center, width = item.WindowCenter, item.WindowWidth
    center = center[0] if isinstance(center, (list, tuple)) or getattr(center, "VM", 1) > 1 else center
    width = width[0] if isinstance(width, (list, tuple)) or getattr(width, "VM", 1) > 1 else width
    function = str(item.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    try:
        kind = cast("WindowFunction", function if function in WINDOW_FUNCTIONS else "LINEAR")
        return Window(float(center), float(width), kind)
    except (OptionError, TypeError, ValueError):
        logger.warning("ignoring the file's window %r,%r: not a valid window", center, width)
        return None


def _physical(ds: Any, path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    """Decoded frames ``(F, R, C, S)`` through the Modality LUT, and their span."""
    pydicom = require("pydicom", "DICOM files")
    try:
        arr = np.asarray(ds.pixel_array)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
        if photometric == "PALETTE COLOR":
            arr = pydicom.pixels.apply_color_lut(arr, ds)
    except _DECODE_ERRORS as err:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        raise InputError(
            f"{path}: the DICOM pixel data cannot be decoded (transfer syntax {getattr(syntax, 'name', syntax)}): "
            f"{' '.join(str(err).split())}; compressed syntaxes may need pylibjpeg or gdcm"
        ) from None
    samples = int(ds.get("SamplesPerPixel", 1) or 1) if photometric != "PALETTE COLOR" else 3
    frames = _frames(ds)
    arr = arr.reshape(
        frames, arr.shape[-3 if samples > 1 else -2], arr.shape[-2 if samples > 1 else -1], samples
    )
    if photometric == "PALETTE COLOR":
        return arr, (0.0, float(np.iinfo(arr.dtype).max) if arr.dtype.kind in "iu" else 1.0)
    if "ModalityLUTSequence" in ds:
        values = np.asarray(pydicom.pixels.apply_modality_lut(arr, ds))
        return values, finite_span(values)
    slope, intercept = rescale(ds)
    values = arr if (slope, intercept) == (1.0, 0.0) else arr.astype(np.float64) * slope + intercept
    return values, finite_span(values)


def read_dicom(path: str | Path, *, max_pixels: int, max_voxels: int = DEFAULT_MAX_VOXELS) -> Stack:
    """One DICOM file, every frame: ``(frames, rows, columns, samples)`` in physical units.

    Raises:
        InputError: Not DICOM, no pixel data, over the caps, undecodable pixel data, or pydicom missing.
    """
    path = Path(path)
    ds = _read(path, pixels=True)  # the file's bytes; decoding (sized by the header) comes after the check
    _header_check(ds, path, max_pixels, max_voxels)
    values, span = _physical(ds, path)
    frames = values.shape[0]
    return Stack(
        np.ascontiguousarray(values),
        span,
        "DICOM",
        window=own_window(ds),
        invert=str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1",
        notes=(f"{frames} frames",) if frames > 1 else (),
    )


def dicom_shape(path: str | Path) -> tuple[int, int, int, int]:
    """``(frames, rows, columns, samples)`` of a DICOM file or series folder, from headers only.

    Raises:
        InputError: Not DICOM, or (a file) no pixel data is declared.
    """
    path = Path(path)
    if path.is_dir():
        files = dicom_folder_files(path)
        if not files:
            raise InputError(f"folder {path} holds no .dcm files (or also holds images)")
        ds = _read(files[0], pixels=False)
        count = len(files)
    else:
        ds, count = _read(path, pixels=False), 0
    shape = (
        int(ds.get("Rows", 0) or 0),
        int(ds.get("Columns", 0) or 0),
        int(ds.get("SamplesPerPixel", 1) or 1),
    )
    return (count or _frames(ds), *shape)


def dicom_folder_files(folder: Path) -> list[Path]:
    """The ``.dcm`` files of a folder that holds DICOM files and no images or other stacks; else ``[]``."""
    from convscope.data.read import is_image_path

    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return []
    dicom = [p for p in entries if p.suffix.lower() in DICOM_EXTENSIONS and file_problem(p) is None]
    others = [p for p in entries if is_image_path(p) or p.name.lower().endswith((".nii", ".nii.gz"))]
    return sorted(dicom) if dicom and not others else []


def _position_key(ds: Any, normal: np.ndarray | None) -> float | None:
    position = ds.get("ImagePositionPatient")
    if normal is None or position is None or len(position) != 3:
        return None
    return float(np.dot(np.asarray(position, dtype=np.float64), normal))


def _normal(ds: Any) -> np.ndarray | None:
    orientation = ds.get("ImageOrientationPatient")
    if orientation is None or len(orientation) != 6:
        return None
    o = np.asarray(orientation, dtype=np.float64)
    return np.cross(o[:3], o[3:])


def series_order(headers: list[tuple[Path, Any]]) -> tuple[list[tuple[Path, Any]], str]:
    """The files of one series in slice order, and what ordered them.

    By position along the slice normal (ImagePositionPatient . (row x column of ImageOrientationPatient))
    when every file has both; else by InstanceNumber when every file has one; else by file name.
    """
    normal = _normal(headers[0][1])
    keys = [_position_key(ds, normal) for _, ds in headers]
    if all(k is not None for k in keys):
        return [
            h for _, h in sorted(zip(keys, headers), key=lambda t: (t[0], t[1][0].name))
        ], "ImagePositionPatient"
    numbers = [ds.get("InstanceNumber") for _, ds in headers]
    if all(n is not None for n in numbers):
        return [
            h for _, h in sorted(zip(numbers, headers), key=lambda t: (int(t[0]), t[1][0].name))
        ], "InstanceNumber"
    return sorted(headers, key=lambda h: h[0].name), "file name"


def read_dicom_series(folder: str | Path, *, max_pixels: int, max_voxels: int = DEFAULT_MAX_VOXELS) -> Stack:
    """A folder of single-frame ``.dcm`` files of one series as ``(slices, rows, columns, samples)``.

    Each file is rescaled with its own slope/intercept; the window is the first slice's; the span covers
    every slice's stored range.

    Raises:
        InputError: No DICOM files, several series, multi-frame members, slices of mixed sizes, a file
            without pixel data, or the whole over the caps.
    """
    folder = Path(folder)
    files = dicom_folder_files(folder)
    if not files:
        raise InputError(
            f"folder {folder} holds no .dcm files (or also holds images); a DICOM series folder holds only .dcm files"
        )
    headers = [(p, _read(p, pixels=False)) for p in files]
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in headers}
    if len(series) > 1:
        raise InputError(f"folder {folder} holds {len(series)} DICOM series; give one series per folder")
    first_path, first = headers[0]
    for p, ds in headers:
        _header_check(ds, p, max_pixels, max_voxels, pixels=False)  # pixel data: checked per file below
        size = (int(ds.Rows), int(ds.Columns), int(ds.get("SamplesPerPixel", 1) or 1), _frames(ds))
        want = (int(first.Rows), int(first.Columns), int(first.get("SamplesPerPixel", 1) or 1), 1)
        if size != want:
            raise InputError(
                f"DICOM series {folder}: {p.name} is {size[1]}x{size[0]} with {size[2]} sample(s) and {size[3]} "
                f"frame(s) but {first_path.name} is {want[1]}x{want[0]} with {want[2]} sample(s) and 1 frame; "
                "a series needs single-frame slices of one size"
            )
    rows, cols, samples = int(first.Rows), int(first.Columns), int(first.get("SamplesPerPixel", 1) or 1)
    check_size(
        str(folder),
        (len(files), rows, cols, samples),
        plane=(rows, cols),
        max_pixels=max_pixels,
        max_voxels=max_voxels,
    )
    ordered, how = series_order(headers)
    slices = [read_dicom(p, max_pixels=max_pixels, max_voxels=max_voxels) for p, _ in ordered]
    values = np.concatenate([s.values for s in slices])  # numpy promotes mixed rescales to float64
    span = (min(s.span[0] for s in slices), max(s.span[1] for s in slices))
    logger.info("%s: DICOM series of %d slices ordered by %s", folder, len(slices), how)
    return Stack(
        np.ascontiguousarray(values),
        span,
        "DICOM series",
        window=slices[0].window,
        invert=slices[0].invert,
        notes=(f"{len(slices)} slices ordered by {how}",),
    )
