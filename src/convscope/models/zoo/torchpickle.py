"""Reading legacy (non-zip) PyTorch ``.pth`` files with the standard library and numpy, without torch.

The legacy format (``torch.save(obj, f, _use_new_zipfile_serialization=False)``, the only format before
PyTorch 1.6) is five things written one after another into the file:

1. a pickled magic number (``0x1950A86A20F9469CFC6C``),
2. a pickled protocol version (``1001``),
3. a pickled "sys info" dict (``little_endian``, ``type_sizes``, ...),
4. the pickled object itself. Every tensor in it is a ``torch._utils._rebuild_tensor_v2(storage,
   storage_offset, size, stride, ...)`` call whose storage is a *persistent id*
   ``("storage", torch.FloatStorage, key, location, numel, view_metadata)``,
5. a pickled list of storage keys, then, for each key in that order, an 8-byte little-endian element
   count followed by the storage's raw little-endian bytes.

Tensors are strided views into their storage (``storage_offset``, ``size``, ``stride``, all in
elements), so a tensor may start anywhere in a storage and need not be contiguous (weights converted from
TensorFlow are often transposed views).

Unpickling runs with a whitelisting :class:`pickle.Unpickler`: the only globals it resolves are
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage`` types, each
mapped to a harmless stand-in defined here (torch itself is never imported). Any other global -- e.g.
``os.system`` or ``builtins.eval`` in a malicious file -- raises :class:`~convscope.errors.ModelLoadError`
before anything is called.

Example:
    >>> weights = load_legacy_torch("efficientnet-lite0-57934424.pth")
    >>> weights["_conv_stem.weight"].shape
    (32, 3, 3, 3)
"""

from __future__ import annotations

import collections
import io
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convscope.errors import ModelLoadError

logger = logging.getLogger(__name__)

