"""The grid of an activation: the one home of "where does map position i sit on the input".

:func:`field_grid` / :func:`field_grids` read it from the layer table (:mod:`convscope.models.inspect`, whose
receptive fields come from :mod:`convscope.models.fields`), for an activation named by its key
(:mod:`convscope.models.keys`).

Token layers (a ViT's ``(T, C)`` outputs) have no grid of their own: :func:`token_views` decides which of
them are drawn as ``h x w`` maps (the rule is :func:`convscope.models.tokens.token_grid`, fed with the
sizes of the model's spatial layers) and where those maps sit on the input (the grid of the spatial layer
of that size, usually the patch embedding), for every surface that draws them (``maps``, ``serve``,
``scan``, the report).
"""

from __future__ import annotations

import logging
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convscope.errors import FieldsUnavailable, OptionError
from convscope.models.inspect import LayerInfo, ModelInfo, inspect_model
from convscope.models.keys import ActivationKey
from convscope.models.tokens import TokenGrid, token_grid

logger = logging.getLogger(__name__)

__all__ = ["Grid", "Placement", "TokenView", "field_grid", "field_grids", "field_table", "token_views"]


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


# --------------------------------------------------------------------------------------------------
# Token layers drawn as maps: which (T, C) layers, which h x w grid, where on the input
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenView:
    """A token layer ``(T, C)`` drawn as ``h x w`` maps of ``C`` channels.

    Attributes:
        key: The activation key.
        tokens: The grid (:class:`~convscope.models.tokens.TokenGrid`: ``h``, ``w``, the leading ``extra``
            tokens set aside, and how it was found).
        grid: Where the maps sit on the input: the grid of the spatial layer with the same ``h x w`` (the
            patch embedding), or ``None`` when no such layer has a known receptive field (the maps are then
            stretched over the input).
        origin: Path of that spatial layer, or ``None``.
    """

    key: str
    tokens: TokenGrid
    grid: Grid | None = None
    origin: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(h, w)``."""
        return self.tokens.h, self.tokens.w

    def to_maps(self, act: Any) -> np.ndarray:
        """One sample ``(T, C) -> (h, w, C)``, or a batch ``(N, T, C) -> (N, h, w, C)`` (extra tokens dropped)."""
        arr = np.asarray(act)
        if arr.ndim == 2:
            return self.tokens.to_grid(arr[None])[0]
        return self.tokens.to_grid(arr)

    def notes(self) -> list[str]:
        """Caption fields: ``["65 tokens as 8x8 maps", "1 extra token set aside", "on patch_embed's grid"]``."""
        t = self.tokens
        how = {"given": " (--tokens)", "square": " (square)"}.get(t.source, "")
        fields = [f"{t.n_tokens} tokens as {t.h}x{t.w} maps{how}"]
        if t.extra:
            fields.append(f"{t.extra} extra token{'s' if t.extra != 1 else ''} set aside")
        fields.append(f"on {self.origin}'s grid" if self.grid is not None and self.origin else "stretched")
        return fields

    def describe(self) -> str:
        """``"65 tokens as 8x8 maps, 1 extra token set aside, on patch_embed's grid"``."""
        return ", ".join(self.notes())


def _spatial_rows(table: ModelInfo, data_format: str) -> list[tuple[int, LayerInfo, tuple[int, int]]]:
    """``(row index, row, (h, w))`` of the 2-D image layers (4-D outputs of known size), in table order."""
    found = []
    for i, row in enumerate(table.layers):
        shape = row.output_shape
        if shape is None or len(shape) != 4:
            continue
        h, w = (shape[2], shape[3]) if data_format == "channels_first" else (shape[1], shape[2])
        if h is not None and w is not None and int(h) * int(w) > 1:
            found.append((i, row, (int(h), int(w))))
    return found


def token_views(
    source: Any,
    shapes: Mapping[str, Sequence[int]],
    *,
    given: tuple[int, int] | None = None,
    input_shape: Any = None,
    data_format: str = "channels_last",
) -> dict[str, TokenView]:
    """The token layers among ``shapes`` and how each is drawn as maps.

    A layer is a token layer when one sample's activation is ``(T, C)`` and
    :func:`~convscope.models.tokens.token_grid` finds an ``h x w`` grid for ``T``: from ``given``
    (``--tokens HxW``), else from the sizes of the model's 2-D layers before it (latest first: the patch
    embedding), else from ``T`` or ``T - 1`` being a square. Without ``given`` only models with an image
    input are considered, and a layer with a 1-D receptive field (a Conv1D sequence) keeps its strips.

    Args:
        source: A layer table or a Keras model (its table is computed once; when it cannot be, only
            ``given`` makes token maps, stretched over the input).
        shapes: ``{key: one sample's shape}`` of the activations to draw.
        given: ``(h, w)`` from ``--tokens``; it applies to every ``(T, C)`` layer it fits.
        input_shape: One sample's shape, for a model that does not declare it.
        data_format: The model's data format (where ``h, w`` sit in a 4-D output).

    Returns:
        ``{key: TokenView}`` for the token layers (empty when there are none).

    Raises:
        OptionError: ``given`` fits none of the ``(T, C)`` layers (the message names their token counts).
    """
    candidates = {
        str(k): int(s[0]) for k, s in shapes.items() if len(s) == 2 and int(s[0]) > 1 and int(s[1]) >= 1
    }
    try:
        table: ModelInfo | None = _as_table(source, input_shape)
    except FieldsUnavailable as exc:
        logger.debug("token layers are stretched over the input: %s", exc)
        table = None
    if given is None and (table is None or len(table.input_shape) != 4):
        candidates = {}  # not an image model (or unknown): only a grid the user gives
    spatial = _spatial_rows(table, data_format) if table is not None else []
    position = {(row.path, row.call): i for i, row in enumerate(table.layers)} if table is not None else {}
    views: dict[str, TokenView] = {}
    misfits: dict[int, OptionError] = {}
    for key, t in candidates.items():
        parsed = _as_key(key)
        at = position.get((parsed.path, parsed.call_index))
        row = table.layers[at] if table is not None and at is not None else None
        if given is None and row is not None and row.rf_size is not None and len(row.rf_size) == 1:
            continue  # a Conv1D-like sequence with its own 1-D field: strips, not a grid
        before = [entry for entry in spatial if at is None or entry[0] < at][::-1]
        try:
            found = token_grid(t, [hw for _, _, hw in before], given)
        except OptionError as exc:
            misfits.setdefault(t, exc)
            continue
        if found is None:
            continue
        origin = next((r for _, r, hw in before if hw == (found.h, found.w)), None)
        grid = _grid_of(origin, ActivationKey(origin.path)) if origin is not None else None
        views[key] = TokenView(key, found, grid, origin.path if grid is not None and origin else None)
    if given is not None and not views:
        if misfits:
            counts = [t for t, _ in Counter(candidates.values()).most_common() if t in misfits]
            others = ", ".join(f"{t}" for t in counts[1:4])
            more = f"; other token counts here: {others}" if others else ""
            raise OptionError(f"{misfits[counts[0]]}{more}")
        raise OptionError(
            f"--tokens {given[0]}x{given[1]}: none of the layers drawn has a (T, C) token output; "
            "it applies to layers such as a ViT's transformer blocks (select them with --layer)"
        )
    if given is not None and misfits:
        logger.info("--tokens %dx%d does not fit %d token layer(s); drawn as usual", *given, len(misfits))
    return views
