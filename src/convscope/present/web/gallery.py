"""The explorer's input images: bundled samples, one served folder, and uploads.

Images are addressed by short ids (``s3``, ``f12``, ``u7``), never by paths: no request can name a file.
The folder is listed once at start; each file is checked to lie inside the folder (a symlink pointing
outside is dropped, and re-checked when read). Uploads are decoded from memory-backed temporary files
with the same size check as every other image (:func:`convscope.data.read_image`), and only the
newest ``max_uploads`` (and at most ``max_upload_mb`` of prepared pictures) are kept.

Decoding is bounded: the pixel count is read from the header before anything is decoded, at most
``decode_slots`` images are decoded at once (50 clients uploading 24-megapixel photos do not make 50 full
decodes side by side), and an upload or folder image much larger than the model input is decoded reduced
(JPEG draft scaling, then a box filter) to a few times the model's size; for a model that takes any size,
to at most ``max_free_side`` pixels on its longer side.
"""

from __future__ import annotations

import builtins
import io
import logging
import os
import struct
import tempfile
import threading
import warnings
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from convscope.data import (
    InputSpec,
    PreparedImage,
    Preprocess,
    folder_images,
    image_to_array,
    prepare_image,
    read_image,
)
from convscope.data.medical import is_dicom_series, is_stack_path
from convscope.data.read import read_picture
from convscope.data.stack import Stack
from convscope.errors import InputError
from convscope.present.web.cache import LRUCache
from convscope.present.web.entries import (
    ImageEntry,
    ImageNotFound,
    UploadTooLarge,
    entry_bytes,
    inside_folder,
)
from convscope.present.web.memory import REDUCE_MARGIN, reduction_factor, release_memory
from convscope.present.web.stacks import SEPARATOR, StackSlices, count_slices, split_id
from convscope.render import encode_png

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOADS = 256
DEFAULT_MAX_FOLDER_IMAGES = 2000
DEFAULT_MAX_UPLOAD_MB = 128
DEFAULT_DECODE_SLOTS = 2
DEFAULT_MAX_FREE_SIDE = 1024
_BIG_DECODE = 4_000_000  # pixels: after decoding more, freed memory is handed back to the system
_REDUCIBLE = ("L", "LA", "RGB", "RGBA")


