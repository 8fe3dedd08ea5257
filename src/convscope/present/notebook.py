"""Jupyter display for convscope results, and the interactive explorer.

* :class:`~convscope.render.FeatureGrid` shows as a PNG on its own (``_repr_png_``).
* :func:`enable` registers an HTML formatter for :class:`~convscope.models.inspect.ModelInfo`, so the
  layer table from ``convscope.inspect(model)`` shows as a table; :func:`info_view` /
  :func:`display_info` do it for one table without registering anything.
* :func:`summarize` turns activations into a :class:`ProbeSummary` (one row per layer: shape, range,
  mean, inactive channels, NaN / Inf) that shows as a table.
* :func:`explore` opens an ipywidgets explorer (layer, channel, image, normalization, colormap).

Example (in a notebook):
    >>> import convscope
    >>> from convscope.present import notebook
    >>> notebook.enable()
    >>> convscope.inspect("mnist-cnn")                           # the layer table, as HTML
    >>> notebook.summarize(convscope.activations("mnist-cnn", x))  # per-layer statistics
    >>> notebook.explore("mnist-cnn", x)                          # the widget

Importing this module imports neither Keras nor ipywidgets.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from convscope.present.report.tables import dict_table_html, esc, info_html

log = logging.getLogger(__name__)

HTML_MIME = "text/html"


@dataclass(frozen=True, eq=False)
class InfoView:
    """A :class:`~convscope.models.inspect.ModelInfo` that displays as an HTML table in Jupyter."""

    info: Any

    def _repr_html_(self) -> str:
        return info_html(self.info)

    def __repr__(self) -> str:
        from convscope.models.inspect import format_table

        return format_table(self.info)


def info_view(info: Any) -> InfoView:
    """Wrap a ``ModelInfo`` so that Jupyter shows it as an HTML table (plain text elsewhere)."""
    return InfoView(info)


def display_info(info: Any) -> None:
    """Show a ``ModelInfo`` as an HTML table in the running notebook (the plain table outside IPython)."""
    try:
        from IPython.display import display
    except ImportError:  # not in IPython: the text table is the best we can do
        log.info("%r", InfoView(info))
        return
    display(InfoView(info))


def enable(ip: Any = None) -> bool:
    """Register convscope's HTML formatters in IPython (``ModelInfo`` -> layer table).

    Args:
        ip: The IPython shell (default: the running one).

    Returns:
        True if registered, False when not running inside IPython.
    """
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        ip = get_ipython()
    if ip is None:
        return False
    formatter = ip.display_formatter.formatters[HTML_MIME]
    formatter.for_type_by_name("convscope.models.inspect", "ModelInfo", info_html)
    return True


def disable(ip: Any = None) -> None:
    """Remove what :func:`enable` registered."""
    if ip is None:
        from IPython import get_ipython

        ip = get_ipython()
    if ip is not None:
        formatter = ip.display_formatter.formatters[HTML_MIME]
        formatter.deferred_printers.pop(("convscope.models.inspect", "ModelInfo"), None)
        from convscope.models.inspect import ModelInfo

        formatter.type_printers.pop(ModelInfo, None)


@dataclass(frozen=True)
class LayerSummary:
    """Statistics of one layer's activations over all samples probed.

    Attributes:
        layer: The activation key (layer path).
        shape: ``(N, ...)`` shape of the activations.
        dtype: Their dtype.
        min: Finite minimum (NaN if nothing is finite).
        max: Finite maximum.
        mean: Mean of the finite values.
        zero_fraction: Fraction of values exactly 0 (ReLU sparsity).
        inactive: Channels (last axis) that are 0 at every position of every probed sample (inactive on
            these samples; "dead" is kept for a scan over a whole dataset, :func:`convscope.scan.scan`).
        channels: Channels (size of the last axis).
        n_nan: NaN values.
        n_inf: +/-Inf values.
    """

    layer: str
    shape: tuple[int, ...]
    dtype: str
    min: float
    max: float
    mean: float
    zero_fraction: float
    inactive: int
    channels: int
    n_nan: int
    n_inf: int

    def to_dict(self) -> dict[str, Any]:
        """Plain values, keyed as in the table."""
        return {
            "layer": self.layer,
            "shape": self.shape,
            "dtype": self.dtype,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "zero %": round(100 * self.zero_fraction, 1),
            "inactive channels": f"{self.inactive} of {self.channels}",
            "NaN": self.n_nan,
            "Inf": self.n_inf,
        }


@dataclass(frozen=True)
class ProbeSummary:
    """Per-layer statistics of a probe, shown as a table in Jupyter.

    Attributes:
        layers: One :class:`LayerSummary` per activation key, in probe order.
        n_samples: Samples probed.
    """

    layers: tuple[LayerSummary, ...]
    n_samples: int

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as dicts."""
        return [row.to_dict() for row in self.layers]

    def _repr_html_(self) -> str:
        return (
            f'<div class="convscope-probe"><p><strong>{esc(len(self.layers))} layers probed on '
            f"{esc(self.n_samples)} samples</strong></p>{dict_table_html(self.to_dicts())}</div>"
        )

    def __repr__(self) -> str:
        lines = [f"ProbeSummary({len(self.layers)} layers, {self.n_samples} samples)"]
        lines += [
            f"  {r.layer}: {r.shape} range [{r.min:.4g}, {r.max:.4g}] mean {r.mean:.4g} "
            f"inactive {r.inactive}/{r.channels}"
            for r in self.layers
        ]
        return "\n".join(lines)


