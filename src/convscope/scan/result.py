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
from convscope.render.display import dims, few, html_card, one_line, short
from convscope.scan.health import LayerHealth, layer_health, summary_dict, summary_text
from convscope.scan.layerstats import ARRAYS, LayerStats
from convscope.scan.predictions import ScanPredictions

__all__ = [
    "ARRAYS",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "LayerStats",
    "ScanResult",
    "layer_dir",
    "load_scan",
]

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
        predictions: Each image's top-1 class from the same forward pass (models whose output is a class
            vector), or ``None``.
    """

    manifest: dict[str, Any]
    layers: dict[str, LayerStats] = field(default_factory=dict)
    path: Path | None = None
    predictions: ScanPredictions | None = None

    def __getitem__(self, key: str) -> LayerStats:
        try:
            return self.layers[key]
        except KeyError:
            raise LayerNotFound(
                f"no layer {key!r} in this scan; scanned: {', '.join(self.layers)} "
                f"(nearest: {', '.join(nearest(key, list(self.layers)))})"
            ) from None

    @property
    def images(self) -> int:
        """Number of images scanned."""
        return int(self.manifest["dataset"]["size"])

    def health(self, **thresholds: float) -> dict[str, LayerHealth]:
        """Per-layer health (see :func:`convscope.scan.health.layer_health`), thresholds overridable."""
        return {key: layer_health(stats, **thresholds) for key, stats in self.layers.items()}

    @property
    def skipped(self) -> list[dict[str, str]]:
        """``[{"file", "reason"}]`` of the dataset's files that could not be read and were skipped."""
        return list(self.manifest.get("dataset", {}).get("skipped", []))

    def summary(self) -> dict[str, Any]:
        """The JSON summary (as written to ``summary.json``)."""
        return {**summary_dict(self.manifest, self.layers), "skipped": self.skipped}

    def summary_text(self) -> str:
        """The short text report (as written to ``summary.txt``), ending with the skipped files if any."""
        text = summary_text(self.manifest, self.layers)
        if self.predictions is not None and len(self.predictions.top1):
            counts = ", ".join(f"{label}: {n}" for label, n in self.predictions.counts(5))
            text = text.rstrip("\n") + f"\nmodel predictions (top-1, most frequent): {counts}\n"
        return text + skipped_text(self.skipped)

    def __repr__(self) -> str:
        model = self.manifest.get("model", {}).get("name", "?")
        return one_line(
            "ScanResult",
            f"model={short(model)!r}",
            f"images={self.images}",
            f"layers={few(list(self.layers))}",
            f"path={short(self.path, 60)!r}" if self.path else "",
        )

    def _repr_html_(self) -> str:
        """The scan's facts and one row per layer (shape, channels, sparsity, largest value)."""
        model = self.manifest.get("model", {}).get("name", "?")
        rows = [
            ("model", model),
            ("images", self.images),
            ("layers", len(self.layers)),
            ("folder", self.path or "in memory"),
        ]
        lines = []
        for key, st in self.layers.items():
            top = np.asarray(st.max, np.float64)
            top = top[np.isfinite(top)]
            lines.append(
                (
                    key,
                    dims(st.shape),
                    st.channels,
                    st.activation or "-",
                    f"{st.sparsity:.3g}",
                    f"{top.max():.4g}" if top.size else "-",
                )
            )
        return html_card(
            f"ScanResult {model}",
            rows,
            table=(("layer", "shape", "channels", "activation", "sparsity", "max"), lines),
        )


def skipped_text(skipped: list[dict[str, str]], shown: int = 10) -> str:
    """Lines naming the skipped files and why (the first ``shown``; all are in the manifest)."""
    if not skipped:
        return ""
    lines = [f"skipped {len(skipped)} unreadable file(s) (listed in manifest.json; --strict refuses them):"]
    lines += [f"  {item['file']}: {item['reason']}" for item in skipped[:shown]]
    if len(skipped) > shown:
        lines.append(f"  ... {len(skipped) - shown} more in manifest.json")
    return "\n".join(lines) + "\n"


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
        raise InputError(
            f"{manifest_path}: format {manifest.get('format')!r} version "
            f"{manifest.get('format_version')!r}; this convscope reads {FORMAT!r} version {FORMAT_VERSION}"
        )
    layers = {}
    for meta in manifest["layers"]:
        with np.load(root / layer_dir(meta["slug"]) / "stats.npz", allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        layers[meta["key"]] = LayerStats.from_parts(meta, arrays)
    classes = manifest.get("classes")
    predictions = ScanPredictions.load(root, tuple(classes) if classes else None)
    return ScanResult(manifest=manifest, layers=layers, path=root, predictions=predictions)