class Gallery:
    """The images the explorer can show, thread-safe.

    Args:
        spec: The model's input spec (images are converted to it).
        preprocess: How image files become model input.
        max_pixels: Refuse images with more pixels (checked from the header, before decoding).
        max_uploads: Keep at most this many uploads (the oldest is dropped first).
        max_upload_mb: Keep at most this many megabytes of prepared uploads (the oldest is dropped first).
        decode_slots: Decode at most this many images at once.
        max_free_side: For a model that takes any size: images are reduced to at most this many pixels
            on their longer side.
    """

    def __init__(
        self,
        spec: InputSpec,
        preprocess: Preprocess | None = None,
        *,
        max_pixels: int = 25_000_000,
        max_uploads: int = DEFAULT_MAX_UPLOADS,
        max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB,
        decode_slots: int = DEFAULT_DECODE_SLOTS,
        max_free_side: int = DEFAULT_MAX_FREE_SIDE,
    ) -> None:
        self.spec = spec
        self.preprocess = preprocess or Preprocess()
        self.max_pixels = int(max_pixels)
        self.max_uploads = int(max_uploads)
        self.max_upload_bytes = int(max_upload_mb) << 20
        self.max_free_side = int(max_free_side)
        self.root: Path | None = None
        self._entries: OrderedDict[str, ImageEntry] = OrderedDict()
        self._uploads: list[str] = []
        self._upload_bytes = 0
        self._slots = threading.BoundedSemaphore(max(1, int(decode_slots)))
        self._next_upload = 0
        self._lock = threading.Lock()
        self._decoded: LRUCache[str, PreparedImage] = LRUCache(
            "folder images", 256 << 20, lambda p: p.x.nbytes + p.display.nbytes
        )
        self._thumbs: LRUCache[str, bytes] = LRUCache("thumbnails", 32 << 20, len)
        self._stacks = StackSlices(spec, self.preprocess, self.max_pixels)

    # -- filling ------------------------------------------------------------------------------------------
    def add_arrays(self, x: np.ndarray, labels: np.ndarray | None = None, *, prefix: str = "class") -> None:
        """Add already-preprocessed samples ``(N, *spec.shape)`` (e.g. the bundled digits), named
        ``#i · <prefix> <label>``."""
        for i, row in enumerate(np.asarray(x, dtype=np.float32)):
            hwc = np.moveaxis(row, 0, -1) if self.spec.data_format == "channels_first" else row
            shown = (
                np.clip(hwc * 255.0 + 0.5, 0, 255).astype(np.uint8)
                if hwc.max(initial=0) <= 1.0
                else (np.clip(hwc, 0, 255).astype(np.uint8))
            )
            display = (
                np.repeat(shown, 3, axis=2) if shown.shape[2] == 1 else np.ascontiguousarray(shown[..., :3])
            )
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
        listed = [root] if is_dicom_series(root) else folder_images(root)
        files = [p for p in listed if inside_folder(p, self.root)]
        dropped = len(listed) - len(files)
        if dropped:
            log.warning(
                "%d file(s) in %s point outside the folder (symlinks) and are not served", dropped, root
            )
        if len(files) > limit:
            log.warning("%s holds %d images; serving the first %d", root, len(files), limit)
            files = files[:limit]
        added = 0
        for i, path in enumerate(files):
            slices = 0
            if path.is_dir() or is_stack_path(path):
                try:
                    slices = count_slices(path, self.spec, self.preprocess)
                except InputError as err:
                    log.warning("not served: %s", err)
                    continue
            self._add(ImageEntry(f"f{i}", path.name, "folder", path=path, slices=slices))
            added += 1
        return added

    def add_upload(self, data: bytes, filename: str) -> ImageEntry:
        """Decode and keep an uploaded image; the oldest upload is dropped beyond ``max_uploads``.

        Raises:
            InputError: Not a readable image, or over ``max_pixels`` (refused before decoding).
        """
        name = (os.path.basename(filename or "").strip() or "upload")[:80]
        stack: Stack | None = None
        prepared: PreparedImage | None = None
        with self._slots:
            if is_stack_path(name):  # TIFF stack, DICOM, NIfTI: one entry, one id per slice
                stack, slices = self._stacks.read_upload(data, name)
            else:
                prepared = self._decode_bytes(data, name)
        with self._lock:
            self._next_upload += 1
            entry = ImageEntry(
                f"u{self._next_upload}",
                name,
                "upload",
                prepared=prepared,
                slices=slices if stack is not None else 0,
                stack=stack,
            )
            size = entry_bytes(entry)
            self._entries[entry.id] = entry
            self._uploads.append(entry.id)
            self._upload_bytes += size
            while len(self._uploads) > 1 and (
                len(self._uploads) > self.max_uploads or self._upload_bytes > self.max_upload_bytes
            ):
                old = self._uploads.pop(0)
                dropped = self._entries.pop(old, None)
                self._upload_bytes -= entry_bytes(dropped)
                self._thumbs.discard(old)
        log.info("upload %s: %r (%s)", entry.id, name, stack.describe() if stack else prepared.x.shape)  # type: ignore[union-attr]
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
            raise UploadTooLarge(
                f"{name!r} is {width}x{height} = {width * height:,} pixels, over the limit of "
                f"{self.max_pixels:,} pixels; downscale it first"
            )

    def _decode_reduced(self, source: bytes | Path) -> np.ndarray | None:
        """Decode ``source`` (bytes or a file) shrunk by :func:`reduction_factor` (JPEG: at the decoder).

        ``None`` if this fast path does not apply (small image, unusual mode, over ``max_pixels``, resize
        ``"none"``, whose size check must see the real size) or fails: the caller then reads the image in
        full, with :func:`~convscope.data.read_image`'s checks and messages.
        """
        if self.preprocess.resize == "none":
            return None
        try:
            h, w = self.spec.height, self.spec.width
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                width, height = im.size
                factor = reduction_factor(width, height, (h, w), self.max_free_side)
                if factor < 2 or im.mode not in _REDUCIBLE or width * height > self.max_pixels:
                    return None
                wanted = (max(1, width // factor), max(1, height // factor))
                im.draft(None, wanted)  # JPEG: decoded at 1/2, 1/4 or 1/8 scale, at least `wanted`
                im.load()
                # the area average (a box filter: reduce() when the ratio is whole) down to `wanted`
                shrunk = im.resize(wanted, Image.Resampling.BOX) if im.size != wanted else im
                if "exif" in im.info:  # keeps the orientation that image_to_array applies
                    shrunk.info.setdefault("exif", im.info["exif"])
                return image_to_array(shrunk)
        except (
            InputError,
            OSError,
            SyntaxError,
            ValueError,
            EOFError,
            IndexError,
            TypeError,
            struct.error,
            zlib.error,
            Image.DecompressionBombError,
        ):
            return None

    def _decode_bytes(self, data: bytes, name: str) -> PreparedImage:
        self._check_pixels(data, name)
        reduced = self._decode_reduced(data)
        if reduced is not None:
            release_memory()
            return prepare_image(reduced, self.spec, self.preprocess, label=repr(name))
        fd, tmp = tempfile.mkstemp(prefix="convscope-upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            img = read_image(tmp, max_pixels=self.max_pixels)
        except InputError as err:
            raise InputError(str(err).replace(tmp, repr(name))) from None
        finally:
            os.unlink(tmp)
        prepared = prepare_image(img, self.spec, self.preprocess, label=repr(name))
        if img.shape[0] * img.shape[1] > _BIG_DECODE:
            del img
            release_memory()
        return prepared

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
        base, index = split_id(image_id)
        with self._lock:
            entry = self._entries.get(base)
        if entry is not None and index is not None and not 0 <= index < entry.slices:
            raise ImageNotFound(
                f"no image {image_id[:60]!r}: {entry.name!r} has {entry.slices} slice(s), "
                f"{base}{SEPARATOR}0 to {base}{SEPARATOR}{max(0, entry.slices - 1)}"
            )
        if entry is None:
            raise ImageNotFound(
                f"no image {image_id[:60]!r}; list them with GET /api/images "
                "(uploads beyond the newest few hundred are dropped)"
            )
        return entry

    def prepared(self, image_id: str) -> PreparedImage:
        """Model input and display picture of ``image_id`` (folder files are decoded on first use)."""
        entry = self.entry(image_id)
        if entry.prepared is not None:
            return entry.prepared
        if entry.stack is not None:
            stack = entry.stack
            return self._decoded.get_or_compute(
                image_id, lambda: self._stacks.prepared(stack, split_id(image_id)[1], entry.name)
            )
        assert entry.path is not None and self.root is not None
        path, root = entry.path, self.root

        def load() -> PreparedImage:
            if not inside_folder(path, root):  # replaced by a symlink since start: refuse
                raise ImageNotFound(f"image {entry.name!r} is no longer inside the served folder")
            if entry.slices:
                with self._slots:
                    return self._stacks.prepared(path, split_id(image_id)[1], entry.name)
            with self._slots:
                img = None if self.preprocess.read.window else self._decode_reduced(path)
                if img is None:
                    img = read_picture(path, self.preprocess.read.window, max_pixels=self.max_pixels)
                else:
                    release_memory()
                return prepare_image(img, self.spec, self.preprocess, label=entry.name)

        return self._decoded.get_or_compute(image_id, load)

    def caches(self) -> builtins.list[LRUCache[Any, Any]]:
        """The gallery's bounded caches (decoded images, thumbnails), for trimming when idle."""
        return [self._decoded, self._thumbs]

    def thumbnail(self, image_id: str) -> bytes:
        """PNG of what the model sees for ``image_id`` (at model resolution)."""
        return self._thumbs.get_or_compute(image_id, lambda: encode_png(self.prepared(image_id).display))


__all__ = [
    "REDUCE_MARGIN",
    "Gallery",
    "ImageEntry",
    "ImageNotFound",
    "UploadTooLarge",
    "reduction_factor",
    "release_memory",
]
