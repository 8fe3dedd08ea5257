"""Scan results as data: per-layer statistics, the whole scan, and reading a results folder back.

Example:
    >>> from convscope.scan import load_scan
    >>> result = load_scan("scan-out")
    >>> conv = result["conv_1"]
    >>> conv.mean.shape, conv.top_index[12, :4], conv.top_coords[12, 0]   # (C,), best images, (row, col)
    >>> print(result.summary_text())
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convscope.errors import InputError, LayerNotFound, nearest
from convscope.scan.health import LayerHealth, layer_health, summary_dict, summary_text
from convscope.scan.layerstats import ARRAYS, LayerStats

__all__ = ["ARRAYS", "FORMAT", "FORMAT_VERSION", "MANIFEST", "LayerStats", "ScanResult", "layer_dir", "load_scan"]

FORMAT = "convscope-scan"
#: 2: ``corr`` is the pixelwise correlation over all positions (1: of per-image channel means).
FORMAT_VERSION = 2
MANIFEST = "manifest.json"


@dataclass(frozen=True, eq=False)
class ScanResult:
    """A finished scan: the manifest and the statistics of every layer.

    Attributes:
        manifest: The manifest (format version, model hash, layers, dataset, options, versions).
        layers: ``{key: LayerStats}`` in model order.
        path: The results folder, or ``None`` for a scan kept in memory.
    """

    manifest: dict[str, Any]
    layers: dict[str, LayerStats] = field(default_factory=dict)
    path: Path | None = None

    def __getitem__(self, key: str) -> LayerStats:
        try:
            return self.layers[key]
        except KeyError:
            raise LayerNotFound(f"no layer {key!r} in this scan; scanned: {', '.join(self.layers)} "
                                f"(nearest: {', '.join(nearest(key, list(self.layers)))})") from None

    @property
    def images(self) -> int:
        """Number of images scanned."""
        return int(self.manifest["dataset"]["size"])

    def health(self, **thresholds: float) -> dict[str, LayerHealth]:
        """Per-layer health (see :func:`convscope.scan.health.layer_health`), thresholds overridable."""
        return {key: layer_health(stats, **thresholds) for key, stats in self.layers.items()}

    def summary(self) -> dict[str, Any]:
        """The JSON summary (as written to ``summary.json``)."""
        return summary_dict(self.manifest, self.layers)

    def summary_text(self) -> str:
        """The short text report (as written to ``summary.txt``)."""
        return summary_text(self.manifest, self.layers)

    def __repr__(self) -> str:
        model = self.manifest.get("model", {}).get("name", "?")
        return f"ScanResult(model={model!r}, images={self.images}, layers={list(self.layers)}, path={self.path})"


def layer_dir(slug: str) -> str:
    """Folder of one layer inside a results folder."""
    return f"layers/{slug}"


def load_scan(path: str | Path) -> ScanResult:
    """Read a results folder written by :func:`convscope.scan.scan`.

    Raises:
        InputError: The folder is missing, has no manifest (not a scan, or an interrupted one), or was
            written by an unknown format version.
    """
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        what = "does not exist" if not root.exists() else f"has no {MANIFEST} (not a complete convscope scan)"
        raise InputError(f"scan folder {root} {what}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{manifest_path} is not readable JSON: {exc}") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{manifest_path}: format {manifest.get('format')!r} version "
                         f"{manifest.get('format_version')!r}; this convscope reads {FORMAT!r} version {FORMAT_VERSION}")
    layers = {}
    for meta in manifest["layers"]:
        with np.load(root / layer_dir(meta["slug"]) / "stats.npz", allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        layers[meta["key"]] = LayerStats.from_parts(meta, arrays)
    return ScanResult(manifest=manifest, layers=layers, path=root)
