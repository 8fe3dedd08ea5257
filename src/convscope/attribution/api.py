"""The one-call entry point, :func:`cam`, and the :data:`METHODS` registry."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from convscope.attribution.activation import ScoreCAM
from convscope.attribution.base import Attribution
from convscope.attribution.gradient import GradCAM, GradCAMPlusPlus, LayerCAM
from convscope.attribution.result import CamResult
from convscope.attribution.saliency import IntegratedGradients, Saliency, SmoothGrad
from convscope.attribution.targets import Target
from convscope.errors import OptionError, nearest
from convscope.probe.select import Selector

log = logging.getLogger(__name__)

#: Registry: canonical method id -> class. The ids are safe in file names, npz keys, URLs and shells.
METHODS: dict[str, type[Attribution]] = {
    cls.name: cls
    for cls in (GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM, Saliency, SmoothGrad, IntegratedGradients)
}

#: Other accepted spellings (compared case-insensitively) -> canonical id.
ALIASES: dict[str, str] = {
    "grad-cam": "gradcam",
    "grad_cam": "gradcam",
    "gradcam++": "gradcampp",
    "grad-cam++": "gradcampp",
    "grad_cam++": "gradcampp",
    "gradcam_pp": "gradcampp",
    "gradcam-pp": "gradcampp",
    "gradcamplusplus": "gradcampp",
    "grad-campp": "gradcampp",
    "layer-cam": "layercam",
    "layer_cam": "layercam",
    "score-cam": "scorecam",
    "score_cam": "scorecam",
    "vanilla": "saliency",
    "gradient": "saliency",
    "smooth-grad": "smoothgrad",
    "smooth_grad": "smoothgrad",
    "ig": "integrated_gradients",
    "integrated-gradients": "integrated_gradients",
}


def canonical_method(name: str) -> str:
    """The canonical id of method ``name`` (case-insensitive; aliases such as ``gradcam++`` accepted).

    Raises:
        OptionError: Unknown name; the message lists the canonical ids and the nearest ones.
    """
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in METHODS:
        close = dict.fromkeys(ALIASES.get(c, c) for c in nearest(key, [*METHODS, *ALIASES], 3))
        raise OptionError(
            f"unknown attribution method {name!r}; choose one of {', '.join(METHODS)} "
            f"(did you mean {' or '.join(close)}?)"
        )
    return key


def get_method(name: str) -> type[Attribution]:
    """The method class registered as ``name`` (case-insensitive; aliases accepted).

    Raises:
        OptionError: Unknown name; the message lists the canonical ids and the nearest ones.
    """
    return METHODS[canonical_method(name)]


def _options(cls: type[Attribution]) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            params = inspect.signature(vars(klass)["__init__"]).parameters.values()
            names += [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in names]
    return names


def cam(
    model: Any,
    x: Any,
    method: str = "gradcam",
    layer: Selector | None = None,
    target: Target = "top1",
    **options: Any,
) -> CamResult:
    """Attribution maps of ``x`` with one call; compiled passes are cached per (model, layer, settings).

    Args:
        model: A built ``keras.Model`` (or a ``.keras`` path / zoo name, loaded — pass the model object to
            reuse its compiled passes across calls).
        x: ``(N, H, W, C)`` preprocessed images (or one ``(H, W, C)`` image).
        method: A :data:`METHODS` id: ``gradcam``, ``gradcampp`` (Grad-CAM++; alias ``gradcam++``),
            ``layercam``, ``scorecam``, ``saliency``, ``smoothgrad``, ``integrated_gradients``.
        layer: Target layer for CAM methods (path, name, index, ...); ``None`` picks the last spatial layer
            feeding the classifier head. Not accepted by input-gradient methods.
        target: ``"top1"``, a class index, one index per image, or ``f(output) -> (N,)`` scores.
        **options: Method options, e.g. ``use_logits``, ``batch_size``, ``upsample``, ``max_channels``,
            ``n``, ``sigma``, ``seed``, ``steps``, ``baseline``, ``rule``.

    Returns:
        A :class:`CamResult`; ``result.maps[i]`` is ready for
        ``convscope.render.overlay(image, result.maps[i][..., None], 0, cmap="magma")``.

    Raises:
        OptionError: Unknown method or option.
        AttributionError: Bad target or layer, non-differentiable path, no spatial layer.
        LayerNotFound: ``layer`` matches nothing.
    """
    cls = get_method(method)
    if cls.at_input and layer is not None:
        raise OptionError(
            f"method {cls.name!r} attributes to the input pixels; layer={layer!r} does not apply "
            f"(CAM methods take a layer: {', '.join(n for n, c in METHODS.items() if not c.at_input)})"
        )
    accepted = _options(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise OptionError(
            f"method {cls.name!r} got unknown option(s) {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(accepted)}"
        )
    if not hasattr(model, "layers"):
        from convscope.models.load import load_model

        model = load_model(model)
    return cls(model, layer, **options)(x, target)
