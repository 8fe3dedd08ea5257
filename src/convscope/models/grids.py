"""The grid of an activation: the one home of "where does map position i sit on the input".

:func:`field_grid` / :func:`field_grids` read it from the layer table (:mod:`convscope.models.inspect`, whose
receptive fields come from :mod:`convscope.models.fields`), for an activation named by its key
(:mod:`convscope.models.keys`).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from convscope.errors import FieldsUnavailable
from convscope.models.inspect import LayerInfo, ModelInfo, inspect_model
from convscope.models.keys import ActivationKey

logger = logging.getLogger(__name__)

__all__ = ["Grid", "Placement", "field_grid", "field_grids", "field_table"]


# --------------------------------------------------------------------------------------------------
# The grid of an activation: the one home of "where does map position i sit on the input"
# --------------------------------------------------------------------------------------------------

Placement = tuple[tuple[float, ...], tuple[float, ...]]
"""``((start_y, start_x), (step_y, step_x))``: the form ``render.overlay(grid=...)`` and the CAM resampler take."""


@dataclass(frozen=True)
class Grid:
    """Where the positions of one activation sit on the input, per spatial axis, in input pixels.

    Position ``i`` along an axis is centred on input pixel ``start + i * step`` and sees ``size`` pixels.

    Attributes:
        start: Centre of position 0's receptive field (fractional for even sizes, negative in the padding).
        step: Input pixels between neighbouring positions (the field's jump).
        size: Extent of one position's receptive field.
        exact: False when the field is an estimate (``rf_exact`` of the layer table).
    """

    start: tuple[float, ...]
    step: tuple[float, ...]
    size: tuple[float, ...]
    exact: bool = True

    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 for an image layer)."""
        return len(self.start)

    @property
    def placement(self) -> Placement:
        """``((start...), (step...))`` as floats, for :func:`convscope.render.overlay` and the CAM resampler."""
        return tuple(float(v) for v in self.start), tuple(float(v) for v in self.step)


_TABLES: weakref.WeakKeyDictionary[Any, dict[str, ModelInfo | FieldsUnavailable]] = (
    weakref.WeakKeyDictionary()
)


def field_table(model: Any, input_shape: Any = None) -> ModelInfo:
    """The layer table of ``model`` (:func:`~convscope.models.inspect.inspect_model`), kept per model and shape.

    Args:
        model: A Keras model (never modified; an unbuilt one given ``input_shape`` is built by the probe).
        input_shape: One sample's shape, when the model does not declare it.

    Raises:
        FieldsUnavailable: The table cannot be computed (whatever the model raised is chained); the
            failure is kept too, so asking again does not run the model again.
    """

    shape_key = repr(None if input_shape is None else tuple(input_shape))
    try:
        per_model = _TABLES.setdefault(model, {})
    except TypeError:  # not weak-referenceable: compute every time
        per_model = {}
    if shape_key not in per_model:
        try:
            per_model[shape_key] = inspect_model(model, input_shape=input_shape)
        except Exception as exc:  # noqa: BLE001 - the user's model code may raise anything while probed
            error = FieldsUnavailable(
                f"no receptive-field grid for model {getattr(model, 'name', model)!r}: "
                f"{type(exc).__name__}: {exc}"
            )
            error.__cause__ = exc
            per_model[shape_key] = error
    found = per_model[shape_key]
    if isinstance(found, FieldsUnavailable):
        raise FieldsUnavailable(str(found)) from found.__cause__
    return found


def _grid_of(row: LayerInfo | None, key: ActivationKey) -> Grid | None:
    if (
        row is None
        or key.output_index != 0
        or row.rf_size is None
        or row.rf_jump is None
        or row.rf_start is None
    ):
        return None
    return Grid(tuple(row.rf_start), tuple(row.rf_jump), tuple(row.rf_size), row.rf_exact)


def _as_key(key: str | ActivationKey) -> ActivationKey:
    return key if isinstance(key, ActivationKey) else ActivationKey.parse(key)


def _as_table(source: Any, input_shape: Any) -> ModelInfo:

    return source if isinstance(source, ModelInfo) else field_table(source, input_shape)


def field_grid(source: Any, key: str | ActivationKey, input_shape: Any = None) -> Grid | None:
    """The grid of the activation ``key`` (``path``, ``path@call``, ``path[0]`` ...).

    Args:
        source: A layer table (:class:`~convscope.models.inspect.ModelInfo`) or a Keras model (its table
            is computed once by :func:`field_table`).
        key: The activation key, as text or parsed.
        input_shape: One sample's shape, for a model that does not declare it (ignored with a table).

    Returns:
        The :class:`Grid`, or ``None`` where it is unknown: no such layer call in the table, an output
        other than the first (the table describes first outputs), or no spatial field (not spatial, or
        every value sees the whole input: after Flatten, Dense, global pooling).

    Raises:
        FieldsUnavailable: ``source`` is a model whose table cannot be computed.
    """
    parsed = _as_key(key)
    table = _as_table(source, input_shape)
    row = next((r for r in table.layers if r.path == parsed.path and r.call == parsed.call_index), None)
    return _grid_of(row, parsed)


def field_grids(
    source: Any, keys: Iterable[str | ActivationKey], input_shape: Any = None, ndim: int | None = None
) -> dict[str, Grid]:
    """``{key: Grid}`` for the keys whose grid is known (see :func:`field_grid`), optionally of ``ndim`` axes only.

    Raises:
        FieldsUnavailable: ``source`` is a model whose table cannot be computed.
    """
    table = _as_table(source, input_shape)
    rows: dict[tuple[str, int], LayerInfo] = {}
    for row in table.layers:
        rows.setdefault((row.path, row.call), row)
    grids = {}
    for key in keys:
        parsed = _as_key(key)
        grid = _grid_of(rows.get((parsed.path, parsed.call_index)), parsed)
        if grid is not None and (ndim is None or grid.ndim == ndim):
            grids[str(key)] = grid
    return grids
