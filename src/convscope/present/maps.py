"""Feature-map grids for many (layer, input) pairs, written to a folder all-or-nothing.

This is the shared back end of ``convscope maps`` and ``convscope demo``: one forward pass per batch,
optional streaming of the raw activations to ``activations.npz``, one PNG per (layer, input), rendered
in a small thread pool (PNG encoding releases the GIL). Files are staged in a hidden folder next to the
output folder and moved into place only when everything succeeded (:class:`convscope.store.output.OutputFolder`,
which also applies the rule of where convscope may write).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convscope.data.names import key_filename
from convscope.errors import FieldsUnavailable
from convscope.models.grids import Placement, TokenView, field_grids, token_views
from convscope.probe.extractor import Extractor
from convscope.store.npzstream import NpzStream
from convscope.store.output import OutputFolder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridOptions:
    """How each grid is drawn (see :func:`convscope.render.render_activation`)."""

    norm: str = "channel"
    cmap: str | None = None
    channels: str | None = None
    cols: int | None = None
    rows: int | None = None
    scale: int | None = None
    labels: bool = True
    max_channels: int = 64
    overlay: str | None = None  # None, "mean" or a channel index as text
    tokens: tuple[int, int] | None = None  # --tokens HxW: the grid of token layers (None: found per model)
    extra: dict[str, Any] = field(default_factory=dict)

    def render_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``render_activation``."""
        return dict(
            norm=self.norm,
            cmap=self.cmap,
            channels=self.channels,
            cols=self.cols,
            rows=self.rows,
            scale=self.scale,
            labels=self.labels,
            max_channels=self.max_channels,
            **self.extra,
        )


slug = key_filename  # the one file-name form of a key (convscope.data.names)


def overlay_grids(model: Any, keys: Iterable[str]) -> dict[str, Placement]:
    """``{key: ((start_y, start_x), (jump_y, jump_x))}`` of the 2D keys (:func:`convscope.models.grids.field_grids`).

    Overlays use it to put each map position over the input pixel its receptive field is centred on.
    Returns ``{}`` when the layer table cannot be computed (overlays then stretch the map over the picture).
    """
    try:
        return {key: grid.placement for key, grid in field_grids(model, keys, ndim=2).items()}
    except FieldsUnavailable as exc:  # overlays still work without it; say why at debug level
        log.debug("overlays stretch the maps: %s", exc)
        return {}


def layer_views(
    model: Any, batch: dict[str, np.ndarray], tokens: tuple[int, int] | None = None
) -> dict[str, TokenView]:
    """The token layers of one batch of activations and how each is drawn (:func:`~convscope.models.grids.token_views`).

    Raises:
        OptionError: ``tokens`` (``--tokens``) fits none of the batch's token layers.
    """
    from convscope.models.spec import data_format

    shapes = {key: value.shape[1:] for key, value in batch.items()}
    views = token_views(model, shapes, given=tokens, data_format=data_format(model))
    for key, view in views.items():
        log.info("%s: %s", key, view.describe())
    return views


def _render_one(
    act: np.ndarray,
    key: str,
    data_format: str,
    options: GridOptions,
    display: np.ndarray | None,
    grid: Placement | None,
    view: TokenView | None = None,
) -> list[tuple[str, bytes]]:
    from convscope.render import overlay, render_activation

    label, notes = key, []
    if view is not None:  # a token layer (T, C): h x w maps, channels last whatever the model's format
        act, notes, data_format = view.to_maps(act), view.notes(), "channels_last"
        label = f"{key} ({view.tokens.h}x{view.tokens.w} token maps)"
        grid = view.grid.placement if view.grid is not None else None
    picture = render_activation(
        act, layer=key, data_format=data_format, notes=notes, **options.render_kwargs()
    )
    files = [(f"{slug(key)}.png", picture.to_png())]
    if options.overlay is not None and display is not None and act.ndim == 3:
        spatial = np.moveaxis(act, 0, -1) if data_format == "channels_first" else act
        channel: int | str = "mean" if options.overlay == "mean" else int(options.overlay)
        blend = overlay(display, spatial, channel, layer=label, grid=grid)
        files.append((f"{slug(key)}.overlay.png", blend.to_png()))
    return files


