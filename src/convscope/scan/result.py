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
from convscope.scan.predictions import ScanPredictions
from convscope.render.display import dims, few, html_card, one_line, short

FORMAT = "convscope-scan"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = ("mean", "std", "max", "frac_positive", "mean_spatial_max", "corr", "top_value", "top_index", "top_pos")


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class LayerStats:
    """Dataset-wide statistics of one layer's activation (arrays are read-only).

    Attributes:
        key: Activation key (layer path, ``@k`` for the k-th call, ``[j]`` for the j-th output).
        shape: One sample's activation shape, as the layer outputs it.
        spatial: The spatial sizes (``()`` for a vector).
        channels: Number of channels ``C``.
        images: Images scanned ``N``.
        activation: The layer's activation function name (``""`` if none/linear).
        mean: ``(C,)`` mean over all images and positions.
        std: ``(C,)`` population standard deviation over all images and positions.
        max: ``(C,)`` maximum.
        frac_positive: ``(C,)`` fraction of values ``> 0`` (0 = dead channel).
        mean_spatial_max: ``(C,)`` mean over images of the per-image spatial max.
        corr: ``(C, C)`` correlation across images of per-image channel means (NaN for constant channels).
        top_value: ``(C, k)`` the k highest per-image spatial maxima, best first (ties: lower index).
        top_index: ``(C, k)`` their global image indices.
        top_pos: ``(C, k)`` flat position of each max within the spatial grid.
        frac_saturated: ``(C,)`` fraction of values near a bound (bounded activations), else ``None``.
        top_label: ``(C, k)`` dataset labels of the top images, or ``None``.
        rf_size: Receptive-field size per spatial axis in input pixels, or ``None``.
        rf_jump: Input pixels between neighbouring positions, or ``None``.
        rf_start: Centre of position 0's field in input pixel coordinates, or ``None``.
    """

    key: str
    shape: tuple[int, ...]
    spatial: tuple[int, ...]
    channels: int
    images: int
    activation: str
    mean: np.ndarray
    std: np.ndarray
    max: np.ndarray
    frac_positive: np.ndarray
    mean_spatial_max: np.ndarray
    corr: np.ndarray
    top_value: np.ndarray
    top_index: np.ndarray
    top_pos: np.ndarray
    frac_saturated: np.ndarray | None = None
    top_label: np.ndarray | None = None
    rf_size: tuple[float, ...] | None = None
    rf_jump: tuple[float, ...] | None = None
    rf_start: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for name in (*ARRAYS, "frac_saturated", "top_label"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _frozen(value))

    @property
    def top_coords(self) -> np.ndarray:
        """int64 ``(C, k, len(spatial))``: the (row, col) (or index) of each top image's max."""
        if not self.spatial:
            return np.zeros((*self.top_pos.shape, 0), np.int64)
        return np.stack(np.unravel_index(self.top_pos, self.spatial), axis=-1).astype(np.int64)

    @property
    def sparsity(self) -> float:
        """Fraction of all values that are not positive (for ReLU layers: exactly zero)."""
        return float(1.0 - np.nanmean(self.frac_positive))

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays as saved in ``stats.npz``."""
        out = {name: np.asarray(getattr(self, name)) for name in ARRAYS}
        for name in ("frac_saturated", "top_label"):
            if getattr(self, name) is not None:
                out[name] = np.asarray(getattr(self, name))
        return out

    def meta(self) -> dict[str, Any]:
        """The JSON-able description stored in the manifest."""
        rf = None if self.rf_size is None else {"size": list(self.rf_size), "jump": list(self.rf_jump or ()),
                                                "start": list(self.rf_start or ())}
        return {"key": self.key, "shape": list(self.shape), "spatial": list(self.spatial),
                "channels": self.channels, "images": self.images, "activation": self.activation, "rf": rf}

    @classmethod
    def from_parts(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> LayerStats:
        """Rebuild from :meth:`meta` and :meth:`arrays`."""
        rf = meta.get("rf") or {}
        return cls(
            key=meta["key"], shape=tuple(meta["shape"]), spatial=tuple(meta["spatial"]), channels=int(meta["channels"]),
            images=int(meta["images"]), activation=meta.get("activation", ""),
            **{name: arrays[name] for name in ARRAYS},
            frac_saturated=arrays.get("frac_saturated"), top_label=arrays.get("top_label"),
            rf_size=tuple(rf["size"]) if rf else None, rf_jump=tuple(rf["jump"]) if rf else None,
            rf_start=tuple(rf["start"]) if rf else None,
        )

    def __repr__(self) -> str:
        return one_line("LayerStats", f"key={short(self.key)!r}", f"shape={dims(self.shape)}",
                        f"channels={self.channels}", f"images={self.images}",
                        f"activation={short(self.activation, 16)!r}", f"top_k={self.top_value.shape[-1]}",
                        f"sparsity={self.sparsity:.3g}")

    def _repr_html_(self) -> str:
        """The layer's facts and its channels (mean, std, max, fraction positive; the first 256)."""
        rows = [("key", self.key), ("shape", dims(self.shape)), ("channels", self.channels),
                ("images", self.images), ("activation", self.activation or "-"),
                ("sparsity", f"{self.sparsity:.3g}"), ("top images per channel", self.top_value.shape[-1])]
        if self.rf_size is not None:
            rows.append(("receptive field", dims(self.rf_size)))
        shown = min(self.channels, 256)
        lines = [(c, f"{self.mean[c]:.4g}", f"{self.std[c]:.4g}", f"{self.max[c]:.4g}",
                  f"{self.frac_positive[c]:.3g}") for c in range(shown)]
        note = f"first {shown} of {self.channels} channels" if shown < self.channels else ""
        return html_card(f"LayerStats {self.key}", rows,
                         table=(("channel", "mean", "std", "max", "> 0"), lines), note=note)


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
            raise LayerNotFound(f"no layer {key!r} in this scan; scanned: {', '.join(self.layers)} "
                                f"(nearest: {', '.join(nearest(key, list(self.layers)))})") from None

    @property
    def images(self) -> int:
        """Number of images scanned."""
        return int(self.manifest["dataset"]["size"])

    def health(self, **thresholds: float) -> dict[str, Any]:
        """Per-layer health (see :func:`convscope.scan.health.layer_health`), thresholds overridable."""
        from convscope.scan.health import layer_health

        return {key: layer_health(stats, **thresholds) for key, stats in self.layers.items()}

    def summary(self) -> dict[str, Any]:
        """The JSON summary (as written to ``summary.json``)."""
        from convscope.scan.health import summary_dict

        return summary_dict(self)

    def summary_text(self) -> str:
        """The short text report (as written to ``summary.txt``)."""
        from convscope.scan.health import summary_text

        text = summary_text(self)
        if self.predictions is not None and len(self.predictions.top1):
            counts = ", ".join(f"{label}: {n}" for label, n in self.predictions.counts(5))
            text = text.rstrip("\n") + f"\nmodel predictions (top-1, most frequent): {counts}\n"
        return text

    def __repr__(self) -> str:
        model = self.manifest.get("model", {}).get("name", "?")
        return one_line("ScanResult", f"model={short(model)!r}", f"images={self.images}",
                        f"layers={few(list(self.layers))}", f"path={short(self.path, 60)!r}" if self.path else "")

    def _repr_html_(self) -> str:
        """The scan's facts and one row per layer (shape, channels, sparsity, largest value)."""
        model = self.manifest.get("model", {}).get("name", "?")
        rows = [("model", model), ("images", self.images), ("layers", len(self.layers)),
                ("folder", self.path or "in memory")]
        lines = []
        for key, st in self.layers.items():
            top = np.asarray(st.max, np.float64)
            top = top[np.isfinite(top)]
            lines.append((key, dims(st.shape), st.channels, st.activation or "-", f"{st.sparsity:.3g}",
                          f"{top.max():.4g}" if top.size else "-"))
        return html_card(f"ScanResult {model}", rows,
                         table=(("layer", "shape", "channels", "activation", "sparsity", "max"), lines))


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
    classes = manifest.get("classes")
    predictions = ScanPredictions.load(root, tuple(classes) if classes else None)
    return ScanResult(manifest=manifest, layers=layers, path=root, predictions=predictions)
