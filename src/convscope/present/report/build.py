"""Collect a report: layer table, one probe pass per batch, a grid per (layer, input), predictions, extras."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
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


def _check_options(
    norm: str, cmap: str | None, channels: Any, max_channels: int, max_map_size: int | None
) -> tuple[str, str]:
    from convscope.render import parse_channel_spec, resolve_cmap
    from convscope.render.normalize import check_mode, default_cmap

    mode = check_mode(norm)
    cmap_name = resolve_cmap(cmap if cmap is not None else default_cmap(mode))
    for name, value in (("max_channels", max_channels), ("max_map_size", max_map_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise OptionError(f"{name} must be an integer >= 1, got {value!r}")
    if max_channels is None:
        raise OptionError("max_channels must be an integer >= 1, got None")
    if channels is not None:
        parse_channel_spec(channels)  # grammar only, nothing expanded; indices are checked per layer
    return mode, cmap_name


def describe_output(
    out: np.ndarray | Mapping[str, np.ndarray], class_names: Sequence[str] | None, k: int = 3
) -> tuple[str, tuple[tuple[str, float], ...]]:
    """One line about one sample's model output, and its top-``k`` ``(label, value)`` if it is a vector.

    ``out`` is the output, or ``{head: output}`` for a model with several outputs (then the line names
    every head, and the table holds the first head's classes, ``"head: label"``).

    The words and numbers come from :mod:`convscope.models.predictions`, as on every surface.
    """
    from convscope.models.predictions import head_predictions, top_classes

    if not isinstance(out, Mapping):
        pred = top_classes(out, class_names, k)
        return pred.headline(), tuple((s.label(), s.value) for s in pred.top)
    heads = head_predictions(out, class_names, k)
    if len(heads) == 1:
        pred = next(iter(heads.values()))
        return pred.headline(), tuple((s.label(), s.value) for s in pred.top)
    line = "; ".join(f"{name}: {pred.headline()}" for name, pred in heads.items())
    first, pred = next(iter(heads.items()))
    return line, tuple((f"{first}: {s.label()}", s.value) for s in pred.top)


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


def _render(
    act: np.ndarray,
    key: str,
    data_format: str,
    norm: str,
    cmap: str,
    channels: Any,
    max_channels: int,
    max_map_size: int | None,
    notes: Sequence[str] = (),
) -> tuple[Picture, int, int]:
    from convscope.render import render_activation

    small, factor = shrink(act, data_format, max_map_size)
    label = key if factor == 1 else f"{key}, maps at 1/{factor} size (mean of {factor}x{factor} blocks)"
    grid = render_activation(
        small,
        layer=label,
        data_format=data_format,
        norm=norm,
        cmap=cmap,
        channels=channels,
        max_channels=max_channels,
        notes=notes,
    )
    picture = Picture.from_grid(grid)
    if factor > 1:  # the picture's numbers are of the block means: state the layer's own too
        picture = Picture(
            picture.png,
            picture.width,
            picture.height,
            f"{grid.caption}. Full resolution: shape {tuple(act.shape)}, range {_finite_range(act)}",
        )
    return picture, len(grid.channels), factor


def _layer_entries(
    extractor: Any,
    x: Any,
    batch_size: int,
    workers: int,
    fmt: str,
    render_args: tuple[str, str, Any, int, int | None],
    outputs: list[dict[str, np.ndarray]],
) -> tuple[LayerEntry, ...]:
    """Probe ``x`` batch by batch and render every (layer, input) grid in a thread pool.

    The model's outputs are appended to ``outputs`` (one ``{head: array}`` per input).
    """
    from convscope.models.keys import ActivationKey
    from convscope.present.maps import layer_views
    from convscope.probe.extractor import Extractor

    views: dict[str, Any] | None = None
    grids: dict[str, list[Picture]] = {}
    shown: dict[str, int] = {}
    factors: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for rows, batch in extractor.iter_batches(x, batch_size):
            heads = Extractor.heads(batch)
            for key in [k for k in batch if Extractor.is_output(k)]:
                del batch[key]  # the model's outputs are not layer maps
            outputs.extend(
                {name: np.array(value[i]) for name, value in heads.items()}
                for i in range(rows.stop - rows.start)
                if heads
            )
            if views is None:  # token layers (T, C) are drawn as h x w maps, as maps and serve draw them
                views = layer_views(extractor.model, batch)
            jobs = []
            for i in range(rows.stop - rows.start):
                for key, value in batch.items():
                    act, _, layout, notes = _drawn(value[i], key, fmt, views.get(key))
                    jobs.append((key, pool.submit(_render, act, key, layout, *render_args, notes)))
            shapes.update({key: tuple(int(s) for s in value.shape[1:]) for key, value in batch.items()})
            for key, job in jobs:
                picture, count, factor = job.result()
                grids.setdefault(key, []).append(picture)
                shown[key], factors[key] = count, factor
            del batch, jobs  # free this batch's activations before the next forward pass
    classes = {node.path: type(node.layer).__name__ for node in extractor.nodes}
    return tuple(
        LayerEntry(
            key=key,
            anchor=anchor_id("layer", j, key),
            class_name=classes.get(ActivationKey.parse(key).path, "?"),
            shape=shapes[key],
            grids=tuple(pics),
            n_channels=_n_channels(shapes[key], fmt),
            n_shown=shown[key],
            factor=factors[key],
        )
        for j, (key, pics) in enumerate(grids.items())
    )


def _drawn(act: np.ndarray, key: str, fmt: str, view: Any) -> tuple[np.ndarray, str, str, list[str]]:
    """``(activation, key, data format, caption notes)`` as drawn: a token layer as its ``(h, w, C)`` maps."""
    if view is None:
        return act, key, fmt, []
    return view.to_maps(act), key, "channels_last", view.notes()


@dataclass(frozen=True)
class ReportOptions:
    """What a report shows and how (every field has a default; see :func:`build_report`).

    Attributes:
        layers: Layer selectors; ``None`` = every conv layer.
        scan: A folder written by ``convscope scan``: adds its layer health and top-k crops.
        compare: A folder written by ``convscope compare``: adds the dataset-shift section.
        similarity: A folder written by ``convscope similarity``: adds the CKA section.
        ablate: A folder written by ``convscope ablate``: adds the channels whose removal hurts each class.
        cam: Draw Grad-CAM overlays.
        norm: Normalization of the grids (``channel``, ``layer``, ``symmetric``, ``percentile``, ``raw``).
        cmap: Colormap (``None``: the mode's default).
        channels: Channel spec for every layer (``None``: the first ``max_channels``).
        max_channels: Cap on channels drawn per layer, which keeps big models' reports small.
        max_map_size: Feature maps with a side longer than this are drawn at 1/k size (means of k x k
            blocks; the page says so); ``None`` draws every map at full size.
        title: Page title (default: ``convscope report: <model name>``).
        batch_size: Inputs per forward pass.
        workers: Threads rendering and encoding pictures.
    """

    layers: Sequence[Any] | Any | None = None
    scan: Any = None
    compare: Any = None
    similarity: Any = None
    ablate: Any = None
    cam: bool = True
    norm: str = "channel"
    cmap: str | None = None
    channels: Any = None
    max_channels: int = 32
    max_map_size: int | None = 112
    title: str | None = None
    batch_size: int = 32
    workers: int = 2


def build_report(
    model: Any,
    inputs: Any,
    options: ReportOptions | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    **fields: Any,
) -> Report:
    """Build one self-contained HTML report of a model on some inputs.

    The page has a table of contents, the layer table (shapes, parameters, receptive fields), each
    input with its prediction and a Grad-CAM overlay, every selected layer's feature grid for every input
    (anchors per layer, normalization stated), and the layer health and top-k crops of a scan folder
    when ``options.scan`` is given.

    Args:
        model: A :class:`~convscope.models.resolve.ResolvedModel`, a ``keras.Model``, a ``.keras``/``.h5``
            path or a zoo name; its preprocessing reads the inputs and its class names name the predictions.
        inputs: Image paths, folders, ``.npy``/``.npz`` paths or arrays (see :func:`convscope.activations`).
        options: A :class:`ReportOptions`.
        input_shape: One sample's shape, for unbuilt or subclassed models.
        **fields: Shorthand for ``options`` fields (``build_report(m, x, norm="layer")``); not both.

    Returns:
        A :class:`~convscope.present.report.Report`; ``.save(path)`` writes it.

    Raises:
        ConvscopeError: bad model, inputs, layer selector or option (before any heavy work where possible).
    """
    from convscope.models.resolve import resolve_model
    from convscope.present.report import extras
    from convscope.present.report.diagnose_view import diagnose_sections
    from convscope.probe.cache import get_extractor

    if options is not None and fields:
        raise OptionError(
            f"give build_report either options= or option fields ({', '.join(fields)}), not both"
        )
    try:
        opts = options or ReportOptions(**fields)
    except TypeError:
        valid = ", ".join(f.name for f in dataclasses.fields(ReportOptions))
        raise OptionError(f"unknown report option(s) {', '.join(sorted(fields))}; valid: {valid}") from None
    mode, cmap_name = _check_options(
        opts.norm, opts.cmap, opts.channels, opts.max_channels, opts.max_map_size
    )
    if opts.batch_size < 1:
        raise OptionError(f"batch_size must be >= 1, got {opts.batch_size}")
    if opts.scan is not None and not Path(opts.scan).is_dir():
        raise OptionError(f"--scan {str(opts.scan)!r} is not a folder written by convscope scan")
    if opts.ablate is not None and not Path(opts.ablate).is_dir():
        raise OptionError(f"--ablate {str(opts.ablate)!r} is not a folder written by convscope ablate")
    resolved = resolve_model(model, input_shape=input_shape)
    data = resolved.load_inputs(inputs, input_shape=input_shape)
    extractor = get_extractor(
        resolved, opts.layers, input_shape=input_shape, include_output=True, batch_size=opts.batch_size
    )
    notes: list[str] = []
    info = resolved.info
    fmt = resolved.data_format
    n = len(data.names)
    outputs: list[dict[str, np.ndarray]] = []
    layer_entries = _layer_entries(
        extractor,
        data.x,
        opts.batch_size,
        opts.workers,
        fmt,
        (mode, cmap_name, opts.channels, opts.max_channels, opts.max_map_size),
        outputs,
    )
    cams = extras.cam_pictures(resolved.model, data, notes, resolved.label) if opts.cam else [None] * n
    input_entries = []
    for i, name in enumerate(data.names):
        text, top = (
            describe_output(outputs[i], resolved.class_names) if i < len(outputs) else ("no output", ())
        )
        display = data.display[i] if data.display is not None else None
        picture = Picture.from_array(display, f"input {name}") if display is not None else None
        input_entries.append(
            InputEntry(
                name=name,
                source=data.sources[i],
                anchor=anchor_id("input", i, name),
                picture=picture,
                prediction=text,
                top=top,
                cam=cams[i],
            )
        )
    capped = [e for e in layer_entries if e.n_shown < e.n_channels]
    if capped and opts.channels is not None:
        notes.insert(0, f"Channels drawn per layer: {opts.channels} (channels option).")
    elif capped:
        notes.insert(
            0,
            f"At most {opts.max_channels} channels per layer are drawn to keep the file small "
            f"({len(capped)} of {len(layer_entries)} layers have more; --max-channels "
            "raises the cap).",
        )
    shrunk = [e for e in layer_entries if e.factor > 1]
    if shrunk:
        notes.insert(
            1 if capped else 0,
            f"Feature maps larger than {opts.max_map_size} pixels are drawn smaller "
            f"(means of k x k blocks) in {len(shrunk)} layers; --max-map-size changes this.",
        )
    sections = [extras.scan_section(opts.scan)] if opts.scan is not None else []
    sections += diagnose_sections(opts.compare, opts.similarity)
    if opts.ablate is not None:
        sections.append(extras.ablate_section(opts.ablate))
    content = ReportContent(
        title=opts.title or f"convscope report: {resolved.name}",
        facts=_facts(resolved, data, layer_entries, mode, cmap_name),
        notes=tuple(notes),
        info=info,
        layers=layer_entries,
        inputs=tuple(input_entries),
        sections=tuple(sections),
        norm=mode,
        cmap=cmap_name,
    )
    return Report(html=render_page(content), content=content)


def _n_channels(shape: tuple[int, ...], fmt: str) -> int:
    if not shape:
        return 1
    if len(shape) == 1:
        return shape[0]
    return shape[0] if fmt == "channels_first" else shape[-1]


def _facts(
    resolved: Any, data: Any, layers: tuple[LayerEntry, ...], norm: str, cmap: str
) -> tuple[tuple[str, str], ...]:
    import keras

    from convscope import __version__

    classes = f"{len(resolved.class_names)} named" if resolved.class_names else "unnamed (class ids)"
    return (
        ("model", f"{resolved.name} (Keras name {resolved.model.name})"),
        ("classes", classes),
        ("inputs", f"{len(data.names)} ({data.preprocess})"),
        ("layers drawn", f"{len(layers)}"),
        ("grids", f"norm={norm}, cmap={cmap}"),
        (
            "made with",
            f"convscope {__version__}, Keras {keras.__version__} ({keras.backend.backend()} backend)",
        ),
        ("date", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    )
