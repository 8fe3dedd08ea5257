"""The explorer's input images: bundled samples, one served folder, and uploads.

Images are addressed by short ids (``s3``, ``f12``, ``u7``), never by paths: no request can name a file.
The folder is listed once at start; each file is checked to lie inside the folder (a symlink pointing
outside is dropped, and re-checked when read). Uploads are decoded from memory-backed temporary files
with the same size check as every other image (:func:`convscope.data.read_image`), and only the
newest ``max_uploads`` are kept.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import tempfile
import threading
import warnings
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from convscope.data import InputSpec, PreparedImage, Preprocess, folder_images, prepare_image, read_image
from convscope.errors import InputError
from convscope.present.web.cache import LRUCache
from convscope.render import encode_png

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOADS = 256
DEFAULT_MAX_FOLDER_IMAGES = 2000


class ImageNotFound(InputError):
    """No image has the requested id (never loaded, or an upload that was dropped)."""


class UploadTooLarge(InputError):
    """An upload is over the byte limit."""


@dataclass(frozen=True, eq=False)
class ImageEntry:
    """One image of the gallery.

    Attributes:
        id: Short id used in URLs.
        name: Display name (file name or ``digit 3``).
        source: ``"sample"``, ``"folder"`` or ``"upload"``.
        label: True class when known (bundled samples), else ``None``.
        path: The file, for folder images (decoded lazily).
        prepared: The model input and display picture, for samples and uploads.
    """

    id: str
    name: str
    source: str
    label: int | None = None
    path: Path | None = None
    prepared: PreparedImage | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON for the page (no path)."""
        return {"id": self.id, "name": self.name, "source": self.source, "label": self.label}


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve(strict=True).is_relative_to(root)
    except OSError:
        return False


