"""Bodies of ``convscope cam``, ``filters`` and ``maximize`` (no printing: callers print).

Each takes a resolved model (:class:`~convscope.models.resolve.ResolvedModel`: its preprocessing reads the
inputs, its class names name the predictions), validates its options (and where it may write) first, then
computes, then writes all-or-nothing through :class:`convscope.store.output.OutputFolder` (a staging
folder next to the output folder, moved into place at the end).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convscope.errors import ConvscopeError, OptionError
from convscope.store.output import OutputFolder, check_out

log = logging.getLogger(__name__)


REGION_HELP = "write --region X0,Y0,X1,Y1 in input pixels (x1, y1 exclusive), e.g. --region 0,0,48,48"


def parse_target(text: str | None, option: str = "--target") -> Any:
    """The target grammar of :mod:`convscope.attribution.targets` (``None`` = ``top1``), as an OptionError.

    ``--class`` takes a class index or ``top1`` only (it is a synonym of ``--target class:IDX``).
    """
    from convscope.attribution.targets import ClassTarget, Top1
    from convscope.attribution.targets import parse_target as parse

    try:
        target = parse(text)
    except ConvscopeError as err:
        raise OptionError(str(err)) from None
    if option == "--class" and not isinstance(target, (ClassTarget, Top1)):
        raise OptionError(
            f"--class {str(text)[:60]!r} is not valid; expected a class index such as 281, or top1"
        )
    return target


def cam_target(
    target: str | None, class_: str | None, region: str | None = None, mask: str | Path | None = None
) -> Any:
    """The one target of ``cam`` from ``--target``, ``--class``, ``--region`` and ``--mask`` (read here).

    Raises:
        OptionError: Both ``--target`` and ``--class`` given, both ``--region`` and ``--mask``, a region or
            mask without a ``seg:`` target, a malformed spec or region.
        InputError: The mask file is not a readable image.
    """
    from convscope.attribution.targets import SegTarget
    from convscope.data.pairs import parse_ints

    if target is not None and class_ is not None:
        raise OptionError("give --target or --class, not both (--class IDX means --target class:IDX)")
    spec = parse_target(class_, "--class") if class_ is not None else parse_target(target)
    if region is not None and mask is not None:
        raise OptionError("give --region or --mask, not both")
    if (region is not None or mask is not None) and not isinstance(spec, SegTarget):
        given = "--region" if region is not None else "--mask"
        raise OptionError(f"{given} applies to --target seg:CLS only, not to --target {spec}")
    if region is not None:
        x0, y0, x1, y1 = parse_ints(region, 4, "--region", REGION_HELP)
        if not (x0 < x1 and y0 < y1):
            raise OptionError(f"--region {region!r} is empty: need x0 < x1 and y0 < y1; {REGION_HELP}")
        return SegTarget(spec.cls, region=(x0, y0, x1, y1))
    if mask is not None:
        from convscope.data.read import read_image

        values = np.asarray(read_image(mask))
        if values.ndim == 3:
            values = values[..., : min(3, values.shape[-1])].max(axis=-1)
        return SegTarget(spec.cls, mask=values)
    return spec


def _protected(inputs: Sequence[Any], resolved: Any) -> list[Any]:
    """What an output folder may not overlap: the inputs and the model file."""
    return [*inputs, *([resolved.source] if resolved.source else [])]


def run_cam(
    model: Any,
    inputs: Sequence[str],
    *,
    methods: Sequence[str],
    layer: str | None,
    target: Any,
    out: Path,
    save_arrays: bool,
    input_shape: tuple[int, ...] | None = None,
    alpha: float = 0.5,
    tokens: tuple[int, int] | None = None,
    evaluate: bool = False,
) -> tuple[list[Path], list[str]]:
    """Attribution maps overlaid on each input: ``out/<input>/<method>.png``; returns (paths, summary lines).

    ``target`` is any target form (a spec string, or a parsed target from :func:`cam_target`). With
    ``evaluate`` the maps' faithfulness is measured too (:func:`convscope.attribution.evaluate`, default
    settings, all methods against one random-map baseline): ``out/evaluation.json`` (every number, per image)
    and ``out/evaluation.png`` (mean curves), and the summary lines end with the table.
    """
    from convscope.attribution import cam
    from convscope.attribution.api import get_method
    from convscope.models.resolve import resolve_model
    from convscope.probe.cache import predict
    from convscope.render import overlay

    classes = [get_method(m) for m in methods]  # bad names fail before any work
    goal = parse_target(target) if target is None or isinstance(target, str) else target
    if evaluate:  # missing packages answer before any work
        from convscope.attribution.perturb import require_scipy
        from convscope.present.evaluation import require_plotting

        require_plotting()
        require_scipy()
    resolved = resolve_model(model, input_shape=input_shape)
    protected = _protected(inputs, resolved)
    check_out(out, "cam", protected=protected)
    data = resolved.load_inputs(list(inputs), input_shape=input_shape)
    results = {}
    for cls in classes:
        use_layer = None if cls.at_input else layer
        extra = {"tokens": tokens} if tokens is not None else {}
        results[cls.name] = cam(
            resolved.model, data.x, method=cls.name, layer=use_layer, target=goal, **extra
        )
    predictions = predict(resolved, data.x, 5)
    evaluation = None
    if evaluate:
        from convscope.attribution import evaluate as measure

        evaluation = measure(resolved.model, data.x, list(results.values()))
    written: list[Path] = []
    lines: list[str] = []
    with OutputFolder(out, "cam", protected=protected) as stage:
        for i, name in enumerate(data.names):
            picture = (
                data.display[i]
                if data.display[i] is not None
                else np.zeros(_first(data.x).shape[1:3], np.uint8)
            )
            for method, result in results.items():
                blend = overlay(
                    picture,
                    result.maps[i][..., None],
                    0,
                    cmap="magma",
                    alpha=alpha,
                    layer=f"{method} @ {result.layer}  {_explained(resolved, result, i)}",
                )
                target_path = stage / name / f"{method}.png"
                target_path.parent.mkdir(parents=True, exist_ok=True)
                target_path.write_bytes(blend.to_png())
                written.append(out / name / target_path.name)
            lines.append(f"{name}: {predictions[i].text()}")
        if save_arrays:
            arrays = {m: np.asarray(r.maps) for m, r in results.items()}
            arrays.update({f"{m}_raw": np.asarray(r.raw) for m, r in results.items()})
            np.savez(stage / "cam.npz", **arrays)  # type: ignore[arg-type]  # numpy stub: **kwds vs allow_pickle
            written.append(out / "cam.npz")
        if evaluation is not None:
            from convscope.present.evaluation import evaluation_png

            report = {"model": resolved.name, "inputs": list(data.names), **evaluation.to_json()}
            (stage / "evaluation.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
            (stage / "evaluation.png").write_bytes(evaluation_png(evaluation))
            written += [out / "evaluation.json", out / "evaluation.png"]
    for method, result in results.items():
        lines.append(f"{method}: layer {result.layer}, target {result.target}, score = {result.score}")
    if evaluation is not None:
        from convscope.present.evaluation import format_evaluation

        lines += format_evaluation(evaluation)
    return written, lines


def _explained(resolved: Any, result: Any, i: int) -> str:
    """Caption text for what image ``i``'s map explains: the class name, or the target's description."""
    if result.explained == "class":
        return f"class {resolved.label(int(result.targets[i]))}"
    if result.explained.startswith("seg"):
        return f"{result.explained} ({resolved.label(int(result.targets[i]))})"
    return result.explained


def run_filters(model: Any, layers: Sequence[str], *, out: Path, mode: str, max_filters: int) -> list[Path]:
    """Kernel-weight grids of conv layers: ``out/<layer>.filters.png`` (``model``: a resolved model)."""
    from convscope.models.resolve import resolve_model
    from convscope.models.tree import layer_tree
    from convscope.present.maps import slug
    from convscope.probe.select import select_layers
    from convscope.render import render_filters

    resolved = resolve_model(model)
    protected = _protected((), resolved)
    check_out(out, "filters", protected=protected)
    keras_model = resolved.model
    nodes = select_layers(layer_tree(keras_model), list(layers) or None, model_name=keras_model.name)
    pictures = [
        (n.path, render_filters(n.layer, mode=mode, max_filters=max_filters, layer=n.path)) for n in nodes
    ]
    written = []
    with OutputFolder(out, "filters", protected=protected) as stage:
        for path, picture in pictures:
            (stage / f"{slug(path)}.filters.png").write_bytes(picture.to_png())
            written.append(out / f"{slug(path)}.filters.png")
    return written


def run_maximize(
    model: Any,
    layer: str,
    *,
    channels: str,
    steps: int,
    out: Path,
    param: str,
    seed: int,
    size: int | None,
    progress: Callable[[int, int, Any], None] | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> list[Path]:
    """Activation maximization of many channels of ``layer`` in one batched run: ``out/<layer>.maximize.png``.

    The images are optimized in the resolved model's input space: its preprocessing (mean/std or value
    range) says which input values are pixels 0..255.
    """
    from convscope.featvis import maximize_channels
    from convscope.models.resolve import resolve_model
    from convscope.present.maps import slug

    if steps < 1:
        raise OptionError(f"--steps must be >= 1, got {steps}")
    resolved = resolve_model(model)
    protected = _protected((), resolved)
    check_out(out, "maximize", protected=protected)
    prep = resolved.preprocess
    kwargs: dict[str, Any] = {"steps": steps, "param": param, "seed": seed, "size": size}
    if prep.mean is not None:
        kwargs.update(mean=prep.mean, std=prep.std)
    else:
        kwargs.update(value_range=prep.value_range)
    result = maximize_channels(
        resolved.model, layer, channels, progress=progress, input_shape=input_shape, **kwargs
    )
    name = f"{slug(layer)}.maximize.png"
    with OutputFolder(out, "maximize", protected=protected) as stage:
        (stage / name).write_bytes(result.to_grid().to_png())
    return [out / name]


def _first(x: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """The first input array of a batch (the only one of a single-input model)."""
    return x[0] if isinstance(x, list) else x
