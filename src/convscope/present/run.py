"""Command bodies shared by the CLI, tests and benchmarks (no printing here: callers print)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from convscope.errors import OptionError

log = logging.getLogger(__name__)


def _floats(text: str | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(t) for t in text.split(","))
    except ValueError:
        raise OptionError(
            f"{option} {text!r} is not a list of numbers; expected e.g. 0.485,0.456,0.406"
        ) from None


def preprocess_options(value_range: str | None, mean: str | None, std: str | None) -> Any:
    """The :class:`~convscope.data.Preprocess` that ``--range``/``--mean``/``--std`` describe, or ``None``.

    ``None`` (no option given) lets the resolved model keep its own preprocessing: a zoo model's (e.g.
    ``(x - 127) / 128`` for ``efficientnet-lite0``), else pixels to ``[0, 1]``. Pure: no backend import.
    """
    from convscope.data import Preprocess, parse_range

    if value_range is None and mean is None and std is None:
        return None
    kwargs: dict[str, Any] = {}
    if value_range is not None:
        kwargs["value_range"] = parse_range(value_range)
    if (mean is None) != (std is None):
        raise OptionError("--mean and --std go together; give both (e.g. --mean 0.5 --std 0.5) or neither")
    if mean is not None:
        kwargs["mean"] = _floats(mean, "--mean")
        kwargs["std"] = _floats(std, "--std")
    return Preprocess(**kwargs)


def read_options(window: str | None, slice_: str | None) -> Any:
    """The :class:`~convscope.data.readopts.ReadOptions` ``--window``/``--slice`` give, or ``None`` (neither).

    Pure: no backend import; raises :class:`OptionError` for a malformed or non-positive window or slice.
    """
    from convscope.data.readopts import ReadOptions

    if window is None and slice_ is None:
        return None
    return ReadOptions.parse(window=window, slice=slice_)


def resolve_cli(
    model: Any,
    *,
    value_range: str | None = None,
    mean: str | None = None,
    std: str | None = None,
    invert: bool = False,
    read: Any = None,
    input_shape: tuple[int, ...] | None = None,
    safe_mode: bool = True,
    labels: str | None = None,
    custom_objects: Any = None,
) -> Any:
    """Resolve a command's MODEL argument with its preprocessing options (validated before loading).

    ``read`` is the :class:`~convscope.data.readopts.ReadOptions` of ``--window``/``--slice`` (see
    :func:`read_options`); it joins the model's preprocessing (a zoo model's own, or ``--range``...).

    Returns:
        The :class:`~convscope.models.resolve.ResolvedModel` every command body works on.
    """
    from convscope.models.resolve import resolve_model

    prep = preprocess_options(value_range, mean, std)
    return resolve_model(
        model,
        preprocess=prep,
        invert=invert or None,
        read=read,
        labels=labels,
        input_shape=input_shape,
        safe_mode=safe_mode,
        custom_objects=custom_objects,
    )


def validate_grid_options(options: Any) -> None:
    """Raise :class:`OptionError` now for a bad norm, colormap or channel spec (before any work)."""
    from convscope.render import resolve_cmap
    from convscope.render.channels import check_spec
    from convscope.render.normalize import check_mode

    check_mode(options.norm)
    if options.cmap is not None:
        resolve_cmap(options.cmap)
    if options.channels is not None:
        check_spec(options.channels)  # grammar only, nothing expanded; indices are checked per layer
    for name in ("cols", "scale", "max_channels"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise OptionError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def run_maps(
    model: Any,
    inputs: Sequence[str],
    *,
    layers: Sequence[str] | None,
    out: Path,
    grid: Any = None,
    save_arrays: bool = False,
    batch_size: int = 32,
    input_shape: tuple[int, ...] | None = None,
    progress: Callable[[int, str], Any] | None = None,
) -> list[Path]:
    """Validate, probe and write the grids of ``convscope maps``; returns the written paths.

    Args:
        model: A :class:`~convscope.models.resolve.ResolvedModel` (or anything :func:`resolve_model` takes).
        inputs: Image paths, folders or arrays.
        layers: Layer selectors (``None``: every conv layer).
        out: Output folder: ``out/<input>/<layer>.png``.
        grid: A :class:`~convscope.present.maps.GridOptions` (how each grid is drawn).
        save_arrays: Also stream the raw activations to ``out/activations.npz``.
        batch_size: Inputs per forward pass.
        input_shape: One sample's shape, for an unbuilt or subclassed model.
        progress: ``progress(total, label)`` returning a rich ``Progress``, or ``None``.
    """
    from convscope.models.resolve import resolve_model
    from convscope.present.maps import GridOptions, write_map_groups
    from convscope.probe.cache import get_extractor
    from convscope.store.output import check_out

    options = grid if grid is not None else GridOptions()
    if batch_size < 1:
        raise OptionError(f"--batch-size must be >= 1, got {batch_size}")
    overlay = options.overlay
    if overlay is not None and overlay != "mean" and not overlay.isdigit():
        raise OptionError(f"--overlay {overlay!r} is not valid; expected 'mean' or a channel index such as 3")
    validate_grid_options(options)  # bad --norm/--cmap/--channels fail before any work
    resolved = resolve_model(model, input_shape=input_shape)
    protected = [*inputs, *([resolved.source] if resolved.source else [])]
    check_out(out, "maps", protected=protected)  # a forbidden --out fails before any work too
    groups = resolved.load_input_groups(list(inputs), input_shape=input_shape)  # one batch per input size
    n = sum(len(g.names) for g in groups)
    log.info("inputs: %d (%s)", n, groups[0].preprocess)
    extractor = get_extractor(resolved, layers, input_shape=input_shape, batch_size=batch_size)
    bar = progress(n, "probing") if progress else None
    if bar is None:
        return write_map_groups(
            extractor,
            groups,
            out,
            options,
            data_format=resolved.data_format,
            save_arrays=save_arrays,
            batch_size=batch_size,
            protected=protected,
        )
    with bar:
        task = bar.add_task("probing", total=n)
        return write_map_groups(
            extractor,
            groups,
            out,
            options,
            data_format=resolved.data_format,
            save_arrays=save_arrays,
            batch_size=batch_size,
            on_batch=lambda k: bar.advance(task, k),
            protected=protected,
        )
