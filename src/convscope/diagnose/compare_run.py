"""``compare``: how one model's channels respond differently to two datasets (dataset shift).

Example:
    >>> from convscope.diagnose import compare
    >>> result = compare("mnist-cnn", "clean.npy", "noisy.npy", out="shift-out")
    >>> print(result.summary_text())
    >>> result["conv_1"].rank[:5]                     # the five most shifted channels of conv_1

Two streaming passes over each dataset (memory independent of its size): the first gathers the scan's
statistics and top-k images plus each channel's spatial-max range, the second counts the per-image
spatial max into histograms on bins shared by both datasets (so they merge exactly and W1 compares like
with like). See :mod:`convscope.diagnose.shift` for the numbers and :mod:`convscope.diagnose.folder` for
the results folder.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convscope.diagnose.compare_result import FORMAT, FORMAT_VERSION, CompareResult, write_compare
from convscope.diagnose.folder import check_result_out
from convscope.diagnose.histogram import BINS, MAX_BINS, edges_between
from convscope.diagnose.passes import HistogramPass, StatsPass
from convscope.diagnose.shift import LayerShift
from convscope.errors import InputError, OptionError
from convscope.scan import manifest as mf
from convscope.scan.engine import ScanJob
from convscope.scan.source import Source, open_source

log = logging.getLogger(__name__)


def _positive(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise OptionError(f"{name} must be an integer >= {low}, got {value!r}")
    if high is not None and value > high:
        raise OptionError(f"{name} must be at most {high}, got {value!r}")
    return int(value)


def same_input(a: Source, b: Source, names: tuple[str, str] = ("DATA_A", "DATA_B")) -> None:
    """Refuse two sources whose model inputs differ in shape (checked on their first rows).

    Raises:
        InputError: The shapes differ.
    """
    sa, sb = a.read(0, 1).shape[1:], b.read(0, 1).shape[1:]
    if sa != sb:
        raise InputError(
            f"{names[0]} gives model inputs of shape {tuple(sa)} but {names[1]} {tuple(sb)}; "
            "the datasets must reach the model at one shape"
        )


def _dataset(source: Source) -> dict[str, Any]:
    return {
        "source": source.name,
        "size": source.size,
        "fingerprint": source.fingerprint,
        "labels": source.labels is not None,
        "skipped": [{"file": f, "reason": r} for f, r in source.skipped],
    }


def compare(
    model: Any,
    data_a: Any,
    data_b: Any,
    *,
    layers: Sequence[str | int] | str | None = None,
    top_k: int = 8,
    bins: int = BINS,
    batch_size: int = 64,
    out: str | Path | None = None,
    force: bool = False,
    crops: bool = True,
    preprocess: Any = None,
    input_shape: tuple[int, ...] | None = None,
    safe_mode: bool = True,
    custom_objects: Any = None,
    strict: bool = False,
) -> CompareResult:
    """Compare every channel's activations between two datasets run through the same model.

    Args:
        model: A :class:`~convscope.models.resolve.ResolvedModel`, a ``.keras``/``.h5`` path, a zoo name or
            a ``keras.Model`` (never modified).
        data_a: The reference dataset (anything :func:`convscope.scan.scan` reads: a folder, ``.npy``,
            ``.npz``, ``"mnist"``, an array ``(N, ...)``).
        data_b: The dataset compared with it (same input shape).
        layers: Layer selectors; ``None`` = every conv layer.
        top_k: Top images kept per channel and dataset.
        bins: Histogram bins per channel (shared by both datasets; 2 to 4096).
        batch_size: Images per forward pass.
        out: Results folder; ``None`` keeps the result in memory.
        force: Replace a different compare result (or another convscope result) at ``out``.
        crops: Draw the receptive-field crops of the most shifted channels' top images (with ``out``).
        preprocess: :class:`~convscope.data.Preprocess` overriding the model's own for image files.
        input_shape: One sample's shape, for unbuilt/subclassed models.
        safe_mode: Keras safe mode when loading a file.
        custom_objects: Custom classes by name, or the ``.py`` file defining them.
        strict: Refuse folders holding unreadable image files (default: skip and list them).

    Returns:
        The :class:`CompareResult` (``path`` set when ``out`` was given).

    Raises:
        InputError: A dataset is missing, empty, does not fit the model, or the two differ in input shape.
        OptionError: Bad ``top_k`` / ``bins`` / ``batch_size``.
        OutputError: ``out`` may not be written (see :mod:`convscope.diagnose.folder`).
    """
    from convscope.models.grids import token_views
    from convscope.models.resolve import resolve_model
    from convscope.probe.cache import get_extractor
    from convscope.scan.run import layer_stats, probe_keys, receptive_fields

    top_k, bins = _positive("--top", top_k, 1), _positive("--bins", bins, 2, MAX_BINS)
    batch_size = _positive("--batch-size", batch_size, 1)
    selectors = [layers] if isinstance(layers, (str, int)) else list(layers) if layers else None
    resolved = resolve_model(
        model,
        preprocess=preprocess,
        input_shape=input_shape,
        safe_mode=safe_mode,
        custom_objects=custom_objects,
    )
    protected = (data_a, data_b, *([resolved.source] if resolved.source else []))
    out_path = None if out is None else Path(out)
    if out_path is not None:  # where we may write, before any work
        from convscope.store.output import check_out

        check_out(out_path, "compare", protected=protected, force=force, mode="replace")
    keras_model, spec = resolved.model, resolved.spec(input_shape)
    src_a = open_source(data_a, spec, resolved.preprocess, strict=strict)
    src_b = open_source(data_b, spec, resolved.preprocess, strict=strict)
    same_input(src_a, src_b)
    extractor = get_extractor(
        resolved, selectors, input_shape=input_shape, batch_size=batch_size, include_output=True
    )
    keys, shapes = probe_keys(extractor, src_a)
    views = token_views(keras_model, shapes, input_shape=input_shape, data_format=resolved.data_format)
    model_id = mf.model_identity(resolved.source or None, keras_model)
    prep = src_a.preprocessing()
    options = {"top_k": top_k, "bins": bins, "batch_size": batch_size, "preprocess": prep,
               "input_shape": list(input_shape or []) or None,
               "layers": [str(s) for s in selectors] if selectors else None}  # fmt: skip
    identity = {
        "format_version": FORMAT_VERSION,
        "model_sha256": model_id["sha256"],
        "layers": keys,
        "a": {k: _dataset(src_a)[k] for k in ("fingerprint", "size")},
        "b": {k: _dataset(src_b)[k] for k in ("fingerprint", "size")},
        **{k: options[k] for k in ("top_k", "bins", "preprocess", "input_shape")},
    }
    if out_path is not None:
        check_result_out(out_path, "compare", identity, force, protected)

    def job(source: Source) -> ScanJob:
        tokens = {key: view.tokens for key, view in views.items()}
        ref = resolved.source or keras_model
        return ScanJob(ref, tuple(selectors) if selectors else None, source, top_k, batch_size,
                       input_shape, safe_mode, custom_objects, tokens)  # fmt: skip

    first = [StatsPass(job(src), keras_model) for src in (src_a, src_b)]
    accs = [p.scan(0, p.job.source.size) for p in first]
    edges = {
        key: edges_between(
            np.fmin(first[0].moments[key].low, first[1].moments[key].low),
            np.fmax(first[0].moments[key].high, first[1].moments[key].high),
            bins,
        )
        for key in keys
    }
    second = [HistogramPass(job(src), keras_model, edges) for src in (src_a, src_b)]
    for p in second:
        p.scan(0, p.job.source.size)
    fields = receptive_fields(keras_model, keys, input_shape)
    activations = first[0].activations()
    shifted = {}
    for key in keys:
        view = views.get(key)
        shape = shapes[key]
        spatial = tuple(view.shape) if view is not None else _spatial(shape, resolved.data_format)
        rf = fields.get(key) if view is None else view.grid
        stats = [
            layer_stats(key, acc[key], activations.get(key, ""), shape, spatial, rf, src.labels, view)
            for acc, src in ((accs[0], src_a), (accs[1], src_b))
        ]
        moments = (first[0].moments[key], first[1].moments[key])
        hists = (second[0].histograms[key].counts, second[1].histograms[key].counts)
        shifted[key] = LayerShift.build(stats[0], stats[1], moments, edges[key], hists)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "identity": identity,
        "model": model_id,
        "datasets": {"a": _dataset(src_a), "b": _dataset(src_b)},
        "options": options,
        "classes": list(resolved.class_names) if resolved.class_names else None,
        "versions": mf.versions("local"),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    result = CompareResult(manifest=manifest, layers=shifted)
    if out_path is None:
        return result
    return write_compare(result, (src_a, src_b), out_path, crops)


def _spatial(shape: tuple[int, ...], data_format: str) -> tuple[int, ...]:
    return tuple(shape[1:] if data_format == "channels_first" and len(shape) > 1 else shape[:-1])
