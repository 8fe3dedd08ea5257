"""Optional views that appear only when the modules behind them are installed.

* ``cam``: class-activation maps from :mod:`convscope.attribution` (``cam(model, x, method=...)`` returning
  a result whose ``.maps`` is ``(N, H, W)``), drawn over the input picture.
* ``filters``: the kernels of a conv layer from :mod:`convscope.render.filters`
  (``render_filters(layer)`` returning a :class:`~convscope.render.FeatureGrid`).

Presence is checked with :func:`importlib.util.find_spec` (nothing is imported until a view is asked for),
so the explorer works the same with or without them; the page shows a view only if
``/api/model`` lists it in ``features``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any

import numpy as np

from convscope.errors import ConvscopeError, OptionError

log = logging.getLogger(__name__)

MODULES = {"cam": "convscope.attribution", "filters": "convscope.render.filters"}
DEFAULT_CAM_METHODS = ("gradcam",)


class ViewUnavailable(ConvscopeError):
    """An optional view was asked for but its module is not installed."""


def has_module(name: str) -> bool:
    """True if ``name`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def features() -> dict[str, bool]:
    """``{"cam": bool, "filters": bool}``: which optional views this installation offers."""
    return {view: has_module(module) for view, module in MODULES.items()}


def _module(view: str) -> Any:
    if not has_module(MODULES[view]):
        raise ViewUnavailable(
            f"the {view!r} view needs {MODULES[view]}, which is not installed in this convscope"
        )
    return importlib.import_module(MODULES[view])


def cam_methods() -> list[str]:
    """The CAM methods to offer (the module's ``METHODS`` if it lists them, else Grad-CAM)."""
    if not features()["cam"]:
        return []
    methods = getattr(_module("cam"), "METHODS", None)
    if isinstance(methods, (list, tuple, dict)) and methods:
        return [str(m) for m in methods]
    return list(DEFAULT_CAM_METHODS)


def cam_target(text: str | None, region: str | None = None) -> Any:
    """A target of the attribution grammar from the ``target`` and ``region`` query parameters.

    ``None`` stays ``None`` (the explorer picks a default for the model); a class index (``"281"``),
    ``top1``, ``class:IDX``, ``output:NAME[...]`` and ``seg:CLS`` are accepted; ``region`` is
    ``X0,Y0,X1,Y1`` in input pixels for ``seg:``.

    Raises:
        OptionError: A malformed target or region, or a region without ``seg:``.
        ViewUnavailable: :mod:`convscope.attribution` is missing.
    """
    if text is None and region is None:
        return None
    targets = importlib.import_module(f"{_module('cam').__name__}.targets")
    from convscope.data.pairs import parse_ints

    if text is not None and len(text) > 200:
        raise OptionError(f"target {text[:40]!r}... is too long (at most 200 characters)")
    box = None
    if region is not None:
        box = parse_ints(
            region, 4, "region", "write region=X0,Y0,X1,Y1 in input pixels, e.g. region=0,0,48,48"
        )
    try:
        return targets.parse_target(text, region=box)
    except ConvscopeError as err:
        raise OptionError(str(err)) from None


def cam_map(model: Any, x: np.ndarray, method: str, target: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The class-activation map ``(H, W)`` of one sample ``x`` (no batch axis) and facts about it.

    Args:
        model: The Keras model.
        x: One preprocessed sample.
        method: One of :func:`cam_methods`.
        target: Any target of :mod:`convscope.attribution.targets` (see :func:`cam_target`); ``None`` =
            the top-1 class.

    Returns:
        ``(map, facts)``; facts hold ``method``, and when the result tells them ``layer``, ``target``,
        ``score``, ``score_kind``, ``spec`` and ``explained``.

    Raises:
        ViewUnavailable: :mod:`convscope.attribution` is missing.
        OptionError: ``method`` is not offered.
    """
    methods = cam_methods()
    if method not in methods:
        raise OptionError(
            f"CAM method {method[:40]!r} is not available; valid: {', '.join(methods) or 'none'}"
        )
    kwargs: dict[str, Any] = {"method": method}
    if target is not None:
        kwargs["target"] = target
    result = _module("cam").cam(model, np.asarray(x)[None], **kwargs)
    maps = np.asarray(getattr(result, "maps", result))
    facts: dict[str, Any] = {"method": method, "layer": getattr(result, "layer", None)}
    targets = getattr(result, "targets", None)
    if targets is not None and len(targets):
        facts["target"] = int(targets[0])
    scores = getattr(result, "scores", None)
    if scores is not None and np.size(scores):
        facts["score"] = float(np.asarray(scores).reshape(-1)[0])
        facts["score_kind"] = getattr(result, "score", None)
    facts["spec"] = str(getattr(result, "target", "top1"))
    facts["explained"] = str(getattr(result, "explained", "class"))
    return (maps[0] if maps.ndim == 3 else maps), facts


def render_filters(layer: Any) -> Any:
    """The :class:`~convscope.render.FeatureGrid` of a layer's filters (tiles and their numbers; the caption
    and colorbar travel as text, for the page to write).

    Raises:
        ViewUnavailable: :mod:`convscope.render.filters` is missing.
    """
    return _module("filters").render_filters(layer, caption=False)