def write_maps(
    extractor: Extractor,
    x: Any,
    names: Iterable[str],
    out: str | Path,
    options: GridOptions,
    *,
    displays: Iterable[np.ndarray | None] | None = None,
    data_format: str = "channels_last",
    save_arrays: bool = False,
    batch_size: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    workers: int = 2,
    command: str = "maps",
    protected: Iterable[Any] = (),
    arrays_name: str = "activations.npz",
) -> list[Path]:
    """Probe ``x`` and write one PNG per (layer, input) under ``out/<input name>/<layer>.png``.

    Args:
        extractor: The (cached) extractor for the model and layer set.
        x: Model input ``(N, ...)`` (or a list of arrays for multi-input models).
        names: One unique, file-name-safe name per input row.
        out: Output folder (created).
        options: Grid options.
        displays: Per input, the uint8 image at model resolution for overlays (or ``None``).
        data_format: The model's data format, for reading channel axes.
        save_arrays: Also stream the raw activations to ``out/activations.npz`` (keys: layer paths).
        batch_size: Rows per forward pass.
        on_batch: Called with the number of rows after each batch (progress bars).
        workers: Threads rendering and encoding PNGs.
        command: The command writing ``out`` (recorded in its marker file).
        protected: The inputs: ``out`` may not overlap them (see :mod:`convscope.store.output`).
        arrays_name: File name of the ``.npz`` under ``out``.

    Returns:
        The written paths, PNGs in (input, layer) order, then the ``.npz`` if requested.
    """
    out = Path(out)
    names = list(names)
    displays = list(displays) if displays is not None else [None] * len(names)
    written: list[Path] = []
    views: dict[str, TokenView] | None = None
    with OutputFolder(out, command, protected=protected) as stage:
        stream = NpzStream(stage / arrays_name, len(names)) if save_arrays else None
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for rows, batch in extractor.iter_batches(x, batch_size):
                    for key in [k for k in batch if Extractor.is_output(k)]:
                        del batch[key]  # the model's outputs are not layer maps
                    if views is None:  # once: the layers' shapes are the same in every batch
                        views = layer_views(extractor.model, batch, options.tokens)
                    if stream is not None:
                        stream.write(rows, batch)
                    grids = overlay_grids(extractor.model, batch) if options.overlay is not None else {}
                    written += _render_batch(
                        pool, rows, batch, names, displays, grids, stage, out, data_format, options, views
                    )
                    del batch  # free this batch's activations before the next forward pass
                    if on_batch is not None:
                        on_batch(rows.stop - rows.start)
            if stream is not None:
                stream.close()
                written.append(out / arrays_name)
        except BaseException:
            if stream is not None:
                stream.abort()
            raise
    return written


def write_map_groups(
    extractor: Extractor,
    groups: Sequence[Any],
    out: str | Path,
    options: GridOptions,
    *,
    data_format: str = "channels_last",
    save_arrays: bool = False,
    batch_size: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    protected: Iterable[Any] = (),
) -> list[Path]:
    """:func:`write_maps` for inputs loaded one batch per size (:func:`convscope.data.load_input_groups`).

    Each group is probed as its own batch. The paths come back as if all inputs were one batch: PNGs per
    input in input order, then the ``.npz`` files (``activations.npz`` for one group, else one
    ``activations.<H>x<W>.npz`` per size: activations of different sizes cannot share an array).
    """
    out = Path(out)
    written: list[Path] = []
    for group in groups:
        shape = [int(d) for d in np.shape(group.x)[1:]] if not isinstance(group.x, list) else []
        tag = "x".join(map(str, shape[:-1] if len(shape) > 1 else shape))
        written += write_maps(
            extractor,
            group.x,
            group.names,
            out,
            options,
            displays=group.display,
            data_format=data_format,
            save_arrays=save_arrays,
            batch_size=batch_size,
            on_batch=on_batch,
            protected=list(protected),
            arrays_name="activations.npz" if len(groups) == 1 else f"activations.{tag}.npz",
        )
    if len(groups) == 1:
        return written
    place = {
        name: (getattr(g, "positions", None) or range(len(g.names)))[i]
        for g in groups
        for i, name in enumerate(g.names)
    }
    files = sorted(
        (p for p in written if p.parent != out), key=lambda p: place.get(p.parent.name, len(place))
    )
    return files + [p for p in written if p.parent == out]


def _render_batch(
    pool: ThreadPoolExecutor,
    rows: slice,
    batch: dict[str, np.ndarray],
    names: list[str],
    displays: list[np.ndarray | None],
    grids: dict[str, Placement],
    stage: Path,
    out: Path,
    data_format: str,
    options: GridOptions,
    views: dict[str, TokenView],
) -> list[Path]:
    """Render every (input, layer) of one batch in the pool and write the PNGs into ``stage``."""
    jobs = []
    for i in range(rows.start, rows.stop):
        for key, value in batch.items():
            job = pool.submit(
                _render_one,
                value[i - rows.start],
                key,
                data_format,
                options,
                displays[i],
                grids.get(key),
                views.get(key),
            )
            jobs.append((names[i], job))
    written = []
    for name, job in jobs:
        folder = stage / name
        folder.mkdir(exist_ok=True)
        for filename, data in job.result():
            (folder / filename).write_bytes(data)
            written.append(out / name / filename)
    return written
