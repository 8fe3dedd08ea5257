"""A convolution layer's kernel weights as a picture: one tile per filter (output channel).

Modes (``I`` = input channels a filter sees):

* ``rgb``: ``I == 3`` (a first layer on color images): each filter drawn in color, normalized on its own
  and symmetrically: ``0.5 + 0.5 * w / max|w|``, so 0 is mid gray and the filter's largest weight
  reaches 0 or 255 in some color channel.
* ``channels``: a sub-grid per filter, one signed map per input channel (the first ``max_inputs``), on a
  diverging map, normalized symmetrically per filter. A ``Conv1D`` filter is one ``(I, k)`` map.
* ``norm``: one map per filter, the L2 norm of the weights over the input channels, on one 0..max
  scale shared by all filters (so filters compare), with a colorbar.
* ``auto``: ``rgb`` for 3 inputs, ``channels`` for 1D kernels or at most 8 inputs, else ``norm``.

Conv1D/2D/3D, their Transpose versions, DepthwiseConv and SeparableConv (its depthwise part) are read;
3D kernels show their depth slices side by side. Pixels are quantized as ``floor(v * 255 + 0.5)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from convscope.errors import OptionError, RenderError
from convscope.render.annotate import Legend, compose, fmt
from convscope.render.channels import ChannelSpec, parse_channels
from convscope.render.colormap import NAN_COLOR, apply_colormap, resolve_cmap
from convscope.render.display import dims, one_line, short
from convscope.render.mosaic import SEP_COLOR, auto_grid, auto_scale, tile
from convscope.render.result import FeatureGrid

MODES: Final = ("auto", "rgb", "channels", "norm")
MAX_INPUTS: Final = 16  # input channels drawn per filter in "channels" mode
SUB_CELL_PX: Final = 12  # a kernel map inside a sub-grid is upscaled to about this size


@dataclass(frozen=True)
class Kernel:
    """Weights in a common layout: ``w[filter, input, depth, y, x]``, with what they are."""

    w: np.ndarray
    source: str  # e.g. "Conv2D kernel (3, 3, 3, 64)"
    shape: tuple[int, ...]
    rank: int  # spatial rank 1, 2 or 3
    note: str = ""

    def __repr__(self) -> str:
        return one_line(
            "Kernel",
            f"source={short(self.source, 60)!r}",
            f"w={dims(self.w.shape)}",
            f"rank={self.rank}",
            f"note={short(self.note, 40)!r}" if self.note else "",
        )


def _mro(obj: Any) -> list[str]:
    return [c.__name__ for c in type(obj).__mro__]


def _array(v: Any) -> np.ndarray:
    return np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float32)


def as_kernel(layer_or_weights: Any) -> Kernel:
    """Read a layer's (or an array's) kernel into the ``(K, I, D, kh, kw)`` layout.

    Raises:
        RenderError: not a convolution layer (naming its class), not built, or an array of bad rank.
    """
    obj = layer_or_weights
    if isinstance(obj, (list, tuple)) and obj:
        obj = obj[0]
    if isinstance(obj, np.ndarray) or not hasattr(obj, "get_weights"):
        k = np.asarray(obj, dtype=np.float32)
        if k.ndim not in (3, 4, 5):
            raise RenderError(
                f"kernel weights must be a 3-D (k, in, out), 4-D (kh, kw, in, out) or 5-D "
                f"array, got shape {k.shape}"
            )
        return _regular(k, f"Conv{k.ndim - 2}D weights {k.shape}")
    names, cls = _mro(obj), type(obj).__name__
    if not getattr(obj, "built", True):
        raise RenderError(f"layer {obj.name!r} ({cls}) is not built, so it has no weights yet")
    if any(n.startswith("SeparableConv") for n in names):
        dk, pk = _array(obj.depthwise_kernel), _array(obj.pointwise_kernel)
        note = f"depthwise part; pointwise 1x1 {pk.shape[-2]}->{pk.shape[-1]} not shown"
        return _depthwise(dk, f"{cls} depthwise_kernel {dk.shape}", note)
    if any(n.startswith("DepthwiseConv") for n in names):
        k = _array(obj.kernel)
        return _depthwise(k, f"{cls} kernel {k.shape}", "one input channel per filter")
    if any(n.startswith("Conv") and "Transpose" in n for n in names):
        k = _array(obj.kernel)
        return _regular(
            np.swapaxes(k, -1, -2), f"{cls} kernel {k.shape}", "filter = output channel", shape=k.shape
        )
    if any(n in ("BaseConv", "Conv1D", "Conv2D", "Conv3D") for n in names) and hasattr(obj, "kernel"):
        k = _array(obj.kernel)
        groups = int(getattr(obj, "groups", 1) or 1)
        note = f"groups={groups}: a filter sees its group's {k.shape[-2]} inputs" if groups > 1 else ""
        return _regular(k, f"{cls} kernel {k.shape}", note)
    raise RenderError(
        f"cannot draw filters of layer {getattr(obj, 'name', '?')!r} ({cls}): it is not a "
        "convolution; filters exist for Conv1D/2D/3D, DepthwiseConv, SeparableConv and "
        "Conv*Transpose layers"
    )


def _regular(k: np.ndarray, source: str, note: str = "", shape: tuple[int, ...] | None = None) -> Kernel:
    """``(*spatial, I, K)`` -> ``(K, I, D, kh, kw)``."""
    rank = k.ndim - 2
    spatial = k.shape[:rank]
    full = (1,) * (3 - rank) + spatial  # 1D (k,) -> (1, 1, k): a one-row map
    w = np.moveaxis(k.reshape(*full, *k.shape[rank:]), (3, 4), (1, 0))
    return Kernel(np.ascontiguousarray(w), source, tuple(shape or k.shape), rank, note)


def _depthwise(k: np.ndarray, source: str, note: str) -> Kernel:
    """``(*spatial, C, M)`` -> filters ``c * M + m`` with one input each."""
    rank = k.ndim - 2
    flat = k.reshape(*k.shape[:rank], 1, k.shape[-2] * k.shape[-1])
    return _regular(flat, source, note, shape=k.shape)


def _sym(w: np.ndarray) -> np.ndarray:
    """Per filter: ``0.5 + 0.5 * w / max|w|`` over everything after axis 0 (0.5 for an all-zero filter)."""
    m = np.nanmax(np.abs(w).reshape(len(w), -1), axis=1) if w.size else np.zeros(len(w))
    m = np.where(np.isfinite(m) & (m > 0), m, 1.0).reshape(-1, *([1] * (w.ndim - 1)))
    return 0.5 + 0.5 * w / m


def _u8(v: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(np.nan_to_num(v, nan=0.0) * 255.0 + 0.5), 0, 255).astype(np.uint8)


def _row(cells: np.ndarray, s: int) -> np.ndarray:
    """``(D, h, w, 3)`` -> one strip, slices upscaled by ``s`` and joined by 1-px separators."""
    d, h, w = cells.shape[:3]
    big = np.repeat(np.repeat(cells, s, axis=1), s, axis=2)
    out = np.empty((h * s, d * w * s + d - 1, 3), np.uint8)
    out[:] = SEP_COLOR
    for i in range(d):
        out[:, i * (w * s + 1) : i * (w * s + 1) + w * s] = big[i]
    return out


def _grid(cells: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``(n, h, w, 3)`` cells -> ``rows x cols`` sub-grid joined by 1-px separators."""
    n, h, w = cells.shape[:3]
    out = np.empty((rows * (h + 1) - 1, cols * (w + 1) - 1, 3), np.uint8)
    out[:] = SEP_COLOR
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = cells[i]
    return out


