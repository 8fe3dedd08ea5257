"""Dataset-wide statistics of one layer, as a scan hands them out and a results folder stores them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convscope.render.display import dims, html_card, one_line, short

#: Arrays every layer has (``corr``, ``frac_saturated`` and ``top_label`` are optional, see :class:`LayerStats`).
ARRAYS = ("mean", "std", "max", "frac_positive", "mean_spatial_max", "top_value", "top_index", "top_pos")
OPTIONAL = ("corr", "frac_saturated", "top_label")
#: What ``corr`` (and the ``r`` of a near-duplicate pair) means, as the summaries say it.
CORR_MEANING = "pixelwise Pearson correlation over all positions of the {images} scanned images"


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
        top_value: ``(C, k)`` the k highest per-image spatial maxima, best first (ties: lower index).
        top_index: ``(C, k)`` their global image indices.
        top_pos: ``(C, k)`` flat position of each max within the spatial grid.
        corr: ``(C, C)`` Pearson correlation of every pair of channels over all positions of all scanned
            images (the maps compared pixel by pixel, pooled over the dataset; NaN for a constant
            channel), or ``None`` for a layer wider than
            :data:`~convscope.scan.stats.MAX_GRAM_CHANNELS`.
        frac_saturated: ``(C,)`` fraction of values near a bound (bounded activations), else ``None``.
        top_label: ``(C, k)`` dataset labels of the top images, or ``None``.
        rf_size: Receptive-field size per spatial axis in input pixels, or ``None``.
        rf_jump: Input pixels between neighbouring positions, or ``None``.
        rf_start: Centre of position 0's field in input pixel coordinates, or ``None``.
        tokens: For a token layer ``(T, C)`` scanned as ``h x w`` maps (the statistics then cover the
            patch tokens only, extra tokens set aside; ``spatial`` is ``(h, w)``), how
            (:meth:`~convscope.models.grids.TokenView.describe`); ``None`` for any other layer.
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
    top_value: np.ndarray
    top_index: np.ndarray
    top_pos: np.ndarray
    corr: np.ndarray | None = None
    frac_saturated: np.ndarray | None = None
    top_label: np.ndarray | None = None
    rf_size: tuple[float, ...] | None = None
    rf_jump: tuple[float, ...] | None = None
    rf_start: tuple[float, ...] | None = None
    tokens: str | None = None

    def __post_init__(self) -> None:
        for name in (*ARRAYS, *OPTIONAL):
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
        for name in OPTIONAL:
            if getattr(self, name) is not None:
                out[name] = np.asarray(getattr(self, name))
        return out

    def meta(self) -> dict[str, Any]:
        """The JSON-able description stored in the manifest."""
        rf = (
            None
            if self.rf_size is None
            else {
                "size": list(self.rf_size),
                "jump": list(self.rf_jump or ()),
                "start": list(self.rf_start or ()),
            }
        )
        meta = {
            "key": self.key,
            "shape": list(self.shape),
            "spatial": list(self.spatial),
            "channels": self.channels,
            "images": self.images,
            "activation": self.activation,
            "rf": rf,
        }
        return {**meta, "tokens": self.tokens} if self.tokens is not None else meta

    @classmethod
    def from_parts(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> LayerStats:
        """Rebuild from :meth:`meta` and :meth:`arrays`."""
        rf = meta.get("rf") or {}
        return cls(
            key=meta["key"],
            shape=tuple(meta["shape"]),
            spatial=tuple(meta["spatial"]),
            channels=int(meta["channels"]),
            images=int(meta["images"]),
            activation=meta.get("activation", ""),
            **{name: arrays[name] for name in ARRAYS},
            corr=arrays.get("corr"),
            frac_saturated=arrays.get("frac_saturated"),
            top_label=arrays.get("top_label"),
            rf_size=tuple(rf["size"]) if rf else None,
            rf_jump=tuple(rf["jump"]) if rf else None,
            rf_start=tuple(rf["start"]) if rf else None,
            tokens=meta.get("tokens"),
        )

    def __repr__(self) -> str:
        return one_line(
            "LayerStats",
            f"key={short(self.key)!r}",
            f"shape={dims(self.shape)}",
            f"channels={self.channels}",
            f"images={self.images}",
            f"activation={short(self.activation, 16)!r}",
            f"top_k={self.top_value.shape[-1]}",
            f"sparsity={self.sparsity:.3g}",
        )

    def _repr_html_(self) -> str:
        """The layer's facts and its channels (mean, std, max, fraction positive; the first 256)."""
        rows = [
            ("key", self.key),
            ("shape", dims(self.shape)),
            ("channels", self.channels),
            ("images", self.images),
            ("activation", self.activation or "-"),
            ("sparsity", f"{self.sparsity:.3g}"),
            ("top images per channel", self.top_value.shape[-1]),
        ]
        if self.rf_size is not None:
            rows.append(("receptive field", dims(self.rf_size)))
        shown = min(self.channels, 256)
        lines = [
            (
                c,
                f"{self.mean[c]:.4g}",
                f"{self.std[c]:.4g}",
                f"{self.max[c]:.4g}",
                f"{self.frac_positive[c]:.3g}",
            )
            for c in range(shown)
        ]
        note = f"first {shown} of {self.channels} channels" if shown < self.channels else ""
        return html_card(
            f"LayerStats {self.key}", rows, table=(("channel", "mean", "std", "max", "> 0"), lines), note=note
        )
