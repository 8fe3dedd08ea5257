"""A channel (or the channel mean) of a feature map, upsampled and blended over the input image."""

from __future__ import annotations

from typing import Any

import numpy as np

from convscope.errors import OptionError, RenderError
from convscope.render.annotate import Legend, compose, fmt
from convscope.render.checks import is_int
from convscope.render.colormap import apply_colormap, resolve_cmap
from convscope.render.normalize import check_mode, normalize, value_span
from convscope.render.prepare import layer_stats
from convscope.render.resize import resize
from convscope.render.result import FeatureGrid


def as_rgb_image(image: Any) -> np.ndarray:
    """An input picture as uint8 ``(H, W, 3)``.

    Accepts uint8 ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha dropped); float
    pictures are taken as 0..1 if their max is <= 1, else as 0..255, and clipped.

    Raises:
        RenderError: any other shape or dtype.
    """
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] in (1, 3, 4):
        img = img[..., :3] if img.shape[2] != 1 else img[..., 0]
    if (
        img.ndim not in (2, 3)
        or (img.ndim == 3 and img.shape[2] != 3)
        or img.size == 0
        or not np.issubdtype(img.dtype, np.number)
    ):
        raise RenderError(
            f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) numbers, got {img.dtype} {img.shape}"
        )
    if img.dtype != np.uint8:
        f = np.nan_to_num(img.astype(np.float32), nan=0.0)
        if f.max(initial=0.0) <= 1.0:
            f = f * 255.0
        img = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else np.ascontiguousarray(img)