def _layer_summary(key: str, act: Any) -> LayerSummary:
    arr = np.asarray(act)
    values = arr.astype(np.float64, copy=False) if arr.dtype.kind != "f" else arr
    finite_mask = np.isfinite(values)
    finite = values[finite_mask]
    nan = math.nan
    channels = int(arr.shape[-1]) if arr.ndim >= 2 else 1
    flat = arr.reshape(-1, channels) if arr.ndim >= 2 else arr.reshape(-1, 1)
    return LayerSummary(
        layer=key,
        shape=tuple(int(s) for s in arr.shape),
        dtype=str(arr.dtype),
        min=float(finite.min()) if finite.size else nan,
        max=float(finite.max()) if finite.size else nan,
        mean=float(finite.mean()) if finite.size else nan,
        zero_fraction=float((arr == 0).mean()) if arr.size else nan,
        inactive=int(np.all(flat == 0, axis=0).sum()) if flat.size else 0,
        channels=channels,
        n_nan=int(np.isnan(values).sum()),
        n_inf=int(np.isinf(values).sum()),
    )


def summarize(activations: Mapping[str, Any]) -> ProbeSummary:
    """Per-layer statistics of ``{layer: (N, ...) array}`` (e.g. :func:`convscope.activations`' result).

    Keys starting with ``__`` (the model output of an extractor) are skipped.
    """
    rows = tuple(_layer_summary(k, v) for k, v in activations.items() if not k.startswith("__"))
    n = int(np.shape(next(iter(activations.values())))[0]) if activations else 0
    return ProbeSummary(layers=rows, n_samples=n)


def explore(model: Any, images: Any, layers: Any = None, **kwargs: Any) -> Any:
    """An interactive explorer: pick layer, channel, image, normalization and colormap (needs ipywidgets).

    See :class:`convscope.present.explorer.Explorer` for the arguments. The returned object displays as
    the widget when it is the last expression of a cell.
    """
    from convscope.present.explorer import Explorer

    return Explorer(model, images, layers, **kwargs)


__all__ = [
    "InfoView",
    "LayerSummary",
    "ProbeSummary",
    "disable",
    "display_info",
    "enable",
    "explore",
    "info_view",
    "summarize",
]