def _paint_nan(rgb: np.ndarray, nan: np.ndarray) -> np.ndarray:
    if nan.any():
        rgb[nan] = NAN_COLOR
    return rgb


def _choose(mode: str, kern: Kernel) -> str:
    n_in = kern.w.shape[1]
    if mode not in MODES:
        raise OptionError(f"unknown filter mode {mode!r}; valid: {', '.join(MODES)}")
    if mode == "rgb" and n_in != 3:
        raise OptionError(
            f"mode='rgb' needs filters with 3 input channels; {kern.source} has {n_in}; "
            "use mode='channels' or 'norm'"
        )
    if mode != "auto":
        return mode
    if n_in == 3:
        return "rgb"
    return "channels" if kern.rank == 1 or n_in <= 8 else "norm"


def render_filters(
    layer_or_weights: Any,
    *,
    mode: str = "auto",
    channels: ChannelSpec = None,
    max_filters: int = 64,
    max_inputs: int = MAX_INPUTS,
    cmap: str | None = None,
    scale: int | None = None,
    layer: str = "",
    labels: bool = True,
    caption: bool = True,
) -> FeatureGrid:
    """Draw a convolution layer's filters (see the module docstring for the modes).

    Args:
        layer_or_weights: A Keras conv layer, or a kernel array (``(k, I, K)``, ``(kh, kw, I, K)`` or
            ``(kd, kh, kw, I, K)``) or a ``[kernel, bias]`` list.
        mode: ``auto``, ``rgb``, ``channels`` or ``norm``.
        channels: Which filters (a channel spec; ``top16`` ranks by mean ``|w|``). ``None``: the first
            ``max_filters``.
        max_filters: Default cap on filters drawn.
        max_inputs: Input channels drawn per filter in ``channels`` mode.
        cmap: Colormap for ``channels`` (default ``diverging``) and ``norm`` (default ``viridis``).
        scale: Integer upscale of a kernel pixel (``None``: about 48 px per map, 12 in sub-grids).
        layer: Name for the caption (default: the layer's name).
        labels: Print filter numbers above the tiles.
        caption: Frame the tiles with the caption strip (and the colorbar of ``norm`` mode); ``False``
            returns the tiles alone, the caption as text and the colorbar in ``legend``.

    Returns:
        A :class:`FeatureGrid` (``kind="filters"``, ``shape`` = the kernel shape).

    Raises:
        RenderError: not a convolution layer (the message names its class).
        OptionError: a bad mode, channel spec or option.
    """
    kern = as_kernel(layer_or_weights)
    name = layer or str(getattr(layer_or_weights, "name", "") or "")
    mode = _choose(mode, kern)
    w = kern.w
    n_f, n_in, depth, kh, kw = w.shape
    spec = channels if channels is not None or n_f <= max_filters else max_filters
    idx = parse_channels(spec, n_f).resolve(np.abs(w).reshape(n_f, -1))
    sel = w[idx]
    nan = np.isnan(sel)
    legend, cmap_name = None, "rgb"
    if mode == "rgb":
        s = scale or auto_scale(kh, depth * kw)
        rgb = _paint_nan(_u8(_sym(sel)).transpose(0, 2, 3, 4, 1), nan.any(axis=1))  # (k, D, kh, kw, 3)
        tiles = [_row(t, s) for t in rgb]
        shown, norm_text = "RGB: the 3 input channels as color", "per filter, symmetric (0 = gray)"
    elif mode == "norm":
        cmap_name = resolve_cmap(cmap or "viridis")
        mag = np.sqrt(np.nansum(np.square(sel), axis=1))  # (k, D, kh, kw)
        top = float(np.max(mag)) if mag.size and np.max(mag) > 0 else 1.0
        s = scale or auto_scale(kh, depth * kw)
        rgb = _paint_nan(apply_colormap(mag / top, cmap_name), nan.any(axis=1))
        tiles = [_row(t, s) for t in rgb]
        shown, norm_text = f"L2 norm over {n_in} input channel{'s' * (n_in > 1)}", f"shared, 0..{fmt(top)}"
        legend = Legend(cmap_name, 0.0, top)
    else:
        cmap_name = resolve_cmap(cmap or "diverging")
        n_show = min(n_in, max_inputs)
        colors = apply_colormap(_sym(sel[:, :n_show]), cmap_name)  # (k, I, D, kh, kw, 3)
        rgb = _paint_nan(colors, nan[:, :n_show])
        if kern.rank == 1:
            s = scale or max(1, min(8, round(48 / max(n_show, kw))))
            tiles = [_row(t[:, 0, 0][None], s) for t in rgb]  # one (I, k) map per filter
        else:  # one map per filter is a whole tile; several are cells of a sub-grid, drawn smaller
            s = scale or (
                auto_scale(kh, depth * kw) if n_show == 1 else max(1, -(-SUB_CELL_PX // max(kh, kw)))
            )
            cells = [[_row(t[i], s) for i in range(n_show)] for t in rgb]
            rows, cols = (n_show, 1) if depth > 1 else auto_grid(n_show)
            tiles = [_grid(np.stack(c), rows, cols) for c in cells]
        capped = f" (inputs 0-{n_show - 1} of {n_in})" if n_show < n_in else ""
        shown = f"one map per input channel{capped}" if n_in > 1 else "one signed map per filter"
        norm_text = "per filter, symmetric (0 = white)"
    nested = mode == "channels" and kern.rank > 1 and n_in > 1  # sub-grids: wider gaps between filters
    names = [str(i) for i in idx] if labels else None
    body = tile(np.stack(tiles), scale=1, sep=3 if nested else 1, labels=names)
    finite = w[np.isfinite(w)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (float("nan"),) * 2
    fields = [
        name,
        kern.source,
        shown,
        f"mode={mode}",
        f"norm: {norm_text}",
        parse_channels(spec, n_f).describe("filters"),
        f"weights [{fmt(lo)}, {fmt(hi)}]",
    ]
    if kern.rank == 3:
        fields.append(f"{depth} depth slices left to right")
    fields += [kern.note] if kern.note else []
    fields += [f"{int(np.isnan(w).sum())} NaN (magenta)"] if np.isnan(w).any() else []
    if caption:
        image, dst, text = compose(body.shape[0], body.shape[1], [f for f in fields if f], legend)
        dst[...] = body
    else:
        image, text = body, "  ".join(f for f in fields if f)
    inactive = tuple(int(i) for i in np.flatnonzero(~np.any(w.reshape(n_f, -1) != 0, axis=1)))  # all-zero
    return FeatureGrid(
        image=image,
        layer=name,
        shape=kern.shape,
        norm=mode,
        cmap=cmap_name,
        channels=tuple(int(i) for i in idx),
        n_channels=n_f,
        value_range=(lo, hi),
        inactive=inactive,
        n_nan=int(np.isnan(w).sum()),
        n_inf=int(np.isinf(w).sum()),
        caption=text,
        kind="filters",
        legend=legend,
    )


__all__ = ["MODES", "Kernel", "as_kernel", "render_filters"]
