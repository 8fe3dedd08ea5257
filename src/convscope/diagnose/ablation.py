"""``ablate``: the causal effect of removing each channel of a layer on every class logit and on accuracy.

For every batch the model runs once up to layer L (the prefix); then all ``C`` channels are removed at once,
one per copy of the batch, the channel axis folded into the batch, and only the model from L onward runs on
the ``C x b`` rows, in chunks whose size depends on the layer's shape, never on the dataset or the options
(:mod:`convscope.diagnose.suffix` picks the route). Removing a channel sets its map to ``0`` (``mode="zero"``)
or to the channel's mean over the whole dataset and every position (``mode="mean"``: one more pass over the
data first, or the mean of a scan of the same data). Effects are changes of the class *logits* (an output
softmax is bypassed), summed in float64 and exactly mergeable over batches
(:class:`~convscope.diagnose.ablate_stats.AblationAccumulator`).

Example:
    >>> from convscope.diagnose import ablate
    >>> result = ablate("mnist-cnn", "mnist", layer="conv_1", out="ablate-out")
    >>> print(result.summary_text())
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from convscope.diagnose.ablate_result import FORMAT, FORMAT_VERSION, AblationResult
from convscope.diagnose.ablate_stats import AblationAccumulator, label_ids
from convscope.errors import AttributionError, OptionError
from convscope.scan.source import Source, iter_chunks, open_source

log = logging.getLogger(__name__)

MODES = ("zero", "mean")
#: Elements of the folded rows held at once (64 MiB of float32): bounds memory whatever the layer.
FOLD_ELEMENTS = 1 << 24
Progress = Callable[[int, str], Any]


def _check(mode: str, batch_size: int, route: str | None) -> None:
    from convscope.diagnose.suffix import ROUTES

    if mode not in MODES:
        raise OptionError(f"--mode {mode!r} is not valid; expected one of {', '.join(MODES)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise OptionError(f"--batch-size must be an integer >= 1, got {batch_size!r}")
    if route is not None and route not in ROUTES:
        raise OptionError(f"route {route!r} is not valid; expected one of {', '.join(ROUTES)}")


def _spatial(facts: Any) -> str:
    paths = facts.spatial_paths()
    return ", ".join(paths[-12:]) + (f" ({len(paths)} in all)" if len(paths) > 12 else "") or "none"


def _layer(facts: Any, layer: Any) -> str:
    """The path of the ablated layer: exactly one layer with a 2D spatial output."""
    if layer is None:
        raise OptionError(f"--layer is required; layers with spatial outputs: {_spatial(facts)}")
    node = facts.target_layer(layer)
    if facts.spatial_size(node.path) is None:  # a token layer passes target_layer; ablate needs maps
        raise AttributionError(
            f"layer {node.path!r} has output shape (N, {', '.join(map(str, facts.shapes[node.path]))}), not a "
            f"2D spatial map (N, H, W, C); layers with spatial outputs: {_spatial(facts)}"
        )
    return str(node.path)


def _channel_means(extractor: Any, source: Source, batch_size: int, channels_first: bool) -> np.ndarray:
    """float64 ``(C,)``: each channel's mean over every image and position (one prefix pass)."""
    total, count = None, 0
    for _, x in iter_chunks(source, 0, source.size, batch_size):
        a = np.asarray(next(iter(extractor.run_batch(x).values())), np.float64)
        axes = tuple(i for i in range(a.ndim) if i != (1 if channels_first else a.ndim - 1))
        part = a.sum(axis=axes)
        total = part if total is None else total + part
        count += a.size // a.shape[1 if channels_first else -1]
    assert total is not None
    return total / count


def _scan_means(scan: Any, path: str, source: Source) -> np.ndarray | None:
    """The channel means of a scan of the same data, or ``None`` (with the reason logged)."""
    if scan is None:
        return None
    result = scan
    same = result.manifest.get("dataset", {}).get("fingerprint") == source.fingerprint
    if path not in result.layers or not same:
        log.warning("the scan given does not cover layer %s on this dataset; computing the means", path)
        return None
    return np.asarray(result[path].mean, np.float64)