__all__ = ["STORAGE_DTYPES", "load_legacy_torch"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: ``torch.<Name>Storage`` -> numpy dtype of its elements (little-endian, as torch writes them).
#: ``BFloat16Storage`` is read as raw 16-bit words and widened to float32.
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_ALLOWED = "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.<Type>Storage"
#: What unpickling corrupt bytes can raise.
_CORRUPT = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
    OverflowError, RecursionError, MemoryError,
)  # fmt: skip


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for a ``torch.<Name>Storage`` class."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    """A storage announced by a persistent id; ``data`` is filled in once its bytes have been read."""

    key: str
    kind: _StorageType
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _StorageView:
    """A storage view (``view_metadata`` of old torch versions): ``size`` elements from ``offset``."""

    root: _Storage
    offset: int
    size: int


@dataclass(frozen=True)
class _TensorRef:
    """What ``_rebuild_tensor_v2`` returns here: where a tensor's elements live, resolved later."""

    storage: _Storage | _StorageView
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _TensorRef:
    if not isinstance(storage, (_Storage, _StorageView)):
        raise ModelLoadError(f"malformed tensor record: its storage is a {type(storage).__name__}")
    try:
        return _TensorRef(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"malformed tensor record (offset={offset!r}, size={size!r}): {exc}") from None


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a state dict needs, to inert stand-ins."""

    def __init__(self, file: io.BytesIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise ModelLoadError(
            f"refused to unpickle global {module}.{name}: only {_ALLOWED} are allowed in a weights file "
            "(anything else could run code)"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] in ("storage", b"storage")):
            raise ModelLoadError(f"unsupported persistent id {str(pid)[:80]!r}; only tensor storages are")
        _, kind, key, _location, numel, view = pid
        if not isinstance(kind, _StorageType):
            raise ModelLoadError(
                f"storage {key!r} has type {kind!r}; expected one of torch.{{{_storage_names()}}}"
            )
        key = key.decode("ascii") if isinstance(key, bytes) else str(key)
        storage = self._storages.setdefault(key, _Storage(key, kind, int(numel)))
        if view is None:
            return storage
        _view_key, offset, size = view
        return _StorageView(storage, int(offset), int(size))


def _storage_names() -> str:
    return ",".join(STORAGE_DTYPES)


def _unpickle(stream: io.BytesIO, storages: dict[str, _Storage], what: str, path: Path) -> Any:
    try:
        return _SafeUnpickler(stream, storages).load()
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    except _CORRUPT as exc:
        raise ModelLoadError(f"{path}: cannot read the {what} ({type(exc).__name__}: {exc})") from None


def _read_storages(raw: bytes, pos: int, keys: Any, storages: dict[str, _Storage], path: Path) -> None:
    """Fill ``storage.data`` for every key, reading the count + bytes records from ``pos``."""
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise ModelLoadError(f"{path}: the storage key list does not match the storages the tensors use")
    for key in keys:
        storage = storages[str(key)]
        if pos + 8 > len(raw):
            raise ModelLoadError(f"{path} is truncated: storage {key!r} is missing")
        count = int.from_bytes(raw[pos : pos + 8], "little")
        pos += 8
        if count != storage.numel:
            raise ModelLoadError(
                f"{path}: storage {key!r} holds {count} elements; its header says {storage.numel}"
            )
        nbytes = count * storage.kind.dtype.itemsize
        if pos + nbytes > len(raw):
            raise ModelLoadError(f"{path} is truncated inside storage {key!r} ({nbytes} bytes expected)")
        storage.data = np.frombuffer(raw, dtype=storage.kind.dtype, count=count, offset=pos)
        pos += nbytes
    if pos != len(raw):
        logger.debug("%s: %d trailing bytes after the last storage ignored", path, len(raw) - pos)


def _materialize(ref: _TensorRef, name: str) -> np.ndarray:
    """Copy one strided tensor out of its storage into an owned, C-contiguous native-endian array."""
    src = ref.storage
    if isinstance(src, _StorageView):
        base, kind = src.root.data, src.root.kind
        assert base is not None
        base, limit = base[src.offset : src.offset + src.size], src.size
    else:
        base, kind, limit = src.data, src.kind, src.numel
        assert base is not None
    size, stride, offset = ref.size, ref.stride, ref.offset
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise ModelLoadError(f"tensor {name!r}: bad view (offset={offset}, size={size}, stride={stride})")
    if 0 in size:
        out = np.empty(size, dtype=base.dtype)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= limit or offset >= len(base):
            raise ModelLoadError(
                f"tensor {name!r} (offset={offset}, size={size}, stride={stride}) reaches element {last} "
                f"of a storage of {limit} elements"
            )
        contiguous = tuple(int(np.prod(size[i + 1 :])) for i in range(len(size)))
        flat = base[offset:]
        if stride == contiguous:
            out = flat[: int(np.prod(size))].reshape(size).copy()
        else:
            strides = tuple(s * base.itemsize for s in stride)
            out = np.lib.stride_tricks.as_strided(flat, shape=size, strides=strides, writeable=False).copy()
    if kind.name == "BFloat16Storage":
        return (out.astype(np.uint32) << 16).view(np.float32)
    return out.astype(out.dtype.newbyteorder("="), copy=False)


def _collect(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    """Flatten nested dicts of tensors into ``out`` with dotted keys; other values are skipped."""
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, _TensorRef):
            out[name] = _materialize(value, name)
        elif isinstance(value, dict):
            _collect(value, f"{name}.", out)
        else:
            logger.debug("skipping non-tensor entry %r (%s)", name, type(value).__name__)


def load_legacy_torch(path: str | Path) -> dict[str, np.ndarray]:
    """Read the tensors of a legacy (non-zip) PyTorch file, e.g. a ``state_dict`` saved before torch 1.6.

    Args:
        path: The ``.pth``/``.pt`` file. Its top-level object must be a dict (e.g. an ``OrderedDict``
            state dict); nested dicts are flattened with dotted keys and non-tensor values are skipped.

    Returns:
        ``{name: array}`` in file order; each array is an owned, C-contiguous copy with the tensor's shape
        and dtype (``float32``, ``int64``, ...; bfloat16 is widened to ``float32``; a 0-d tensor is a
        0-d array).

    Raises:
        ModelLoadError: If the file is missing, is a zip-format (new-style) checkpoint, is not a legacy
            torch file, is truncated or inconsistent, or references any global other than
            ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and ``torch.*Storage`` (a
            pickle that could run code is refused without running it).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"no such weights file: {path}")
    raw = path.read_bytes()
    if raw[:4] == b"PK\x03\x04":
        raise ModelLoadError(
            f"{path} is a zip-format (PyTorch >= 1.6) checkpoint; only the legacy format can be read without "
            "torch. Re-save it with torch.save(obj, f, _use_new_zipfile_serialization=False)"
        )
    stream = io.BytesIO(raw)
    storages: dict[str, _Storage] = {}
    magic = _unpickle(stream, storages, "magic number", path)
    if magic != MAGIC_NUMBER:
        raise ModelLoadError(
            f"{path} is not a legacy PyTorch file (magic number {str(magic)[:40]!r}, expected "
            f"{MAGIC_NUMBER:#x}); accepted: a file written by "
            "torch.save(..., _use_new_zipfile_serialization=False)"
        )
    version = _unpickle(stream, storages, "protocol version", path)
    if version != PROTOCOL_VERSION:
        raise ModelLoadError(
            f"{path}: unsupported legacy protocol version {version!r}; expected {PROTOCOL_VERSION}"
        )
    sys_info = _unpickle(stream, storages, "sys info", path)
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        logger.debug("%s was written on a big-endian machine; storages are little-endian regardless", path)
    obj = _unpickle(stream, storages, "pickled object", path)
    keys = _unpickle(stream, storages, "storage key list", path)
    _read_storages(raw, stream.tell(), keys, storages, path)
    if isinstance(obj, _TensorRef):
        obj = {"": obj}
    if not isinstance(obj, dict):
        raise ModelLoadError(
            f"{path} holds a {type(obj).__name__}; expected a dict of tensors (a state dict)"
        )
    out: dict[str, np.ndarray] = {}
    _collect(obj, "", out)
    logger.debug("read %d tensors from %d storages in %s", len(out), len(storages), path)
    return out