class Gallery:
    """The images the explorer can show, thread-safe.

    Args:
        spec: The model's input spec (images are converted to it).
        preprocess: How image files become model input.
        max_pixels: Refuse images with more pixels (checked from the header, before decoding).
        max_uploads: Keep at most this many uploads (the oldest is dropped first).
    """

    def __init__(self, spec: InputSpec, preprocess: Preprocess | None = None, *,
                 max_pixels: int = 25_000_000, max_uploads: int = DEFAULT_MAX_UPLOADS) -> None:
        self.spec = spec
        self.preprocess = preprocess or Preprocess()
        self.max_pixels = int(max_pixels)
        self.max_uploads = int(max_uploads)
        self.root: Path | None = None
        self._entries: OrderedDict[str, ImageEntry] = OrderedDict()
        self._uploads: list[str] = []
        self._next_upload = 0
        self._lock = threading.Lock()
        self._decoded: LRUCache[str, PreparedImage] = LRUCache(
            "folder images", 256 << 20, lambda p: p.x.nbytes + p.display.nbytes)
        self._thumbs: LRUCache[str, bytes] = LRUCache("thumbnails", 32 << 20, len)

    # -- filling ------------------------------------------------------------------------------------------
    def add_arrays(self, x: np.ndarray, labels: np.ndarray | None = None, *, prefix: str = "class") -> None:
        """Add already-preprocessed samples ``(N, *spec.shape)`` (e.g. the bundled digits), named
        ``#i · <prefix> <label>``."""
        for i, row in enumerate(np.asarray(x, dtype=np.float32)):
            hwc = np.moveaxis(row, 0, -1) if self.spec.data_format == "channels_first" else row
            shown = np.clip(hwc * 255.0 + 0.5, 0, 255).astype(np.uint8) if hwc.max(initial=0) <= 1.0 else (
                np.clip(hwc, 0, 255).astype(np.uint8))
            display = np.repeat(shown, 3, axis=2) if shown.shape[2] == 1 else np.ascontiguousarray(shown[..., :3])
            label = None if labels is None else int(labels[i])
            name = f"#{i}" + ("" if label is None else f" \u00b7 {prefix} {label}")
            self._add(ImageEntry(f"s{i}", name, "sample", label, prepared=PreparedImage(row, display, ())))

    def add_pictures(self, pictures: list[tuple[str, np.ndarray]]) -> None:
        """Add named uint8 pictures ``(H, W)`` or ``(H, W, C)`` (e.g. a zoo model's sample photos), prepared
        like files: converted to the model's input and preprocessed."""
        start = sum(1 for e in self._entries.values() if e.source == "sample")
        for i, (name, pixels) in enumerate(pictures, start):
            prepared = prepare_image(pixels, self.spec, self.preprocess, label=repr(name))
            self._add(ImageEntry(f"s{i}", name, "sample", prepared=prepared))

    def add_folder(self, folder: str | Path, limit: int = DEFAULT_MAX_FOLDER_IMAGES) -> int:
        """Serve the image files directly inside ``folder``; returns how many were added.

        Raises:
            InputError: The folder does not exist, is not a folder, or holds no image.
        """
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise InputError(f"--images {str(folder)!r} is not a folder")
        self.root = root.resolve()
        listed = folder_images(root)
        files = [p for p in listed if _inside(p, self.root)]
        dropped = len(listed) - len(files)
        if dropped:
            log.warning("%d file(s) in %s point outside the folder (symlinks) and are not served", dropped, root)
        if len(files) > limit:
            log.warning("%s holds %d images; serving the first %d", root, len(files), limit)
            files = files[:limit]
        for i, path in enumerate(files):
            self._add(ImageEntry(f"f{i}", path.name, "folder", path=path))
        return len(files)

    def add_upload(self, data: bytes, filename: str) -> ImageEntry:
        """Decode and keep an uploaded image; the oldest upload is dropped beyond ``max_uploads``.

        Raises:
            InputError: Not a readable image, or over ``max_pixels`` (refused before decoding).
        """
        name = (os.path.basename(filename or "").strip() or "upload")[:80]
        prepared = self._decode_bytes(data, name)
        with self._lock:
            self._next_upload += 1
            entry = ImageEntry(f"u{self._next_upload}", name, "upload", prepared=prepared)
            self._entries[entry.id] = entry
            self._uploads.append(entry.id)
            while len(self._uploads) > self.max_uploads:
                old = self._uploads.pop(0)
                self._entries.pop(old, None)
                self._thumbs.discard(old)
        log.info("upload %s: %r -> %s", entry.id, name, prepared.x.shape)
        return entry

    def _add(self, entry: ImageEntry) -> None:
        with self._lock:
            self._entries[entry.id] = entry

    def _check_pixels(self, data: bytes, name: str) -> None:
        """Refuse (413) an upload whose header declares more than ``max_pixels``; nothing is decoded."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as im:
                    width, height = im.size
        except Image.DecompressionBombError as err:
            raise UploadTooLarge(f"{name!r} is too large to read: {err}") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error):
            return  # not an image: read_image says so in its own words
        if width * height > self.max_pixels:
            raise UploadTooLarge(f"{name!r} is {width}x{height} = {width * height:,} pixels, over the limit of "
                                 f"{self.max_pixels:,} pixels; downscale it first")

    def _decode_bytes(self, data: bytes, name: str) -> PreparedImage:
        self._check_pixels(data, name)
        fd, tmp = tempfile.mkstemp(prefix="convscope-upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            img = read_image(tmp, max_pixels=self.max_pixels)
        except InputError as err:
            raise InputError(str(err).replace(tmp, repr(name))) from None
        finally:
            os.unlink(tmp)
        return prepare_image(img, self.spec, self.preprocess, label=repr(name))

    # -- reading ------------------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        """Every image as JSON, samples and folder images first, then uploads (oldest first)."""
        with self._lock:
            return [e.to_dict() for e in self._entries.values()]

    def entry(self, image_id: str) -> ImageEntry:
        """The entry of ``image_id``.

        Raises:
            ImageNotFound: Unknown id (the message echoes it).
        """
        with self._lock:
            entry = self._entries.get(image_id)
        if entry is None:
            raise ImageNotFound(f"no image {image_id[:60]!r}; list them with GET /api/images "
                                "(uploads beyond the newest few hundred are dropped)")
        return entry

    def prepared(self, image_id: str) -> PreparedImage:
        """Model input and display picture of ``image_id`` (folder files are decoded on first use)."""
        entry = self.entry(image_id)
        if entry.prepared is not None:
            return entry.prepared
        assert entry.path is not None and self.root is not None
        path = entry.path

        def load() -> PreparedImage:
            if not _inside(path, self.root):  # replaced by a symlink since start: refuse
                raise ImageNotFound(f"image {entry.name!r} is no longer inside the served folder")
            return prepare_image(read_image(path, max_pixels=self.max_pixels), self.spec, self.preprocess,
                                 label=entry.name)

        return self._decoded.get_or_compute(image_id, load)

    def thumbnail(self, image_id: str) -> bytes:
        """PNG of what the model sees for ``image_id`` (at model resolution)."""
        return self._thumbs.get_or_compute(image_id, lambda: encode_png(self.prepared(image_id).display))
