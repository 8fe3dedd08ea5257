"""The manifest of a results folder, scan identity, and writing the folder all-or-nothing.

A results folder is complete exactly when it has ``manifest.json``: everything is written into a hidden
staging folder next to OUT, the manifest last, and the staging folder is then renamed to OUT
(:class:`convscope.store.output.OutputFolder`). An interrupted scan leaves at most a hidden
``.OUT.partial-<pid>-*`` folder, never an OUT that looks complete, and the next write of OUT removes it.

Two scans are "the same" when their identity matches: format version, model hash, scanned layers,
dataset fingerprint and size, top-k and preprocessing. Re-running the same scan into OUT replaces it (the
result is the same); a different scan is refused unless ``force=True`` (CLI ``--force``). Whatever is
not a convscope result is never replaced, and OUT never overlaps the scanned data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from convscope.errors import OutputError
from convscope.scan.result import FORMAT, FORMAT_VERSION, MANIFEST
from convscope.store import output
from convscope.store.atomic import write_atomic

log = logging.getLogger(__name__)

IDENTITY_FIELDS = (
    "format_version",
    "model_sha256",
    "layers",
    "dataset",
    "top_k",
    "preprocess",
    "input_shape",
)


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(model: Any) -> str:
    """sha256 over every weight of an in-memory model (path, shape, dtype and bytes, in order)."""
    digest = hashlib.sha256()
    for w in model.weights:
        value = np.ascontiguousarray(np.asarray(w.numpy() if hasattr(w, "numpy") else w))
        digest.update(f"{getattr(w, 'path', w.name)}|{value.shape}|{value.dtype}\n".encode())
        digest.update(value.data)
    return digest.hexdigest()


def model_identity(ref: Any, model: Any) -> dict[str, Any]:
    """``{"source", "name", "sha256", "hash_of"}`` of the scanned model."""
    if isinstance(ref, (str, os.PathLike)):
        from convscope.models import zoo

        text = str(ref)
        if zoo.is_zoo_name(text) and not Path(text).exists():
            if zoo.is_built_in_code(text):  # built from a package's weights: hash the weights
                return {
                    "source": text,
                    "name": model.name,
                    "sha256": weights_sha256(model),
                    "hash_of": "weights",
                }
            path = zoo.zoo_path(text)
        else:
            path = Path(text)
        return {"source": text, "name": model.name, "sha256": file_sha256(path), "hash_of": "file"}
    return {
        "source": "<in-memory model>",
        "name": model.name,
        "sha256": weights_sha256(model),
        "hash_of": "weights",
    }


def versions(engine: str) -> dict[str, str]:
    """Versions of the packages that produced the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    import keras

    out = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
    }
    names = [
        "convscope",
        {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(out["keras_backend"], ""),
    ]
    if engine == "ray":
        names.append("ray")
    for name in names:
        for dist in (name, f"{name}-cpu"):
            try:
                out[name] = version(dist)
                break
            except PackageNotFoundError:
                continue
    return out


def identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """The fields that make two scans the same scan."""
    options = manifest.get("options", {})
    return {
        "format_version": manifest.get("format_version"),
        "model_sha256": manifest.get("model", {}).get("sha256"),
        "layers": [layer.get("key") for layer in manifest.get("layers", [])],
        "dataset": {k: manifest.get("dataset", {}).get(k) for k in ("fingerprint", "size")},
        "top_k": options.get("top_k"),
        "preprocess": options.get("preprocess"),
        "input_shape": options.get("input_shape"),
        "tokens": options.get("tokens"),
    }


def check_out(out: Path, new: dict[str, Any], force: bool, protected: Iterable[Any] = ()) -> bool:
    """Decide whether OUT may be written; returns True when OUT holds the same scan (it will be replaced).

    The rule of :func:`convscope.store.output.check_out` comes first (OUT never overlaps the data or the
    model; only a new or empty folder or an earlier convscope result is ever replaced, whatever ``force``
    says); then an earlier scan is replaced when it is the same scan, or a different one with ``force``.

    Raises:
        OutputError: OUT overlaps the inputs, is a file or a folder convscope did not write, or holds a
            different scan (or another command's result) and ``force`` is False.
    """
    existing = output.check_out(out, "scan", protected=protected, force=force, mode="replace")
    if existing.state != "result" or existing.command != "scan":
        if existing.state == "result":
            log.warning("replacing the convscope %s result in %s (--force)", existing.command, out)
        return False
    try:
        old = identity(json.loads((out / MANIFEST).read_text()))
    except (OSError, json.JSONDecodeError):
        old = {}
    if old == new:
        log.info("%s holds the same scan; it will be replaced by this run", out)
        return True
    if force:
        log.warning("replacing the different scan in %s (--force)", out)
        return False
    differs = [k for k in IDENTITY_FIELDS if old.get(k) != new.get(k)]
    raise OutputError(
        f"--out {out} holds a different scan (differs in: {', '.join(differs) or 'manifest'}); refusing to "
        "overwrite it: choose another --out, or pass --force to replace it"
    )


def write_manifest(stage: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest (the last file of a scan) durably."""
    data = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}, indent=1)
    write_atomic(stage / MANIFEST, data.encode(), overwrite=True, fsync=True)
