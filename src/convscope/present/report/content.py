"""What a report holds, as plain data: pictures (PNG bytes), entries per input and per layer, sections.

:mod:`convscope.present.report.build` fills these; :mod:`convscope.present.report.page` turns them into
one HTML file. Nothing here imports Keras.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convscope.present.report.tables import esc
from convscope.render.encode import encode_png
from convscope.store.atomic import write_atomic

NORM_TEXT: dict[str, str] = {
    "channel": "each channel scaled to its own min..max (best contrast; magnitudes are not comparable "
    "between channels)",
    "layer": "one min..max for all channels shown (channels comparable; colorbar under each grid)",
    "symmetric": "0 maps to the middle of the diverging colormap, +-max|v| of the layer to its ends",
    "percentile": "clipped at the layer's 1st and 99th percentiles, then scaled (robust to outliers)",
    "raw": "the layer's own min..max (values as computed; colorbar under each grid)",
}


def anchor_id(prefix: str, index: int, name: str) -> str:
    """A unique, HTML-safe element id such as ``layer-3-conv_1`` (only ``[A-Za-z0-9_-]``)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40]
    return f"{prefix}-{index}" + (f"-{slug}" if slug else "")


@dataclass(frozen=True, eq=False)
class Picture:
    """A PNG to inline, with its pixel size and a caption (plain text).

    Attributes:
        png: The PNG file's bytes.
        width: Pixel width.
        height: Pixel height.
        caption: What the picture shows (used as ``alt`` text and figure caption).
    """

    png: bytes
    width: int
    height: int
    caption: str = ""

    @classmethod
    def from_grid(cls, grid: Any) -> Picture:
        """From a :class:`~convscope.render.FeatureGrid`."""
        h, w = grid.image.shape[:2]
        return cls(grid.to_png(compress_level=6), int(w), int(h), grid.caption)

    @classmethod
    def from_array(cls, image: np.ndarray, caption: str = "") -> Picture:
        """From a uint8 ``(H, W, 3)`` or ``(H, W)`` array."""
        arr = np.ascontiguousarray(image)
        return cls(encode_png(arr, 6), int(arr.shape[1]), int(arr.shape[0]), caption)

    def data_uri(self) -> str:
        """``data:image/png;base64,...`` (only base64 characters: safe inside a quoted attribute)."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    def img_tag(self, *, min_width: int = 0, css_class: str = "") -> str:
        """An ``<img>`` element with the data URI, size and escaped alt text.

        Args:
            min_width: Small pictures (28 px digits) are shown enlarged to at least this width.
            css_class: Optional class attribute.
        """
        factor = max(1, -(-min_width // max(self.width, 1))) if min_width else 1
        cls_attr = f' class="{esc(css_class)}"' if css_class else ""
        return (
            f'<img{cls_attr} src="{self.data_uri()}" width="{self.width * factor}" '
            f'height="{self.height * factor}" alt="{esc(self.caption)}">'
        )


@dataclass(frozen=True, eq=False)
class InputEntry:
    """One input: what the model saw and what it predicted.

    Attributes:
        name: The input's id (from its file name, or ``array[i]``).
        source: Where it came from.
        anchor: Element id of its block.
        picture: The input at model resolution, or ``None`` for non-image arrays.
        prediction: One line about the model's output for it.
        top: ``(label, score)`` of the highest outputs, best first (empty if the output is no vector).
        cam: A Grad-CAM overlay, when the attribution module is installed.
    """

    name: str
    source: str
    anchor: str
    picture: Picture | None
    prediction: str
    top: tuple[tuple[str, float], ...] = ()
    cam: Picture | None = None


@dataclass(frozen=True, eq=False)
class LayerEntry:
    """One probed layer and its feature grids, one per input (inputs in order).

    Attributes:
        key: The activation key (layer path, ``@k`` for a repeated call).
        anchor: Element id of its section.
        class_name: Layer class, e.g. ``Conv2D``.
        shape: One sample's activation shape.
        grids: One picture per input.
        n_channels: Channels the layer has.
        n_shown: Channels drawn in each grid.
        factor: Maps are drawn at 1/factor size (1: full size).
    """

    key: str
    anchor: str
    class_name: str
    shape: tuple[int, ...]
    grids: tuple[Picture, ...]
    n_channels: int
    n_shown: int
    factor: int = 1


@dataclass(frozen=True, eq=False)
class Section:
    """An extra section (Grad-CAM notes, scan results): a title and ready, escaped HTML."""

    anchor: str
    title: str
    html: str


@dataclass(frozen=True, eq=False)
class ReportContent:
    """Everything the page shows.

    Attributes:
        title: Page title (plain text).
        facts: ``(label, value)`` pairs under the title (model, inputs, backend, versions, ...).
        notes: Plain-text remarks (channel cap, skipped parts, ...).
        info: The ``ModelInfo`` layer table, or ``None`` if it could not be computed.
        layers: The probed layers.
        inputs: The inputs.
        sections: Extra sections after the feature maps.
        norm: Normalization mode used for the grids.
        cmap: Colormap used for the grids.
    """

    title: str
    facts: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    info: Any | None
    layers: tuple[LayerEntry, ...]
    inputs: tuple[InputEntry, ...]
    sections: tuple[Section, ...]
    norm: str
    cmap: str


@dataclass(frozen=True, eq=False)
class Report:
    """A finished report: one self-contained HTML page.

    Attributes:
        html: The page (UTF-8 text; pictures inline as ``data:`` URIs; no scripts, no external requests).
        content: The data it was made from.
    """

    html: str
    content: ReportContent

    @property
    def nbytes(self) -> int:
        """Size of the page in bytes (UTF-8)."""
        return len(self.html.encode("utf-8"))

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the page to ``path`` (atomically).

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is False.
        """
        return write_atomic(path, self.html.encode("utf-8"), overwrite=overwrite)

    def _repr_html_(self) -> str:
        """The page inside a sandboxed ``<iframe>`` (its styles stay out of the notebook's)."""
        return (
            f'<iframe sandbox="" srcdoc="{esc(self.html)}" style="width:100%;height:640px;'
            f'border:1px solid #ccc" title="{esc(self.content.title)}"></iframe>'
        )

    def __repr__(self) -> str:
        return (
            f"Report(title={self.content.title!r}, inputs={len(self.content.inputs)}, "
            f"layers={len(self.content.layers)}, size={self.nbytes / 1e6:.2f} MB)"
        )
