"""Reading TIFF stacks (tifffile) and NIfTI volumes (nibabel), and which reader a path needs.

Each reader checks the path first (:func:`~convscope.data.files.check_file`: a FIFO, socket or device is
never opened), then the sizes the header declares against ``max_pixels`` (one 2D image) and
``ReadOptions.max_voxels`` (the whole file), and only then decodes. DICOM lives in
:mod:`convscope.data.dicom`. The packages are optional (``pip install 'convscope[medical]'``) and imported
only when such a file is read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from convscope.data.dicom import (
    DICOM_EXTENSIONS,
    dicom_folder_files,
    dicom_shape,
    read_dicom,
    read_dicom_series,
)
from convscope.data.files import check_file, open_regular
from convscope.data.readopts import DEFAULT_MAX_VOXELS
from convscope.data.stack import Stack, check_size, from_image, require
from convscope.data.window import dtype_span, finite_span
from convscope.errors import InputError

logger = logging.getLogger(__name__)

TIFF_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff")
NIFTI_EXTENSIONS: tuple[str, ...] = (".nii", ".nii.gz")
#: Files read as stacks or volumes (a TIFF may hold one page: then it is one image).
STACK_EXTENSIONS: tuple[str, ...] = TIFF_EXTENSIONS + DICOM_EXTENSIONS + NIFTI_EXTENSIONS
_TIFF_ERRORS = (ValueError, OSError, IndexError, KeyError, TypeError, RuntimeError)


def stack_suffix(path: str | Path) -> str | None:
    """The stack extension ``path`` ends in (``".nii.gz"``, ``".dcm"``, ``".tif"``...), case-insensitive."""
    name = Path(path).name.lower()
    return next((ext for ext in sorted(STACK_EXTENSIONS, key=len, reverse=True) if name.endswith(ext)), None)


def is_stack_path(path: str | Path) -> bool:
    """True for a file name read by :func:`read_stack` (TIFF, DICOM, NIfTI)."""
    return stack_suffix(path) is not None


def is_dicom_series(folder: Path) -> bool:
    """True when ``folder`` holds DICOM files (``.dcm``) and no other images or stacks: one series."""
    return bool(dicom_folder_files(folder))


def read_stack(path: str | Path, *, max_pixels: int, max_voxels: int = DEFAULT_MAX_VOXELS) -> Stack:
    """Read a TIFF (every page), a DICOM file (every frame), a DICOM series folder or a NIfTI volume.

    Args:
        path: The file or, for a DICOM series, the folder.
        max_pixels: The most pixels of one 2D image (page, frame, slice).
        max_voxels: The most values in the whole file.

    Returns:
        The :class:`~convscope.data.stack.Stack` of values as stored (DICOM: rescaled to physical units).

    Raises:
        InputError: Not a regular file, unreadable or corrupt, over the size caps, mixed page or slice
            sizes, no pixel data, or the reading package is missing (with the install hint).
    """
    path = Path(path)
    if path.is_dir():
        return read_dicom_series(path, max_pixels=max_pixels, max_voxels=max_voxels)
    suffix = stack_suffix(path)
    if suffix in DICOM_EXTENSIONS:
        return read_dicom(path, max_pixels=max_pixels, max_voxels=max_voxels)
    if suffix in NIFTI_EXTENSIONS:
        return read_nifti(path, max_pixels=max_pixels, max_voxels=max_voxels)
    if suffix in TIFF_EXTENSIONS:
        return read_tiff(path, max_pixels=max_pixels, max_voxels=max_voxels)
    raise InputError(
        f"{path}: not a stack file; accepted: {' '.join(STACK_EXTENSIONS)} or a DICOM series folder"
    )


def stack_shape(path: str | Path) -> tuple[tuple[int, int, int, int], int]:
    """``((D, H, W, C), slice axis)`` of a stack from its header only (nothing decoded), for counting samples.

    Raises:
        InputError: The file cannot be read as its extension says (its reason in words), or the package to
            read it is missing.
    """
    path = Path(path)
    if not path.is_dir():
        check_file(path, "stack file")
    suffix = stack_suffix(path)
    if path.is_dir() or suffix in DICOM_EXTENSIONS:
        return dicom_shape(path), 0
    if suffix in NIFTI_EXTENSIONS:
        nib = require("nibabel", "NIfTI volumes")
        try:
            shape = tuple(int(d) for d in nib.load(str(path)).shape)
        except (nib.filebasedimages.ImageFileError, OSError, ValueError, EOFError) as err:
            raise InputError(f"{path} is not a readable NIfTI file (.nii/.nii.gz): {err}") from None
        while len(shape) > 3 and shape[-1] == 1:
            shape = shape[:-1]
        if len(shape) == 2:
            return (1, shape[0], shape[1], 1), 0
        return (*shape[:3], shape[3] if len(shape) > 3 else 1), 2  # type: ignore[return-value]
    tifffile = require("tifffile", "TIFF stacks and 16-bit TIFF")
    try:
        with open_regular(path) as fh, tifffile.TiffFile(fh, name=path.name) as tif:
            pages = [p for p in tif.pages if not getattr(p, "is_reduced", False)]
            first = pages[0]
            return (len(pages), int(first.imagelength), int(first.imagewidth), int(first.samplesperpixel)), 0
    except _TIFF_ERRORS as err:
        raise InputError(f"{path} is not a readable TIFF: {err}") from None


# -- TIFF ---------------------------------------------------------------------------------------------------
def _pillow_tiff(path: Path, max_pixels: int, why: str) -> Stack:
    """A one-page TIFF through Pillow (the 8-bit image path), when tifffile is missing or the page is not
    gray or RGB (palette, CMYK, YCbCr...: Pillow converts those to RGB)."""
    from convscope.data.read import read_image

    logger.info("%s: read with Pillow (%s)", path, why)
    return from_image(read_image(path, max_pixels=max_pixels), "TIFF")


def read_tiff(path: str | Path, *, max_pixels: int, max_voxels: int = DEFAULT_MAX_VOXELS) -> Stack:
    """Every page of a TIFF as ``(pages, H, W, C)`` in its stored dtype (16-bit kept), span = full scale.

    Pages must share one size (reduced-resolution pages, such as thumbnails, are skipped). Gray
    (``MINISWHITE`` inverted) and RGB pages are read with tifffile; a single page of another kind (palette,
    CMYK, YCbCr) is read with Pillow, converted to RGB. Without tifffile, a single-page TIFF is read with
    Pillow and a multi-page one is refused with the install hint.

    Raises:
        InputError: Mixed page sizes, over the caps, unreadable file, or a multi-page TIFF without tifffile.
    """
    path = Path(path)
    check_file(path, "TIFF file")
    try:
        tifffile = require("tifffile", "TIFF stacks and 16-bit TIFF")
    except InputError:
        from PIL import Image

        with open_regular(path) as fh, Image.open(fh) as im:
            frames = int(getattr(im, "n_frames", 1))
        if frames > 1:
            raise
        return _pillow_tiff(path, max_pixels, "tifffile is not installed")
    try:
        with open_regular(path) as fh, tifffile.TiffFile(fh, name=path.name) as tif:
            pages = [p for p in tif.pages if not getattr(p, "is_reduced", False)]
            if not pages:
                raise InputError(f"{path} is a TIFF without full-resolution pages")
            first = pages[0]
            photometric = int(first.photometric)
            if photometric not in (0, 1, 2):  # MINISWHITE, MINISBLACK, RGB
                if len(pages) == 1:
                    return _pillow_tiff(path, max_pixels, f"photometric {first.photometric.name}")
                raise InputError(
                    f"{path} is a TIFF stack of {first.photometric.name} pages; convscope reads stacks of "
                    "gray (MINISBLACK/MINISWHITE) or RGB pages"
                )
            for i, page in enumerate(pages):
                if page.shape != first.shape or page.dtype != first.dtype:
                    raise InputError(
                        f"{path}: TIFF pages differ in size: page 0 is {_page_size(first)}, page {i} is "
                        f"{_page_size(page)}; a stack needs pages of one size and type (split it, or "
                        "save the pages as separate files)"
                    )
            h, w = int(first.imagelength), int(first.imagewidth)
            samples = int(first.samplesperpixel)
            check_size(
                str(path),
                (len(pages), int(first.imagedepth), h, w, samples),
                plane=(h, w),
                max_pixels=max_pixels,
                max_voxels=max_voxels,
            )
            values = np.stack([_page_array(p, samples) for p in pages])
    except InputError:
        raise
    except _TIFF_ERRORS as err:
        raise InputError(f"{path} is not a readable TIFF: {err}") from None
    span = dtype_span(values.dtype) or finite_span(values)
    if photometric == 0:  # MINISWHITE: 0 is white
        values = (span[1] + span[0] - values.astype(np.float64)).astype(values.dtype)
    if values.shape[3] in (2, 4):  # gray+alpha, RGBA: alpha dropped
        values = values[..., : values.shape[3] - 1]
    notes = () if len(pages) == 1 else (f"{len(pages)} pages",)
    return Stack(np.ascontiguousarray(values), span, "TIFF", notes=notes)


def _page_size(page: object) -> str:
    shape = getattr(page, "shape", ())
    return f"{'x'.join(map(str, shape))} {getattr(page, 'dtype', '?')}"


def _page_array(page: object, samples: int) -> np.ndarray:
    """One page as ``(H, W, C)`` (samples last)."""
    arr = np.asarray(page.asarray())  # type: ignore[attr-defined]
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.ndim == 3 and arr.shape[0] == samples and arr.shape[2] != samples:  # planar (separate) samples
        return np.moveaxis(arr, 0, 2)
    if arr.ndim == 3:
        return arr
    raise InputError(f"TIFF page of shape {arr.shape} is not (H, W) or (H, W, samples)")


# -- NIfTI --------------------------------------------------------------------------------------------------
def read_nifti(path: str | Path, *, max_pixels: int, max_voxels: int = DEFAULT_MAX_VOXELS) -> Stack:
    """A NIfTI-1/2 image (``.nii`` or ``.nii.gz``) as stored: axes (i, j, k) = (D, H, W), no reorientation.

    ``scl_slope``/``scl_inter`` are applied (nibabel's array proxy). 2D images are one slice; 3D volumes
    are ``(i, j, k, 1)``; 4D images are ``(i, j, k, t)`` (a time series or vector: as channels; a 4th axis
    of size 1 is dropped). The span is ``cal_min..cal_max`` when the header sets it, else the finite
    min..max of the whole volume. 2D models slice along k (axis 2) by default.

    Raises:
        InputError: Not a NIfTI, more than 4 axes, over the caps, or nibabel missing.
    """
    path = Path(path)
    check_file(path, "NIfTI file")
    nib = require("nibabel", "NIfTI volumes")
    try:
        img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise InputError(f"{path} is not a NIfTI image (nibabel read it as {type(img).__name__})")
        shape = tuple(int(d) for d in img.shape)
    except InputError:
        raise
    except (nib.filebasedimages.ImageFileError, OSError, ValueError, EOFError) as err:
        raise InputError(f"{path} is not a readable NIfTI file (.nii/.nii.gz): {err}") from None
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if not 2 <= len(shape) <= 4:
        raise InputError(
            f"{path} is a {len(shape)}D NIfTI of shape {shape}; convscope reads 2D images, 3D volumes and "
            "4D (volume + one more axis, as channels) NIfTI"
        )
    plane = (shape[0], shape[1])
    check_size(str(path), shape, plane=plane, max_pixels=max_pixels, max_voxels=max_voxels)
    try:
        data = np.asanyarray(img.dataobj).reshape(shape)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: the NIfTI data cannot be read (truncated or corrupt?): {err}") from None
    if data.dtype.kind not in "biuf":
        raise InputError(
            f"{path}: NIfTI data of type {data.dtype} is not numbers; expected int or float voxels"
        )
    cal = (float(img.header["cal_min"]), float(img.header["cal_max"]))
    span = cal if cal[1] > cal[0] else finite_span(data)
    values = data[None, :, :, None] if data.ndim == 2 else data[..., None] if data.ndim == 3 else data
    axis = 0 if data.ndim == 2 else 2
    return Stack(np.ascontiguousarray(values), span, "NIfTI", slice_axis=axis)