def resize_map(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a float ``(h, w)`` map to ``(height, width)`` (Pillow, float32 'F' image)."""
    return resize(np.asarray(values, dtype=np.float32), (height, width), "bilinear")


def _axis_samples(
    n_out: int, k: int, n_map: int, start: float, jump: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``n_out`` enlarged pixels: the two map indices, the weight of the second, and coverage."""
    u = (np.arange(n_out, dtype=np.float64) + 0.5) / k - 0.5  # pixel centre in input pixel coordinates
    pos = (u - start) / jump  # fractional map index
    inside = (pos >= -0.5) & (pos <= n_map - 0.5)
    pos = np.clip(pos, 0.0, n_map - 1.0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_map - 1)
    return lo, hi, (pos - lo).astype(np.float32), inside


def place_map(
    values: np.ndarray, height: int, width: int, k: int, start: tuple[float, ...], jump: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Resample a map onto an input picture enlarged ``k`` times, using the layer's receptive-field grid.

    Map position ``(i, j)`` is centred on input pixel ``(start[0] + i*jump[0], start[1] + j*jump[1])``, so a
    map from a ``valid`` convolution or a pooling layer lands where its positions really look.

    Returns:
        ``(map, covered)``: the bilinearly sampled map ``(height, width)`` and a bool mask of the pixels the
        map's positions cover (outside it, no heat is drawn).
    """
    r0, r1, rw, rin = _axis_samples(height, k, values.shape[0], start[0], jump[0])
    c0, c1, cw, cin = _axis_samples(width, k, values.shape[1], start[1], jump[1])
    top = values[r0][:, c0] * (1 - cw) + values[r0][:, c1] * cw
    bottom = values[r1][:, c0] * (1 - cw) + values[r1][:, c1] * cw
    sampled = top * (1 - rw[:, None]) + bottom * rw[:, None]
    return sampled.astype(np.float32), rin[:, None] & cin[None, :]


def overlay(
    image: Any,
    act: Any,
    channel: int | str = "mean",
    *,
    cmap: str = "magma",
    alpha: float = 0.5,
    norm: str = "channel",
    layer: str = "",
    min_size: int = 224,
    caption: bool = True,
    grid: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> FeatureGrid:
    """Blend one channel (or the mean of all channels) of a feature map over the input picture.

    The map is normalized at its own resolution, then resized bilinearly to the picture, colorized
    (NaN / Inf keep their special colors) and alpha-blended: ``out = (1 - alpha) * image + alpha * heat``.

    Args:
        image: The model input for this sample (see :func:`as_rgb_image`), ``(H, W[, 3])``.
        act: ``(h, w, C)`` channels-last activation of ONE sample (``(h, w)`` is taken as one channel).
        channel: A channel index, or ``"mean"`` for the mean over channels.
        cmap: Colormap name.
        alpha: Heat-map opacity in [0, 1]; 0 returns the picture unchanged.
        norm: Normalization mode. ``channel``: the drawn map by its own range. The shared modes
            (``layer``, ``symmetric``, ``percentile``, ``raw``) take their range over the whole layer (all
            channels) when one channel is drawn, so overlays of two channels share one scale; over the
            mean map itself for ``"mean"``. The caption states the range the colorbar maps, and over what.
        layer: Layer name for the caption.
        min_size: Small pictures (e.g. 28x28 digits) are enlarged by an integer factor (nearest
            neighbour, at most 16x) until their shorter side reaches this; the heat map is resized
            bilinearly to the enlarged size. ``1`` keeps the input size.
        caption: Draw the caption strip and a colorbar above/below the blend.
        grid: ``((start_y, start_x), (jump_y, jump_x))``, the layer's receptive-field grid in input
            pixels (see ``convscope inspect``): each map position is drawn over the input pixel its field
            is centred on, and pixels no position covers get no heat. ``None`` stretches the map over
            the whole picture.

    Returns:
        A :class:`FeatureGrid`. Without ``caption``, ``image`` is exactly the (enlarged) picture,
        ``(k*H, k*W, 3)``; with it, a caption strip and a legend frame the picture.

    Raises:
        RenderError: bad image or activation shape.
        OptionError: bad channel, alpha, cmap or norm.
    """
    mode, cmap_name = check_mode(norm), resolve_cmap(cmap)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise OptionError(f"alpha must be a number in [0, 1], got {alpha!r}")
    rgb = as_rgb_image(image)
    arr = np.asarray(act)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.size == 0 or not np.issubdtype(arr.dtype, np.number):
        raise RenderError(
            f"overlay needs a (h, w, C) channels-last activation of one sample, got shape "
            f"{arr.shape}; for a batch pass act[i]"
        )
    n_channels = arr.shape[2]
    if isinstance(channel, str):
        if channel != "mean":
            raise OptionError(f"channel must be an index 0..{n_channels - 1} or 'mean', got {channel!r}")
        with np.errstate(invalid="ignore"):
            fmap = arr.astype(np.float32).mean(axis=2)
        shown, what = tuple(range(n_channels)), f"mean of {n_channels} channels"
        over = f"the {what}"
    else:
        if not is_int(channel) or not 0 <= channel < n_channels:
            raise OptionError(f"channel {channel!r} is out of range: valid are 0..{n_channels - 1} or 'mean'")
        fmap = arr[:, :, int(channel)].astype(np.float32)
        shown = (int(channel),)
        what = (
            f"channel {int(channel)} of {n_channels}" if n_channels > 1 else ""
        )  # a lone map (CAM) needs no label
        over = f"channel {int(channel)}" if n_channels > 1 else "the map"
    stats = layer_stats(arr, -1)
    if mode != "channel" and not isinstance(channel, str) and n_channels > 1:  # on the layer's scale
        span = value_span(
            arr,
            mode,
            over=f"the layer (all {n_channels} channels)",
            finite_range=stats.value_range,
            all_finite=stats.all_finite,
        )
    else:
        span = value_span(fmap, mode, over=over)
    normed = normalize(fmap[None], mode, span=span)
    k = min(16, max(1, -(-int(min_size) // max(1, min(rgb.shape[:2])))))
    if k > 1:
        rgb = np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)
    if grid is None:
        heat = apply_colormap(resize_map(normed.values[0], rgb.shape[0], rgb.shape[1]), cmap_name)
        a: Any = np.float32(alpha)
    else:
        placed, covered = place_map(normed.values[0], rgb.shape[0], rgb.shape[1], k, grid[0], grid[1])
        heat = apply_colormap(placed, cmap_name)
        a = np.where(covered, np.float32(alpha), np.float32(0.0))[..., None]
    blended = rgb.astype(np.float32) * (1 - a) + heat.astype(np.float32) * a
    out = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    fields = [
        f
        for f in (
            layer,
            str(arr.shape),
            what,
            f"norm={mode}",
            f"cmap={cmap_name}",
            f"alpha={fmt(alpha)}",
            span.caption(),
        )
        if f
    ]
    legend = Legend.from_span(cmap_name, span) if caption else None
    if legend is not None:
        framed, body, text = compose(out.shape[0], out.shape[1], fields, legend)
        body[...] = out
        out, caption_text = framed, text
    else:
        caption_text = "  ".join(fields)
    return FeatureGrid(
        image=out,
        layer=layer,
        shape=tuple(np.asarray(act).shape),
        norm=mode,
        cmap=cmap_name,
        channels=shown,
        n_channels=n_channels,
        value_range=stats.value_range,
        inactive=tuple(int(i) for i in np.flatnonzero(stats.inactive)),
        n_nan=stats.n_nan,
        n_inf=stats.n_inf,
        caption=caption_text,
        kind="overlay",
        legend=legend,
        span=span,
    )
