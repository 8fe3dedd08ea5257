"""The result of a feature-visualization run: the images, how the objective evolved, and the settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from convscope.render.annotate import compose, fmt
from convscope.render.display import dims, html_card, one_line, short
from convscope.render.mosaic import tile
from convscope.render.result import FeatureGrid


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False, repr=False)
class MaxResult:
    """Images that maximize an objective.

    Attributes:
        images: Read-only uint8 ``(B, H, W, C)`` (``C`` = the model's channels, 1 or 3), the optimized
            images in [0, 255] before the value mapping to the model's range.
        history: float32 ``(steps, B)``: each image's objective at every step, on that step's randomly
            transformed image, before the update (regularizers not included).
        initial: float32 ``(B,)``: objective of the starting images (untransformed).
        final: float32 ``(B,)``: objective of the final images (untransformed, before quantization).
        objective: Description of the objective, e.g. ``"conv_1:[0-63]"``.
        labels: One label per image (the channel for batched channel objectives).
        settings: Everything that produced the result (steps, lr, param, transforms, regularizer
            weights, seed, size, value mapping, backend, seconds, traces).
    """

    images: np.ndarray
    history: np.ndarray
    initial: np.ndarray
    final: np.ndarray
    objective: str
    labels: tuple[str, ...]
    settings: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"MaxResult.images must be uint8 (B, H, W, C), got {self.images.dtype} {self.images.shape}"
            )
        for name in ("images", "history", "initial", "final"):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))

    def __repr__(self) -> str:
        return one_line(
            "MaxResult",
            f"objective={short(self.objective)!r}",
            f"images={dims(self.images.shape)}",
            f"steps={self.history.shape[0]}",
            f"final mean={float(np.mean(self.final)):.4g}",
        )

    @property
    def gain(self) -> np.ndarray:
        """``final - initial`` per image."""
        return self.final - self.initial

    def to_grid(
        self, *, cols: int | None = None, scale: int | None = None, labels: bool = True
    ) -> FeatureGrid:
        """The images as one captioned mosaic (each tile labelled, e.g. with its channel).

        Args:
            cols: Mosaic columns (``None`` chooses).
            scale: Integer upscale (``None``: small images are enlarged to ~48 px).
            labels: Print each image's label above it.
        """
        rgb = self.images if self.images.shape[-1] == 3 else np.repeat(self.images[..., :1], 3, axis=-1)
        body = tile(rgb, cols=cols, scale=scale, labels=list(self.labels) if labels else None)
        s = self.settings
        b, h, w, c = self.images.shape
        fields = [
            f"feature visualization of {self.objective}",
            f"{b} image{'s' if b != 1 else ''} {h}x{w}x{c}",
            f"param={s.get('param')}",
            f"{s.get('steps')} steps lr={fmt(s.get('lr', float('nan')))}",
            f"transforms={s.get('transforms_name', '?')}",
            f"objective {fmt(float(np.mean(self.initial)))} -> {fmt(float(np.mean(self.final)))} (mean)",
        ]
        if s.get("tv") or s.get("l2"):
            fields.append(f"tv={fmt(s.get('tv', 0.0))} l2={fmt(s.get('l2', 0.0))}")
        image, dst, caption = compose(body.shape[0], body.shape[1], fields, None)
        dst[...] = body
        numbered = all(label.isdigit() for label in self.labels)  # a batched channel objective
        shown = tuple(int(label) for label in self.labels) if numbered else tuple(range(b))
        return FeatureGrid(
            image=image,
            layer=str(s.get("layer", "")),
            shape=(h, w, c),
            norm="none (sigmoid image)",
            cmap="rgb" if c == 3 else "gray",
            channels=shown,
            n_channels=int(s.get("n_channels", b)),
            value_range=(float(np.min(self.final)), float(np.max(self.final))),
            inactive=(),
            n_nan=0,
            n_inf=0,
            caption=caption,
            kind="featvis",
        )

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write :meth:`to_grid` as a picture (refuses to overwrite unless asked)."""
        return self.to_grid().save(path, overwrite=overwrite)

    def _repr_html_(self) -> str:
        """The images as one mosaic (inline PNG, as :meth:`to_grid` draws them) over a table of the run."""
        s = self.settings
        rows = [
            ("objective", self.objective),
            ("images", dims(self.images.shape)),
            ("steps", self.history.shape[0]),
            ("param", s.get("param", "?")),
            ("objective mean", f"{float(np.mean(self.initial)):.4g} -> {float(np.mean(self.final)):.4g}"),
        ]
        grid = self.to_grid()
        return html_card(f"MaxResult {self.objective}", rows, images=[(grid.to_png(), grid.caption)])