def ablate(
    model: Any,
    data: Any,
    *,
    layer: str | int | None,
    mode: str = "zero",
    out: str | Path | None = None,
    scan: Any = None,
    batch_size: int = 128,
    top_k: int = 8,
    listed: int = 3,
    route: str | None = None,
    preprocess: Any = None,
    input_shape: tuple[int, ...] | None = None,
    safe_mode: bool = True,
    custom_objects: Any = None,
    strict: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> AblationResult:
    """Remove each channel of ``layer`` in turn and measure the change of every class logit and of accuracy.

    Args:
        model: A resolved model, a ``.keras``/``.h5`` path, a zoo name or a ``keras.Model`` (never modified).
        data: What :func:`convscope.scan.scan` reads: a folder, ``.npy``/``.npz``, ``"mnist"``, an array.
        layer: The layer (selector naming one layer with a 2D spatial output).
        mode: ``"zero"`` or ``"mean"`` (the channel's mean over the dataset and all positions).
        out: Results folder (manifest, arrays, summary, crop pictures); ``None`` keeps it in memory.
        scan: A scan result (or its folder) of the same data: its channel means serve ``mode="mean"`` and its
            top-k images the pictures; without it they are computed.
        batch_size: Images per prefix pass.
        top_k: Crops per channel in the pictures (when no scan is given).
        listed: Channels listed per class in the summary and pictures.
        route: Force ``"delta"``, ``"graph"`` or ``"patch"`` (default: the fastest that applies).
        preprocess, input_shape, safe_mode, custom_objects, strict: As for :func:`convscope.scan.scan`.
        force: Replace another command's result at ``out``.
        progress: ``progress(total, label)`` -> a rich ``Progress`` (or ``None``).

    Returns:
        The :class:`~convscope.diagnose.ablate_result.AblationResult` (``path`` set when ``out`` is given).

    Raises:
        OptionError: Bad ``mode``, ``batch_size`` or ``route``; ``out`` may not be written.
        LayerNotFound: ``layer`` matches nothing (the message lists the nearest names).
        AttributionError: ``layer`` is not spatial, or the model has no class-vector output.
        InputError: DATA is missing, empty or does not fit the model.
    """
    from convscope.attribution.facts import analyze
    from convscope.diagnose.suffix import build_ablator
    from convscope.models.resolve import resolve_model
    from convscope.probe.cache import get_extractor
    from convscope.scan import manifest as mf

    _check(mode, batch_size, route)
    resolved = resolve_model(
        model,
        preprocess=preprocess,
        input_shape=input_shape,
        safe_mode=safe_mode,
        custom_objects=custom_objects,
    )
    protected = (data, *([resolved.source] if resolved.source else []))
    if out is not None:
        from convscope.store.output import check_out

        check_out(out, "ablate", protected=protected, force=force, mode="replace")
    if isinstance(scan, (str, Path)):  # a bad --scan answers before any work
        from convscope.scan import load_scan

        scan = load_scan(scan)
    source = open_source(data, resolved.spec(input_shape), resolved.preprocess, strict=strict)
    facts = analyze(resolved.model, source.read(0, 1))
    path = _layer(facts, layer)
    ablator = build_ablator(resolved.model, facts, path, route)
    extractor = get_extractor(resolved, [path], input_shape=input_shape, batch_size=batch_size)
    channels_first = facts.data_format == "channels_first"
    values = np.zeros(ablator.channels)
    if mode == "mean":
        means = _scan_means(scan, path, source)
        values = means if means is not None else _channel_means(extractor, source, batch_size, channels_first)
    k = facts.n_classes or 1
    truth_all = label_ids(source.labels, resolved.class_names, k)
    if source.labels is not None and truth_all is None:
        log.warning("no dataset label names a class of the model; classes are the model's top-1 instead")
    acc = _run(ablator, extractor, source, batch_size, values, truth_all, k, progress)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "layer": path,
        "mode": mode,
        "route": ablator.route,
        "model": mf.model_identity(resolved.source or None, resolved.model),
        "dataset": {"source": source.name, "size": source.size, "fingerprint": source.fingerprint},
        "grouping": "label" if truth_all is not None else "prediction",
        "classes": list(resolved.class_names) if resolved.class_names else None,
        "options": {"batch_size": int(batch_size), "mean": "per channel, over all images and positions"},
        "versions": mf.versions("local"),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    result = AblationResult(manifest=manifest, values=np.asarray(values, np.float64), **acc.arrays())  # type: ignore[arg-type]
    if out is None:
        return result
    from convscope.diagnose.ablate_write import write_ablation

    return write_ablation(result, resolved, data, source, Path(out), scan, top_k, listed, force)


def _run(
    ablator: Any,
    extractor: Any,
    source: Source,
    batch_size: int,
    values: np.ndarray,
    truth_all: np.ndarray | None,
    classes: int,
    progress: Progress | None,
) -> AblationAccumulator:
    """The ablation pass: prefix once per batch, every channel folded into a few suffix passes."""
    acc = AblationAccumulator(ablator.channels, classes, truth_all is not None)
    channels = np.arange(ablator.channels)
    values32 = np.asarray(values, np.float32)
    bar = progress(source.size, f"ablating {ablator.channels} channels") if progress is not None else None
    task = bar.add_task("ablate", total=source.size) if bar is not None else None
    try:
        if bar is not None:
            bar.start()
        row = int(np.prod(ablator.shape))
        for first, x in iter_chunks(source, 0, source.size, batch_size):
            a = ablator.prepare(next(iter(extractor.run_batch(x).values()))) if ablator.needs_prefix else None
            truth = None if truth_all is None else truth_all[first : first + len(x)]
            step = max(1, FOLD_ELEMENTS // (len(x) * ablator.fold_cost(row, int(np.prod(x.shape[1:])))) - 1)
            base: np.ndarray | None = None
            for start in range(0, len(channels), step):
                chunk = channels[start : start + step]
                logits, ablated = ablator.logits(x, a, chunk, values32, with_base=base is None)
                if base is None:
                    assert logits is not None
                    base = logits
                    acc.add_images(base, truth)
                acc.add_channels(base, ablated, chunk, truth)
            if bar is not None:
                bar.advance(task, len(x))
    finally:
        if bar is not None:
            bar.stop()
    return acc


__all__ = ["FOLD_ELEMENTS", "MODES", "ablate"]
