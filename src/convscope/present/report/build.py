"""Collect a report: layer table, one probe pass per batch, a grid per (layer, input), predictions, extras."""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from convscope.errors import OptionError
from convscope.present.report.content import (
    InputEntry,
    LayerEntry,
    Picture,
    Report,
    ReportContent,
    anchor_id,
)
from convscope.present.report.page import render_page

log = logging.getLogger(__name__)


def _check_options(norm: str, cmap: str | None, channels: Any, max_channels: int, max_map_size: int | None) -> tuple[str, str]:
    from convscope.render import parse_channels, resolve_cmap
    from convscope.render.normalize import check_mode, default_cmap

    mode = check_mode(norm)
    cmap_name = resolve_cmap(cmap if cmap is not None else default_cmap(mode))
    for name, value in (("max_channels", max_channels), ("max_map_size", max_map_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise OptionError(f"{name} must be an integer >= 1, got {value!r}")
    if max_channels is None:
        raise OptionError("max_channels must be an integer >= 1, got None")
    if channels is not None:
        parse_channels(channels, 1 << 30)  # grammar only; indices are checked per layer
    return mode, cmap_name


def _class_names(model_arg: Any, given: Sequence[str] | None) -> Sequence[str] | None:
    if given is not None:
        return [str(c) for c in given]
    if isinstance(model_arg, str):
        from convscope.models.zoo import ZOO, resolve_zoo_name

        name = resolve_zoo_name(model_arg)
        if name is not None:
            return ZOO[name].class_names
    return None


def describe_output(out: np.ndarray, class_names: Sequence[str] | None, k: int = 3) -> tuple[str, tuple[tuple[str, float], ...]]:
    """One line about one sample's model output, and its top-``k`` ``(label, score)`` if it is a vector."""
    arr = np.asarray(out, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        finite = arr[np.isfinite(arr)]
        span = f"range [{finite.min():.4g}, {finite.max():.4g}]" if finite.size else "no finite values"
        return f"output shape {tuple(arr.shape)}, {span}", ()
    order = np.argsort(-np.nan_to_num(arr, nan=-np.inf), kind="stable")[:k]

    def label(i: int) -> str:
        return str(class_names[i]) if class_names is not None and i < len(class_names) else str(i)

    probs = bool(np.all((arr >= 0) & (arr <= 1)) and abs(arr.sum() - 1.0) < 1e-3)
    best = int(order[0])
    what = f"p = {arr[best]:.3f}" if probs else f"score {arr[best]:.4g}"
    return f"predicted class {label(best)} ({what})", tuple((label(int(i)), float(arr[i])) for i in order)


def shrink(act: np.ndarray, data_format: str, limit: int | None) -> tuple[np.ndarray, int]:
    """Average 2-D maps down by an integer factor until no side exceeds ``limit`` pixels.

    Returns:
        ``(act, 1)`` unchanged when no shrinking is needed (or ``limit`` is ``None`` or the activation is
        not ``(H, W, C)`` / ``(C, H, W)``), else the block-mean maps and the factor.
    """
    from convscope.render.grid import block_mean

    if limit is None or act.ndim != 3:
        return act, 1
    last = data_format != "channels_first"
    factor = -(-max(act.shape[:2] if last else act.shape[1:]) // limit)
    if factor <= 1:
        return act, 1
    maps = np.moveaxis(act, -1, 0) if last else act
    small = block_mean(np.asarray(maps, dtype=np.float32), factor)
    return (np.moveaxis(small, 0, -1) if last else small), factor


def _finite_range(act: np.ndarray) -> str:
    finite = act[np.isfinite(act)]
    return f"[{float(finite.min()):.4g}, {float(finite.max()):.4g}]" if finite.size else "no finite values"


def _render(act: np.ndarray, key: str, data_format: str, norm: str, cmap: str, channels: Any, max_channels: int,
            max_map_size: int | None) -> tuple[Picture, int, int]:
    from convscope.render import render_activation

    small, factor = shrink(act, data_format, max_map_size)
    label = key if factor == 1 else f"{key}, maps at 1/{factor} size (mean of {factor}x{factor} blocks)"
    grid = render_activation(small, layer=label, data_format=data_format, norm=norm, cmap=cmap, channels=channels,
                             max_channels=max_channels)
    picture = Picture.from_grid(grid)
    if factor > 1:  # the picture's numbers are of the block means: state the layer's own too
        picture = Picture(picture.png, picture.width, picture.height,
                          f"{grid.caption}. Full resolution: shape {tuple(act.shape)}, range {_finite_range(act)}")
    return picture, len(grid.channels), factor


def _layer_entries(extractor: Any, x: Any, batch_size: int, workers: int, fmt: str, render_args: tuple[Any, ...],
                   outputs: list[np.ndarray]) -> tuple[LayerEntry, ...]:
    """Probe ``x`` batch by batch and render every (layer, input) grid in a thread pool.

    The model's outputs are appended to ``outputs`` (one array per input).
    """
    from convscope.probe.extractor import Extractor

    grids: dict[str, list[Picture]] = {}
    shown: dict[str, int] = {}
    factors: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for rows, batch in extractor.iter_batches(x, batch_size):
            out = batch.pop(Extractor.OUTPUT_KEY, None)
            if out is not None:
                outputs.extend(np.array(out[i]) for i in range(len(out)))
            jobs = [(key, pool.submit(_render, value[i], key, fmt, *render_args))
                    for i in range(rows.stop - rows.start) for key, value in batch.items()]
            shapes.update({key: tuple(int(s) for s in value.shape[1:]) for key, value in batch.items()})
            for key, job in jobs:
                picture, count, factor = job.result()
                grids.setdefault(key, []).append(picture)
                shown[key], factors[key] = count, factor
            del batch, jobs  # free this batch's activations before the next forward pass
    classes = {node.path: type(node.layer).__name__ for node in extractor.nodes}
    return tuple(
        LayerEntry(key=key, anchor=anchor_id("layer", j, key), class_name=classes.get(key.split("@")[0].split("[")[0], "?"),
                   shape=shapes[key], grids=tuple(pics), n_channels=_n_channels(shapes[key], fmt), n_shown=shown[key],
                   factor=factors[key])
        for j, (key, pics) in enumerate(grids.items())
    )


def build_report(
    model: Any,
    inputs: Any,
    *,
    layers: Sequence[Any] | Any | None = None,
    scan: Any = None,
    cam: bool = True,
    norm: str = "channel",
    cmap: str | None = None,
    channels: Any = None,
    max_channels: int = 32,
    max_map_size: int | None = 112,
    preprocess: Any = None,
    input_shape: tuple[int, ...] | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    batch_size: int = 32,
    safe_mode: bool = True,
    workers: int = 2,
    custom_objects: Any = None,
) -> Report:
    """Build one self-contained HTML report of a model on some inputs.

    The page has a table of contents, the layer table (shapes, parameters, receptive fields), each
    input with its prediction (and a Grad-CAM overlay when :mod:`convscope.attribution` is installed),
    every selected layer's feature grid for every input (anchors per layer, normalization stated), and
    the layer health and top-k crops of a scan folder when ``scan`` is given.

    Args:
        model: A ``keras.Model``, a ``.keras``/``.h5`` path or a zoo name (``mnist-cnn``).
        inputs: Image paths, folders, ``.npy``/``.npz`` paths or arrays (see :func:`convscope.activations`).
        layers: Layer selectors; ``None`` = every conv layer.
        scan: A folder written by ``convscope scan`` (needs :mod:`convscope.scan`).
        cam: Draw Grad-CAM overlays when :mod:`convscope.attribution` is installed.
        norm: Normalization of the grids (``channel``, ``layer``, ``symmetric``, ``percentile``, ``raw``).
        cmap: Colormap (``None``: the mode's default).
        channels: Channel spec for every layer (``None``: the first ``max_channels``).
        max_channels: Cap on channels drawn per layer, which keeps big models' reports small.
        max_map_size: Feature maps with a side longer than this are drawn at 1/k size (means of k x k
            blocks; the page says so); ``None`` draws every map at full size.
        preprocess: A :class:`~convscope.data.Preprocess` for image files.
        input_shape: One sample's shape, for unbuilt or subclassed models.
        class_names: Labels of the output classes (zoo models know theirs).
        title: Page title (default: ``convscope report: <model name>``).
        batch_size: Inputs per forward pass.
        safe_mode: Keras safe mode when loading a file.
        workers: Threads rendering and encoding pictures.
        custom_objects: Custom classes by name, or the ``.py`` file defining them (see ``load_model``).

    Returns:
        A :class:`~convscope.present.report.Report`; ``.save(path)`` writes it.

    Raises:
        ConvscopeError: bad model, inputs, layer selector or option (before any heavy work where possible).
    """
    from convscope.api import get_extractor, load_inputs_for
    from convscope.models.load import load_model
    from convscope.models.spec import data_format as model_data_format
    from convscope.present.report import extras

    mode, cmap_name = _check_options(norm, cmap, channels, max_channels, max_map_size)
    if batch_size < 1:
        raise OptionError(f"batch_size must be >= 1, got {batch_size}")
    scan_loader = extras.scan_loader(scan) if scan is not None else None  # fails now if unavailable
    keras_model = load_model(model, safe_mode=safe_mode, custom_objects=custom_objects)
    data = load_inputs_for(keras_model, inputs, preprocess=preprocess, input_shape=input_shape)
    extractor = get_extractor(keras_model, layers, input_shape=input_shape, include_output=True, batch_size=batch_size)
    notes: list[str] = []
    info = extras.layer_table(keras_model, input_shape, notes)
    fmt = model_data_format(keras_model)
    names = _class_names(model, class_names)
    n = len(data.names)
    outputs: list[np.ndarray] = []
    layer_entries = _layer_entries(extractor, data.x, batch_size, workers, fmt,
                                   (mode, cmap_name, channels, max_channels, max_map_size), outputs)
    cams = extras.cam_pictures(keras_model, data, notes, names) if cam else [None] * n
    input_entries = []
    for i, name in enumerate(data.names):
        text, top = describe_output(outputs[i], names) if i < len(outputs) else ("no output", ())
        display = data.display[i] if data.display is not None else None
        picture = Picture.from_array(display, f"input {name}") if display is not None else None
        input_entries.append(InputEntry(name=name, source=data.sources[i], anchor=anchor_id("input", i, name),
                                        picture=picture, prediction=text, top=top, cam=cams[i]))
    capped = [e for e in layer_entries if e.n_shown < e.n_channels]
    if capped and channels is not None:
        notes.insert(0, f"Channels drawn per layer: {channels} (channels option).")
    elif capped:
        notes.insert(0, f"At most {max_channels} channels per layer are drawn to keep the file small "
                        f"({len(capped)} of {len(layer_entries)} layers have more; max_channels / --max-channels "
                        "raises the cap).")
    shrunk = [e for e in layer_entries if e.factor > 1]
    if shrunk:
        notes.insert(1 if capped else 0, f"Feature maps larger than {max_map_size} pixels are drawn smaller (means of "
                     f"k x k blocks) in {len(shrunk)} layers; max_map_size / --max-map-size changes this.")
    sections = [extras.scan_section(scan_loader, scan, notes)] if scan_loader is not None else []
    content = ReportContent(
        title=title or f"convscope report: {keras_model.name}",
        facts=_facts(keras_model, data, layer_entries, mode, cmap_name),
        notes=tuple(notes), info=info, layers=layer_entries, inputs=tuple(input_entries),
        sections=tuple(sections), norm=mode, cmap=cmap_name,
    )
    return Report(html=render_page(content), content=content)


def _n_channels(shape: tuple[int, ...], fmt: str) -> int:
    if not shape:
        return 1
    if len(shape) == 1:
        return shape[0]
    return shape[0] if fmt == "channels_first" else shape[-1]


def _facts(model: Any, data: Any, layers: tuple[LayerEntry, ...], norm: str, cmap: str) -> tuple[tuple[str, str], ...]:
    import keras

    from convscope import __version__

    return (
        ("model", str(model.name)),
        ("inputs", f"{len(data.names)} ({data.preprocess})"),
        ("layers drawn", f"{len(layers)}"),
        ("grids", f"norm={norm}, cmap={cmap}"),
        ("made with", f"convscope {__version__}, Keras {keras.__version__} ({keras.backend.backend()} backend)"),
        ("date", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    )
