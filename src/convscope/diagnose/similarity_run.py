"""``similarity``: the layer x layer linear CKA matrix of one model with itself, or of two models.

Example:
    >>> from convscope.diagnose import similarity
    >>> same = similarity("mnist-cnn", "mnist", layers=["conv_0", "conv_1", "dense_0"])
    >>> seeds = similarity("seed0.keras", "mnist", model_b="seed1.keras", out="cka-out")
    >>> seeds.matrix.diagonal()                       # each layer against the same layer of the other seed

The dataset streams in minibatches (:func:`convscope.diagnose.cka.minibatches`): one forward pass per model
and batch gives every layer, each layer's ``n x n`` Gram matrix is reduced to the unbiased HSIC sums of
:class:`~convscope.diagnose.cka.HsicAccumulator` while the next forward pass runs, so memory is
``O(n^2 x layers)`` whatever the dataset size.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from convscope.diagnose.cka import (
    MAX_BATCH,
    MIN_BATCH,
    GramTerms,
    HsicAccumulator,
    gram,
    gram_terms,
    minibatches,
)
from convscope.diagnose.compare_run import same_input
from convscope.diagnose.folder import check_result_out
from convscope.diagnose.similarity_result import FORMAT, FORMAT_VERSION, SimilarityResult, write_similarity
from convscope.errors import InputError, OptionError
from convscope.scan import manifest as mf
from convscope.scan.reduce import one_blas_thread
from convscope.scan.source import Source, open_source

log = logging.getLogger(__name__)


def _terms(acts: dict[str, np.ndarray], keys: Sequence[str]) -> GramTerms:
    return gram_terms([gram(acts[k]) for k in keys])


def similarity(
    model_a: Any,
    data: Any,
    *,
    model_b: Any = None,
    layers: Sequence[str | int] | str | None = None,
    layers_b: Sequence[str | int] | str | None = None,
    batch_size: int = 64,
    out: str | Path | None = None,
    force: bool = False,
    input_shape: tuple[int, ...] | None = None,
    safe_mode: bool = True,
    custom_objects: Any = None,
    strict: bool = False,
) -> SimilarityResult:
    """Linear CKA between every layer of ``model_a`` and every layer of ``model_b`` (or of ``model_a``).

    Args:
        model_a: The first model (resolved model, path, zoo name or ``keras.Model``; never modified).
        data: The examples both models see (anything :func:`convscope.scan.scan` reads), each model
            reading it with its own preprocessing; both must take inputs of one shape.
        model_b: The second model (another checkpoint, another seed, another architecture); ``None``
            compares ``model_a`` with itself.
        layers: Layer selectors of ``model_a`` (``None`` = every conv layer).
        layers_b: Layer selectors of ``model_b`` (``None`` = the same selectors as ``layers``).
        batch_size: Minibatch size of the unbiased HSIC (4 to 1024; also the forward batch). The estimate
            is defined by this partition (see :mod:`convscope.diagnose.cka`).
        out: Results folder (``cka.json``, ``cka.png``, ``hsic.npz``); ``None`` keeps it in memory.
        force: Replace a different similarity result (or another convscope result) at ``out``.
        input_shape: One sample's shape, for unbuilt/subclassed models.
        safe_mode: Keras safe mode when loading files.
        custom_objects: Custom classes by name, or the ``.py`` file defining them.
        strict: Refuse folders holding unreadable image files.

    Returns:
        The :class:`SimilarityResult`.

    Raises:
        InputError: DATA is missing, has fewer than 4 examples or does not fit a model; the two models
            take inputs of different shapes.
        OptionError: ``batch_size < 4``.
        OutputError: ``out`` may not be written.
    """
    from convscope.models.resolve import resolve_model
    from convscope.probe.cache import get_extractor
    from convscope.scan.run import probe_keys

    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or not MIN_BATCH <= batch_size <= MAX_BATCH
    ):
        raise OptionError(
            f"--batch-size must be an integer from {MIN_BATCH} (the unbiased HSIC) to {MAX_BATCH}, got {batch_size!r}"
        )
    sel_a = [layers] if isinstance(layers, (str, int)) else list(layers) if layers else None
    sel_b = [layers_b] if isinstance(layers_b, (str, int)) else list(layers_b) if layers_b else sel_a
    kw = {"input_shape": input_shape, "safe_mode": safe_mode, "custom_objects": custom_objects}
    res_a = resolve_model(model_a, **kw)
    res_b = None if model_b is None else resolve_model(model_b, **kw)
    protected = [data, *(r.source for r in (res_a, res_b) if r is not None and r.source)]
    out_path = None if out is None else Path(out)
    if out_path is not None:
        from convscope.store.output import check_out

        check_out(out_path, "similarity", protected=protected, force=force, mode="replace")
    spec_a = res_a.spec(input_shape)
    if res_b is not None:
        spec_b = res_b.spec(input_shape)
        if tuple(spec_a.shape) != tuple(spec_b.shape):
            raise InputError(
                f"model A ({res_a.name}) takes inputs of shape {tuple(spec_a.shape)} but model B "
                f"({res_b.name}) {tuple(spec_b.shape)}; similarity runs both models on the same inputs"
            )
    src_a = open_source(data, spec_a, res_a.preprocess, strict=strict)
    src_b: Source | None = None
    if res_b is not None:
        src_b = open_source(data, res_b.spec(input_shape), res_b.preprocess, strict=strict)
        same_input(src_a, src_b, ("model A's input", "model B's input"))
    if src_a.size < MIN_BATCH:
        raise InputError(f"DATA {src_a.name!r} holds {src_a.size} examples; CKA needs at least {MIN_BATCH}")
    ex_a = get_extractor(res_a, sel_a, input_shape=input_shape, batch_size=batch_size)
    ex_b = (
        None if res_b is None else get_extractor(res_b, sel_b, input_shape=input_shape, batch_size=batch_size)
    )
    keys_a = probe_keys(ex_a, src_a)[0]
    keys_b = keys_a if ex_b is None else probe_keys(ex_b, src_b)[0]  # type: ignore[arg-type]
    ids = [mf.model_identity(r.source or None, r.model) for r in (res_a, res_b) if r is not None]
    identity = {
        "format_version": FORMAT_VERSION,
        "models": [i["sha256"] for i in ids],
        "rows": keys_a,
        "cols": keys_b,
        "dataset": {"fingerprint": src_a.fingerprint, "size": src_a.size},
        "batch_size": int(batch_size),
        "input_shape": list(input_shape or []) or None,
    }
    if out_path is not None:
        check_result_out(out_path, "similarity", identity, force, protected)
    acc = HsicAccumulator(len(keys_a), len(keys_b))
    pending: Future[None] | None = None

    def reduce(acts_a: dict[str, np.ndarray], acts_b: dict[str, np.ndarray] | None) -> None:
        ta = _terms(acts_a, keys_a)
        acc.add(ta, None if acts_b is None else _terms(acts_b, keys_b))

    with one_blas_thread(), ThreadPoolExecutor(1, thread_name_prefix="convscope-cka") as pool:
        for start, stop in minibatches(src_a.size, int(batch_size)):
            acts_a = ex_a.run_batch(src_a.read(start, stop))
            acts_b = None if ex_b is None else ex_b.run_batch(src_b.read(start, stop))  # type: ignore[union-attr]
            if pending is not None:
                pending.result()  # one batch reduces while the next runs forward: memory stays bounded
            pending = pool.submit(reduce, acts_a, acts_b)
        if pending is not None:
            pending.result()
    names = (res_a.name, res_b.name if res_b is not None else res_a.name)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "identity": identity,
        "models": {"a": ids[0], "b": ids[1] if len(ids) > 1 else None},
        "names": list(names),
        "dataset": {"source": src_a.name, "size": src_a.size, "fingerprint": src_a.fingerprint},
        "options": {
            "batch_size": int(batch_size),
            "batches": acc.batches,
            "layers": [str(s) for s in sel_a] if sel_a else None,
            "layers_b": [str(s) for s in sel_b] if sel_b else None,
        },
        "versions": mf.versions("local"),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    result = SimilarityResult(manifest, tuple(keys_a), tuple(keys_b), acc)
    return result if out_path is None else write_similarity(result, out_path)
