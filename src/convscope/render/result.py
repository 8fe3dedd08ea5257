"""The result of rendering: a picture plus the facts needed to read it."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.render.annotate import Legend
from convscope.render.display import dims, html_card, one_line, short
from convscope.render.encode import encode_image, encode_png
from convscope.render.normalize import ValueSpan
from convscope.store.atomic import write_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_TITLE_PT = 8


@dataclass(frozen=True, eq=False, repr=False)
class FeatureGrid:
    """A rendered activation picture and what it shows.

    Attributes:
        image: Read-only uint8 ``(H, W, 3)`` picture (caption strip, maps, legend).
        layer: Layer name (may be empty).
        shape: Shape of the activation for one sample, as the layer outputs it.
        norm: Normalization mode used.
        cmap: Colormap name used.
        channels: Channel (or unit) indices shown, in display order.
        n_channels: Channels (units) the layer has.
        value_range: Finite ``(min, max)`` of the raw activation (NaN, NaN if nothing is finite).
        inactive: Channels that are exactly zero at every position of this activation (over all channels,
            shown or not): inactive on this image. ("Dead" is kept for a channel that is zero over a whole
            scanned dataset: :class:`convscope.scan.health.LayerHealth`.)
        n_nan: NaN values in the activation.
        n_inf: +/-Inf values in the activation.
        caption: The text printed at the top of the picture.
        kind: ``"2d"``, ``"1d"``, ``"3d"``, ``"vector"`` or ``"overlay"``.
        legend: The legend drawn under the picture (its colorbar ends are ``span``'s), or ``None``.
        span: The one range the picture's colors stand for, as stated in the caption (``None`` for
            pictures that are not drawn from a normalization, e.g. feature visualizations).
    """

    image: np.ndarray
    layer: str
    shape: tuple[int, ...]
    norm: str
    cmap: str
    channels: tuple[int, ...]
    n_channels: int
    value_range: tuple[float, float]
    inactive: tuple[int, ...]
    n_nan: int
    n_inf: int
    caption: str
    kind: str = "2d"
    legend: Legend | None = None
    span: ValueSpan | None = None

    def __post_init__(self) -> None:
        img = np.asarray(self.image)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"FeatureGrid.image must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
        if img.flags.writeable:
            img = img.view()
            img.flags.writeable = False
        object.__setattr__(self, "image", img)

    def __repr__(self) -> str:
        rng = f"range=[{self.span.ends[0]}, {self.span.ends[1]}]" if self.span is not None else ""
        return one_line(
            "FeatureGrid",
            f"layer={short(self.layer)!r}",
            f"kind={self.kind}",
            f"shape={dims(self.shape)}",
            f"norm={short(self.norm, 24)!r}",
            rng,
            f"channels={len(self.channels)} of {self.n_channels}",
            f"image={dims(self.image.shape[:2])}",
        )

    def _repr_html_(self) -> str:
        """The picture inline (base64 PNG, the same bytes as ``_repr_png_``) over a table of its facts."""
        lo, hi = self.value_range
        rows: list[tuple[str, object]] = [
            ("layer", self.layer or "-"),
            ("kind", self.kind),
            ("shape", dims(self.shape)),
            ("norm", self.norm),
            ("cmap", self.cmap),
            ("channels", f"{len(self.channels)} of {self.n_channels}"),
        ]
        if self.span is not None:
            rows.append(("colors", self.span.caption()))
        rows.append(("values", f"[{lo:.4g}, {hi:.4g}]"))
        if self.inactive or self.n_nan or self.n_inf:
            rows.append(("zero / NaN / Inf", f"{len(self.inactive)} channels / {self.n_nan} / {self.n_inf}"))
        title = f"FeatureGrid {self.layer}".strip()
        return html_card(title, rows, images=[(self._repr_png_(), self.caption)])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        arr = self.image if dtype is None else self.image.astype(dtype)
        return arr.copy() if copy else arr

    def to_png(self, compress_level: int = 1) -> bytes:
        """The picture as PNG bytes (see :func:`convscope.render.encode.encode_png`)."""
        return encode_png(self.image, compress_level)

    def _repr_png_(self) -> bytes:
        """PNG for Jupyter's rich display."""
        return self.to_png()

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False, compress_level: int = 1) -> Path:
        """Write the picture; the format follows the extension (``.png`` default; ``.jpg``, ``.webp`` ...).

        The file is written to a temporary name in the same folder and then moved into place.

        Returns:
            The path written.

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is False.
            OptionError: unsupported extension.
        """
        data = encode_image(self.image, Path(path).suffix, compress_level)
        return write_atomic(path, data, overwrite=overwrite)

    def to_figure(self, *, dpi: int = 100) -> Figure:
        """A matplotlib Figure showing the picture at its pixel size, with the caption as title.

        Matplotlib is imported only here (``pip install convscope[plot]``). The figure is created without
        pyplot, so it is not shown or registered; display it in a notebook or call ``fig.savefig``.
        """
        from matplotlib.figure import Figure

        h, w = self.image.shape[:2]
        chars_per_line = max(20, int(w / dpi * 72 / (_TITLE_PT * 0.6)))  # ~0.6 em per character
        title = textwrap.fill(self.caption, chars_per_line)
        title_in = (title.count("\n") + 1) * _TITLE_PT * 1.3 / 72 + 0.1
        fig = Figure(figsize=(w / dpi, h / dpi + title_in), dpi=dpi)
        ax = fig.add_axes((0.0, 0.0, 1.0, (h / dpi) / (h / dpi + title_in)))
        ax.imshow(self.image, interpolation="nearest")
        ax.set_axis_off()
        fig.suptitle(title, fontsize=_TITLE_PT, y=1.0, va="top")
        return fig
