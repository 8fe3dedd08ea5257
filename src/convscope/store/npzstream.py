"""Stream activations to a ``.npz`` archive batch by batch, with bounded memory.

A ``.npz`` is a zip of ``.npy`` members, and a zip member must be written in one go. Activations come
batch by batch for all layers at once, so each layer first streams into its own temporary ``.npy`` file
(header with the final shape written up front, then raw rows appended). :meth:`NpzStream.close`
copies the members into the archive in chunks and renames it into place atomically
(:func:`convscope.store.atomic.atomic_path`); until then only a hidden partial folder exists, so an
interrupted run never leaves a half-written ``activations.npz``.
The result loads with ``np.load(path)[layer_path]`` exactly like ``np.savez`` output.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np

from convscope.store.atomic import atomic_path, partial_dir

_CHUNK = 16 << 20


class NpzStream:
    """Append rows to several named arrays, then publish them as one ``.npz``.

    Args:
        path: Destination ``.npz`` path (written only on successful :meth:`close`).
        n_rows: Total number of rows (N) every array will have.
    """

    def __init__(self, path: str | Path, n_rows: int) -> None:
        self.path = Path(path)
        self.n_rows = n_rows
        self._tmp = partial_dir(self.path)
        self._files: dict[str, tuple[Path, IO[bytes], np.dtype, tuple[int, ...]]] = {}
        self._written: dict[str, int] = {}

    def write(self, rows: slice, arrays: dict[str, np.ndarray]) -> None:
        """Write ``arrays[key]`` (shape ``(n, ...)``) as rows ``rows`` of each array; rows come in order."""
        for key, value in arrays.items():
            if key not in self._files:
                member = self._tmp / f"{len(self._files):04d}.npy"
                fh: IO[bytes] = member.open("wb")
                header = {
                    "descr": np.lib.format.dtype_to_descr(value.dtype),
                    "fortran_order": False,
                    "shape": (self.n_rows, *value.shape[1:]),
                }
                np.lib.format.write_array_header_2_0(fh, header)
                self._files[key] = (member, fh, value.dtype, value.shape[1:])
                self._written[key] = 0
            member, fh, dtype, tail = self._files[key]
            if value.shape[1:] != tail or value.dtype != dtype:
                raise ValueError(
                    f"{key}: batch shape {value.shape}/{value.dtype} differs from {tail}/{dtype}"
                )
            if rows.start != self._written[key]:
                raise ValueError(f"{key}: rows must be written in order (expected row {self._written[key]})")
            fh.write(np.ascontiguousarray(value).data)
            self._written[key] = rows.stop

    def close(self) -> Path:
        """Check every array is complete, assemble the archive and move it into place."""
        try:
            for key, (_, fh, _, _) in self._files.items():
                fh.close()
                if self._written[key] != self.n_rows:
                    raise ValueError(f"{key}: {self._written[key]} of {self.n_rows} rows written")
            with (
                atomic_path(self.path) as partial,
                zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf,
            ):
                for key, (member, _, _, _) in self._files.items():
                    with member.open("rb") as src, zf.open(f"{key}.npy", "w", force_zip64=True) as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                    member.unlink()
            return self.path
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop everything written so far (nothing appears at :attr:`path`)."""
        for _, fh, _, _ in self._files.values():
            fh.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> NpzStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
