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
        raise OptionError(f"{option} {text!r} is not a list of numbers; expected e.g. 0.485,0.456,0.406") from None


def make_preprocess(value_range: str | None, mean: str | None, std: str | None, invert: bool,
                    model: Any = None) -> Any:
    """Build the :class:`~convscope.data.Preprocess` the CLI options describe.

    With no ``--range``/``--mean``/``--std`` and a zoo model name, the zoo model's own preprocessing is
    used (e.g. ``(x - 127) / 128`` for ``efficientnet-lite0``); otherwise pixels go to ``[0, 1]``.
    """
    import dataclasses

    from convscope.data import Preprocess, parse_range
    from convscope.models import zoo

    if value_range is None and mean is None and std is None and isinstance(model, str) and zoo.is_zoo_name(model):
        return dataclasses.replace(zoo.zoo_preprocess(model), invert=invert)

    kwargs: dict[str, Any] = {"invert": invert}
    if value_range is not None:
        kwargs["value_range"] = parse_range(value_range)
    if (mean is None) != (std is None):
        raise OptionError("--mean and --std go together; give both (e.g. --mean 0.5 --std 0.5) or neither")
    if mean is not None:
        kwargs["mean"] = _floats(mean, "--mean")
        kwargs["std"] = _floats(std, "--std")
    return Preprocess(**kwargs)


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
    save_arrays: bool = False,
    norm: str = "channel",
    cmap: str | None = None,
    channels: str | None = None,
    value_range: str | None = None,
    mean: str | None = None,
    std: str | None = None,
    invert: bool = False,
    overlay: str | None = None,
    cols: int | None = None,
    scale: int | None = None,
    max_channels: int = 64,
    labels: bool = True,
    batch_size: int = 32,
    input_shape: tuple[int, ...] | None = None,
    safe_mode: bool = True,
    progress: Callable[[int, str], Any] | None = None,
) -> list[Path]:
    """Load, validate everything, then probe and write the grids; returns the written paths."""
    from convscope.api import get_extractor, load_inputs_for
    from convscope.models.load import load_model
    from convscope.models.spec import data_format
    from convscope.present.maps import GridOptions, write_maps

    if batch_size < 1:
        raise OptionError(f"--batch-size must be >= 1, got {batch_size}")
    if overlay is not None and overlay != "mean" and not overlay.isdigit():
        raise OptionError(f"--overlay {overlay!r} is not valid; expected 'mean' or a channel index such as 3")
    options = GridOptions(norm=norm, cmap=cmap, channels=channels, cols=cols, scale=scale, labels=labels,
                          max_channels=max_channels, overlay=overlay)
    validate_grid_options(options)  # bad --norm/--cmap/--channels fail before any work
    keras_model = load_model(model, safe_mode=safe_mode)
    prep = make_preprocess(value_range, mean, std, invert, model)
    data = load_inputs_for(keras_model, list(inputs), preprocess=prep, input_shape=input_shape)
    log.info("inputs: %d (%s)", len(data.names), data.preprocess)
    extractor = get_extractor(keras_model, layers, input_shape=input_shape, batch_size=batch_size)
    n = len(data.names)
    bar = progress(n, "probing") if progress else None
    if bar is None:
        return write_maps(extractor, data.x, data.names, out, options, displays=data.display,
                          data_format=data_format(keras_model), save_arrays=save_arrays, batch_size=batch_size)
    with bar:
        task = bar.add_task("probing", total=n)
        return write_maps(extractor, data.x, data.names, out, options, displays=data.display,
                          data_format=data_format(keras_model), save_arrays=save_arrays, batch_size=batch_size,
                          on_batch=lambda k: bar.advance(task, k))
