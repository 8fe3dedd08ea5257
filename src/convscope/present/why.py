"""Bodies of ``convscope cam``, ``filters`` and ``maximize`` (no printing: callers print).

Each validates its options first, then computes, then writes all-or-nothing (files go to a staging
folder inside the output folder and are moved into place at the end).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convscope.errors import OptionError

log = logging.getLogger(__name__)


def parse_target(text: str | None) -> Any:
    """``top1``/``None`` -> ``"top1"``; ``"281"`` -> 281; anything else -> OptionError."""
    if text is None or text.strip().lower() == "top1":
        return "top1"
    if text.strip().lstrip("-").isdigit():
        return int(text)
    raise OptionError(f"--class {text!r} is not valid; expected a class index such as 281, or top1")


def _stage(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".convscope-staging-", dir=out))


def _publish(stage: Path, out: Path) -> None:
    for root, _, files in os.walk(stage):
        for filename in files:
            src = Path(root) / filename
            dst = out / src.relative_to(stage)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)


def top_predictions(model_arg: Any, probs: np.ndarray, k: int = 5) -> list[str]:
    """``"name (p)"`` strings for the top-k classes, with class names when the model is a zoo model."""
    from convscope.models import zoo

    names: Sequence[str] = ()
    if isinstance(model_arg, str) and zoo.is_zoo_name(model_arg):
        try:
            names = zoo.zoo_class_names(model_arg)
        except Exception as exc:  # labels are a nicety: say why they are missing, keep going
            log.warning("no class names: %s", exc)
    order = np.argsort(probs)[::-1][:k]
    def label(i: int) -> str:
        name = names[i] if i < len(names) else ""
        return f"{i} {name}" if name and name != str(i) else str(i)

    return [f"{label(int(i))} ({probs[i]:.1%})" for i in order]


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's output for ``x`` in batches, through the cached compiled extractor."""
    from convscope.api import get_extractor
    from convscope.probe.extractor import Extractor

    return get_extractor(model, [-1], include_output=True)(x)[Extractor.OUTPUT_KEY]


def run_cam(
    model_arg: Any,
    inputs: Sequence[str],
    *,
    methods: Sequence[str],
    layer: str | None,
    target: str | None,
    out: Path,
    save_arrays: bool,
    preprocess: Any,
    input_shape: tuple[int, ...] | None,
    safe_mode: bool,
    alpha: float = 0.5,
) -> tuple[list[Path], list[str]]:
    """Attribution maps overlaid on each input: ``out/<input>/<method>.png``; returns (paths, summary lines)."""
    from convscope.api import load_inputs_for
    from convscope.attribution import cam
    from convscope.attribution.api import get_method
    from convscope.models.load import load_model
    from convscope.render import overlay

    classes = [get_method(m) for m in methods]  # bad names fail before any work
    goal = parse_target(target)
    model = load_model(model_arg, safe_mode=safe_mode)
    data = load_inputs_for(model, list(inputs), preprocess=preprocess, input_shape=input_shape)
    results = {}
    for cls in classes:
        use_layer = None if cls.at_input else layer
        results[cls.name] = cam(model, data.x, method=cls.name, layer=use_layer, target=goal)
    probs = predict(model, data.x)
    stage = _stage(out)
    written: list[Path] = []
    lines: list[str] = []
    try:
        for i, name in enumerate(data.names):
            picture = data.display[i] if data.display[i] is not None else np.zeros(data.x.shape[1:3], np.uint8)
            for method, result in results.items():
                blend = overlay(picture, result.maps[i][..., None], 0, cmap="magma", alpha=alpha,
                                layer=f"{method} @ {result.layer}  class {result.targets[i]}")
                target_path = stage / name / f"{method}.png"
                target_path.parent.mkdir(parents=True, exist_ok=True)
                target_path.write_bytes(blend.to_png())
                written.append(out / name / target_path.name)
            if probs is not None and probs.ndim == 2:
                lines.append(f"{name}: " + ", ".join(top_predictions(model_arg, probs[i])))
        if save_arrays:
            arrays = {m: np.asarray(r.maps) for m, r in results.items()}
            arrays.update({f"{m}_raw": np.asarray(r.raw) for m, r in results.items()})
            np.savez(stage / "cam.npz", **arrays)
            written.append(out / "cam.npz")
        _publish(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    for method, result in results.items():
        lines.append(f"{method}: layer {result.layer}, score = {result.score}")
    return written, lines


def run_filters(model_arg: Any, layers: Sequence[str], *, out: Path, mode: str, max_filters: int,
                safe_mode: bool) -> list[Path]:
    """Kernel-weight grids of conv layers: ``out/filters/<layer>.png``."""
    from convscope.models.load import load_model
    from convscope.models.tree import layer_tree
    from convscope.present.maps import slug
    from convscope.probe.select import select_layers
    from convscope.render import render_filters

    model = load_model(model_arg, safe_mode=safe_mode)
    nodes = select_layers(layer_tree(model), list(layers) or None, model_name=model.name)
    pictures = [(n.path, render_filters(n.layer, mode=mode, max_filters=max_filters, layer=n.path)) for n in nodes]
    stage = _stage(out)
    try:
        written = []
        for path, picture in pictures:
            (stage / f"{slug(path)}.filters.png").write_bytes(picture.to_png())
            written.append(out / f"{slug(path)}.filters.png")
        _publish(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return written


def run_maximize(model_arg: Any, layer: str, *, channels: str, steps: int, out: Path, param: str, seed: int,
                 size: int | None, preprocess: Any, safe_mode: bool,
                 progress: Callable[[int, int, Any], None] | None = None,
                 input_shape: tuple[int, ...] | None = None) -> list[Path]:
    """Activation maximization of many channels of ``layer`` in one batched run: ``out/<layer>.maximize.png``."""
    from convscope.featvis import maximize_channels
    from convscope.models.load import load_model
    from convscope.present.maps import slug

    if steps < 1:
        raise OptionError(f"--steps must be >= 1, got {steps}")
    model = load_model(model_arg, safe_mode=safe_mode)
    kwargs: dict[str, Any] = {"steps": steps, "param": param, "seed": seed, "size": size}
    if preprocess is not None and preprocess.mean is not None:
        kwargs.update(mean=preprocess.mean, std=preprocess.std)
    elif preprocess is not None:
        kwargs.update(value_range=preprocess.value_range)
    result = maximize_channels(model, layer, channels, progress=progress, input_shape=input_shape, **kwargs)
    stage = _stage(out)
    try:
        name = f"{slug(layer)}.maximize.png"
        (stage / name).write_bytes(result.to_grid().to_png())
        _publish(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [out / name]
