"""Checking a ``.keras`` zip archive before anything in it is read: corrupt archives and zip bombs.

A zip member declares its sizes in the archive's central directory, which costs nothing to read.
Python's ``zipfile`` (used by Keras too) never returns more than a member's declared size, so checking
the declared sizes bounds what reading can cost: a 2 MB archive whose ``config.json`` would inflate to
2 GiB is refused here in milliseconds, before one byte of it is decompressed.

Keras writes every member *stored* (compression ratio 1); a re-zipped archive compresses its float
weights a little. A ratio above :data:`MAX_RATIO` on a member larger than :data:`RATIO_FLOOR_BYTES` is
a bomb, not a model. Then every member's CRC is checked by streaming it in bounded chunks (memory
flat, time bounded by the declared sizes just capped).
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from pathlib import Path

from convscope.errors import ModelLoadError

log = logging.getLogger(__name__)

CONFIG_MEMBERS = ("config.json", "metadata.json")
MAX_CONFIG_BYTES = 64 << 20  # declared size of config.json / metadata.json (a huge model's config is ~5 MB)
MAX_TOTAL_BYTES = 16 << 30  # all members together, declared (the largest CNNs are well under 2 GiB)
MAX_RATIO = 100  # declared / stored size of one member
RATIO_FLOOR_BYTES = 1 << 20  # smaller members may compress better than MAX_RATIO: they cost nothing
MAX_MEMBERS = 100_000
CHUNK_BYTES = 1 << 20


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} bytes"


def _refuse(path: Path, info: zipfile.ZipInfo, why: str) -> ModelLoadError:
    return ModelLoadError(f"refused to open {path}: archive member {info.filename!r} {why}")


def check_sizes(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive whose declared sizes or ratios exceed the caps (nothing is decompressed).

    Raises:
        ModelLoadError: A member over its cap; the message names it, its declared size and the cap.
    """
    if len(infos) > MAX_MEMBERS:
        raise ModelLoadError(
            f"refused to open {path}: the archive lists {len(infos)} members (at most "
            f"{MAX_MEMBERS} are accepted in a .keras file)"
        )
    archive_bytes = path.stat().st_size
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise _refuse(path, info, "is encrypted; a .keras archive never is")
        if info.header_offset + info.compress_size > archive_bytes:
            raise ModelLoadError(
                f"{path} is a corrupt .keras archive: member {info.filename!r} claims "
                f"{_size(info.compress_size)} past the end of the file (truncated?)"
            )
        if info.filename in CONFIG_MEMBERS and info.file_size > MAX_CONFIG_BYTES:
            raise _refuse(
                path,
                info,
                f"declares {_size(info.file_size)} uncompressed; the cap for "
                f"{info.filename} is {_size(MAX_CONFIG_BYTES)}",
            )
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise _refuse(
                path,
                info,
                f"declares {_size(info.file_size)} from {_size(info.compress_size)} stored "
                f"(ratio {ratio:.0f}x; the cap is {MAX_RATIO}x): a decompression bomb",
            )
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise _refuse(
                path,
                info,
                f"brings the declared total to {_size(total)}; the cap for a whole "
                f"archive is {_size(MAX_TOTAL_BYTES)}",
            )


def _check_crc(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Stream one member through ``zipfile`` (which checks the CRC at its end) in bounded chunks."""
    with zf.open(info) as member:
        while member.read(CHUNK_BYTES):
            pass


def check_archive(path: Path, accepted: str) -> None:
    """Validate a ``.keras`` archive: caps first (see module doc), then structure and checksums.

    Args:
        path: The archive.
        accepted: What a model file may be, for the message when this zip is not a model.

    Raises:
        ModelLoadError: Over a cap, corrupt, or not a Keras model archive.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            check_sizes(path, infos)
            if "config.json" not in {i.filename for i in infos}:
                raise ModelLoadError(
                    f"{path} is a zip archive but not a Keras model (no config.json inside); expected {accepted}"
                )
            for info in infos:
                try:
                    _check_crc(zf, info)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise ModelLoadError(
                        f"{path} is a corrupt .keras archive: member {info.filename!r} "
                        f"fails its check ({exc})"
                    ) from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as exc:
        raise ModelLoadError(f"{path} is a corrupt .keras archive ({exc})") from exc
    log.debug("archive %s: %d members checked", path, len(infos))
