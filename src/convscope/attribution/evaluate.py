"""Faithfulness of attribution maps: deletion / insertion AUC, ROAD, Average Drop and Increase in Confidence.

:func:`evaluate` measures, per method and per image, how the model's score of the explained class reacts
when the pixels a map ranks high are taken away or put back, always beside a ``random`` row (uniform random
maps, drawn on the coarsest grid the maps were computed on: see ``random_grid``) that any method worth its
name should beat:

* **Deletion / insertion** (Petsiuk et al., "RISE: Randomized Input Sampling for Explanation of Black-box
  Models", BMVC 2018). Pixels are sorted by decreasing map value (ties in one fixed random order of the
  pixel positions) and, in ``steps`` equal steps, step ``k`` removes the first ``floor(k/steps * H*W + 0.5)``
  of them (all channels of a pixel together). Deletion replaces them by the ``deletion`` baseline (default
  0 in model input units: black for inputs scaled to [0, 1], as in RISE); insertion starts from the
  ``insertion`` baseline (default: the image blurred, as in RISE) and puts them back. The curves
  ``(N, steps + 1)`` hold the score after each step (step 0: nothing removed / nothing inserted). The AUC
  is the trapezoid rule over the removed fraction ``x = k / steps`` in [0, 1], i.e. the mean height of the
  curve, not divided by the unperturbed score (with probabilities it lies in [0, 1]). Low deletion AUC and
  high insertion AUC are good.
* **ROAD** (Rong et al., "A Consistent and Efficient Evaluation Strategy for Attribution Methods", ICML
  2022), remove-and-debias: at each removal fraction (default 0.1, 0.3, 0.5, 0.7, 0.9) the most relevant
  (MoRF) or the least relevant (LeRF) pixels are removed and imputed by ROAD's noisy linear imputation
  (:func:`convscope.attribution.perturb.road_impute`: each removed pixel is the weighted mean of its 8
  neighbours, solved as one sparse linear system per image and mask with ``scipy.sparse`` /
  ``scipy.linalg``, plus Gaussian noise of std ``road_noise`` times the image's standard deviation — ROAD's
  0.01 on images normalized to unit std). ``road_morf`` / ``road_lerf`` are ``(N, fractions)`` scores;
  low MoRF and high LeRF are good. The table shows their mean over the fractions.
* **Average Drop / Increase in Confidence** (Chattopadhay et al., "Grad-CAM++", WACV 2018): the image is
  multiplied by its map, ``E = b + M * (x - b)`` with ``M`` the map min-max scaled to [0, 1] and ``b`` the
  deletion baseline (``E = M * x`` for the default 0, the paper's explanation map). With ``Y`` the score of
  the image and ``O`` that of ``E``: Average Drop ``= mean(max(0, Y - O) / Y) * 100`` (images with
  ``Y <= 0`` excluded, as the formula needs a positive score) and Increase in Confidence ``= % of images
  with O > Y``.

Scores are those of the target each map explains (``CamResult.plan``; fixed at the unperturbed image,
never re-chosen after a perturbation: the top-1 class, a ``seg`` target's predicted pixels): for a class of
a model ending in a softmax, the class probability; for ``seg:`` the class's logits summed over its region;
otherwise the raw output (``softmax=True`` turns logits into probabilities). Every perturbed image of a chunk of
images (all methods, all steps) is built as one ``(rows, H, W, C)`` stack — at most ``chunk_mb`` MB — and
scored through the compiled forward pass of the attribution engines in batches of ``batch_size``.

Example:
    >>> from convscope.attribution import cam, evaluate
    >>> results = [cam(model, x, m) for m in ("gradcam", "gradcampp", "layercam")]
    >>> ev = evaluate(model, x, results)                 # 20 steps, ROAD at 0.1..0.9, seed 0
    >>> ev["gradcam"].deletion_auc.shape, ev.table()[0]  # ((N,), {'method': 'gradcam', ...})
    >>> ev.versus_random("deletion_auc")                 # {'gradcam': 0.88, ...}: images where it beats random
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np

from convscope.attribution.activation import broadcast_baseline
from convscope.attribution.faithfulness import METRICS, RANDOM, Evaluation, MethodScores
from convscope.attribution.perturb import (
    gaussian_blur,
    pixel_counts,
    removal_ranks,
    require_scipy,
    road_impute,
)
from convscope.attribution.result import CamResult
from convscope.attribution.upsample import normalize01
from convscope.errors import AttributionError, InputError, OptionError
from convscope.render.display import few

log = logging.getLogger(__name__)

#: Default ROAD removal fractions.
FRACTIONS: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
_BASELINES = "'blur', a number (in model input units), one sample, or one sample per image"

Baseline = str | float | np.ndarray
Results = CamResult | Sequence[CamResult] | Mapping[str, CamResult | np.ndarray]


# -- the one place that touches the attribution engines -------------------------------------------------
class _Scored(NamedTuple):
    scores: np.ndarray  # (n,) float32
    classes: np.ndarray  # (n,) int64 class scored per row (-1: callable target)
    kind: str  # "probability" | "logit" | "output" | "custom"


def _plan(model: Any, x: np.ndarray, target: Any, batch_size: int) -> Any:
    """``target`` checked against the model for the images ``x`` (model layout), with every choice
    fixed at ``x``: the top-1 element, and the pixels a ``seg`` target without a region predicts."""
    from convscope.attribution.engines import Outputs, cached
    from convscope.attribution.facts import analyze
    from convscope.attribution.targets import TargetPlan, plan_targets

    facts = analyze(model, np.asarray(x[:1], np.float32))
    if isinstance(target, TargetPlan):
        if len(target.sel) != len(x):
            raise AttributionError(f"the results explain {len(target.sel)} images, but x has {len(x)}")
        plan = target
    else:
        first = facts.data_format == "channels_first"
        size = x.shape[2:4] if first else x.shape[1:3]
        plan = plan_targets(target, len(x), facts.outputs, (int(size[0]), int(size[1])), first)
    if plan.mode == "seg" and not plan.sel.any(axis=1).all():
        engine = cached(model, ("outputs", "", plan.output), lambda: Outputs(model, plan.output))
        out = np.concatenate([engine(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        plan = replace(plan, sel=plan.predicted(out))
    return plan


def _score(
    model: Any,
    x: Any,
    plan: Any,
    *,
    softmax: bool | None,
    batch_size: int,
    image: np.ndarray | None = None,
) -> _Scored:
    """Score the fixed target ``plan`` (from :func:`_plan`) on every row of ``x``.

    All scoring of :func:`evaluate` goes through here and :func:`_plan` (nothing else in this module
    imports the engines, targets or model facts). ``softmax=None``: softmax the logits for class targets
    of a model ending in a softmax (the class probability), otherwise score the raw output (the logits of a
    ``seg`` target); a callable target sees the logits (as :func:`~convscope.attribution.cam` gave them to
    it).

    Args:
        model: The Keras model.
        x: ``(rows, ...)`` model input (any array-like view; copied per batch).
        plan: The fixed :class:`~convscope.attribution.targets.TargetPlan` of the images.
        softmax: See above.
        batch_size: Rows per compiled call.
        image: ``(rows,)`` the image each row of ``x`` is a perturbed copy of (default row ``i`` is image
            ``i``): its target selection is read per batch, never tiled in memory.
    """
    from convscope.attribution.engines import Forward, cached
    from convscope.attribution.facts import analyze

    facts = analyze(model, np.asarray(x[:1], np.float32))
    squash = facts.squashes[plan.output] if plan.fn is None else None
    kind_of = facts.outputs[plan.output].squash if plan.fn is None else ""
    if plan.fn is not None:
        bypass = tuple(q for q in facts.squashes if q is not None)  # a callable sees the logits
    elif kind_of == "sigmoid":
        bypass = ()  # a sigmoid score is read as the model gives it (a probability)
    else:
        bypass = (squash,) if squash is not None else ()  # the softmax, re-applied below when asked
    soft = (kind_of == "softmax" and plan.class_like) if softmax is None else bool(softmax)
    names = tuple(o.name for o in facts.outputs)
    key = ("forward", "", tuple(q.path for q in bypass), plan.kind, True, soft)
    engine = cached(model, key, lambda: Forward(model, None, bypass, plan, names, apply_softmax=soft))
    scores = np.empty(len(x), np.float32)
    classes = np.empty(len(x), np.int64)
    which = np.arange(len(x)) if image is None else image
    for start in range(0, len(x), batch_size):
        rows = slice(start, min(start + batch_size, len(x)))
        _, scores[rows], classes[rows] = engine(x[rows], plan.sel[which[rows]])
    kind = (
        "custom"
        if plan.fn is not None
        else "probability"
        if soft or kind_of == "sigmoid"
        else "logit"
        if bypass
        else "output"
    )
    return _Scored(scores, classes, kind)


# -- validation ------------------------------------------------------------------------------------------
def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise OptionError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _fractions(fractions: Any) -> tuple[float, ...]:
    try:
        values = tuple(float(f) for f in np.atleast_1d(np.asarray(fractions, dtype=np.float64)))
    except (TypeError, ValueError):
        raise OptionError(f"fractions must be numbers in (0, 1), got {fractions!r}") from None
    bad = [f for f in values if not 0.0 < f < 1.0]
    if not values or bad:
        raise OptionError(
            f"fractions must be a non-empty list of numbers strictly between 0 and 1, got {list(values)!r}"
            + (f" ({', '.join(f'{b:g}' for b in bad)} outside (0, 1))" if bad else "")
        )
    return values


def _named_maps(results: Any) -> tuple[list[tuple[str, np.ndarray]], Any]:
    """``[(name, maps (N, H, W) float32)]`` and the target the CamResults explain (``None``: arrays only):
    their fixed :class:`~convscope.attribution.targets.TargetPlan`, or their classes when they carry none
    (results built by hand)."""
    if isinstance(results, CamResult):
        items: list[tuple[str, Any]] = [(results.method, results)]
    elif isinstance(results, Mapping):
        items = [(str(k), v) for k, v in results.items()]
    elif isinstance(results, Sequence) and not isinstance(results, (str, bytes)):
        items = []
        for r in results:
            if not isinstance(r, CamResult):
                raise OptionError(
                    f"results must be CamResults (or a dict name -> CamResult or maps array), got a "
                    f"{type(r).__name__} in the list"
                )
            items.append((r.method, r))
    else:
        raise OptionError(
            "results must be a CamResult, a list of CamResults, or a dict name -> CamResult or (N, H, W) "
            f"maps array; got {type(results).__name__}"
        )
    if not items:
        raise OptionError("results is empty; give at least one CamResult or maps array")
    names = [n for n, _ in items]
    for name in names:
        if names.count(name) > 1:
            raise OptionError(
                f"two results are named {name!r}; pass a dict {{name: result}} to tell them apart"
            )
        if name == RANDOM:
            raise OptionError(f"the name {RANDOM!r} is taken by the random-map baseline; rename that result")
    maps, targets = [], []
    for name, item in items:
        if isinstance(item, CamResult):
            targets.append((name, item))
            array = item.maps
        else:
            array = np.asarray(item)
        if array.dtype == object or not np.issubdtype(array.dtype, np.number):
            raise InputError(f"maps of {name!r} must be a numeric (N, H, W) array, got dtype {array.dtype}")
        maps.append((name, np.asarray(array, np.float32)))
    if not targets:
        return maps, None
    first = targets[0][1]
    for name, other in targets[1:]:
        if not _same_target(first, other):
            classes = first.explained == other.explained == "class"
            a, b = (few(r.targets) if classes else f"{r.target} {few(r.targets)}" for r in (first, other))
            raise AttributionError(
                f"the results explain different {'classes' if classes else 'targets'} ({targets[0][0]}: "
                f"{a}, {name}: {b}); evaluate maps of the same targets together"
            )
    if first.plan is None:  # a hand-made result: only class targets can be rebuilt from it
        if first.explained != "class":
            raise AttributionError(
                f"result {targets[0][0]!r} explains {first.target} but carries no target plan; "
                "pass target= to evaluate it"
            )
        return maps, tuple(first.targets)
    return maps, first.plan


def _same_target(a: CamResult, b: CamResult) -> bool:
    """Two results explain the same thing: the same spec and element per image (and the same region)."""
    if a.target != b.target or tuple(a.targets) != tuple(b.targets):
        return False
    if a.plan is None or b.plan is None:
        return a.plan is b.plan
    return a.plan.fn is b.plan.fn and np.array_equal(a.plan.sel, b.plan.sel)


def _images(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"evaluate needs a numeric image array (N, H, W, C), got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[0] == 0:
        raise InputError(
            f"evaluate needs images shaped (N, H, W, C) (or one (H, W, C) image), got shape {arr.shape}"
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def _baseline(spec: Any, x: np.ndarray, first: bool, sigma: float, what: str) -> tuple[np.ndarray, str]:
    """The baseline images, channels last ``(N, H, W, C)``, and how to describe them."""
    if isinstance(spec, str):
        if spec.strip().lower() != "blur":
            raise OptionError(f"{what} {spec!r} is not understood; accepted: {_BASELINES}")
        channels_last = np.moveaxis(x, 1, -1) if first else x
        return gaussian_blur(channels_last, sigma), f"the blurred image (sigma {sigma:.3g} px)"
    base = broadcast_baseline(spec, x, what)  # model layout; InputError for a bad shape
    channels_last = np.moveaxis(base, 1, -1) if first else base
    arr = np.asarray(spec)
    label = f"{float(arr):g}" if arr.ndim == 0 else "the given baseline"
    return np.ascontiguousarray(channels_last, dtype=np.float32), label


def _road_noise(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0 <= value < math.inf:
        raise OptionError(f"road_noise must be a number >= 0, got {value!r}")
    return float(value)


# -- the metrics -----------------------------------------------------------------------------------------
def _random_maps(seed: int, rows: range, h: int, w: int, grid: tuple[int, int]) -> np.ndarray:
    """Image ``i``'s random map: ``numpy.random.default_rng([seed, 1, i]).random(grid)``, bilinear-resized
    to ``(H, W)`` when the grid is coarser than the image (:func:`convscope.render.resize.resize`)."""
    from convscope.render.resize import resize

    def one(i: int) -> np.ndarray:
        values = np.random.default_rng([seed, 1, i]).random(grid).astype(np.float32)
        return values if grid == (h, w) else resize(values, (h, w), "bilinear")

    return np.stack([one(i) for i in rows]).astype(np.float32)


def _random_grid(spec: Any, results: Any, h: int, w: int) -> tuple[int, int]:
    """The grid of the random maps: ``"auto"`` = the coarsest grid the CamResults were computed on."""
    if isinstance(spec, str) and spec == "pixel":
        return h, w
    if isinstance(spec, str) and spec == "auto":
        items = (
            [results]
            if isinstance(results, CamResult)
            else (list(results.values()) if isinstance(results, Mapping) else list(results))
        )
        grids = [(int(r.raw.shape[1]), int(r.raw.shape[2])) for r in items if isinstance(r, CamResult)]
        grids = [g for g in grids if 1 <= g[0] <= h and 1 <= g[1] <= w]
        return min(grids, key=lambda g: g[0] * g[1]) if grids else (h, w)
    try:
        gh, gw = (int(v) for v in spec)
    except (TypeError, ValueError):
        gh = gw = 0
    if not (1 <= gh <= h and 1 <= gw <= w):
        raise OptionError(
            f"random_grid must be 'auto', 'pixel' or (rows, cols) between 1 and the image size {(h, w)}, "
            f"got {spec!r}"
        )
    return gh, gw


def _noise(seed: int, name: str, rows: range, shape: tuple[int, ...], scale: np.ndarray) -> np.ndarray:
    """ROAD noise ``(len(rows), *shape)``: image ``i`` of method ``name`` draws from its own generator."""
    tag = zlib.crc32(name.encode())
    return np.stack(
        [
            np.random.default_rng([seed, 2, i, tag]).standard_normal(shape, dtype=np.float32) * scale[k]
            for k, i in enumerate(rows)
        ]
    )


def _auc(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area under ``(N, S + 1)`` curves sampled at ``k / S``, ``k = 0..S``."""
    s = curves.shape[1] - 1
    return ((curves[:, :-1].astype(np.float64) + curves[:, 1:]).sum(axis=1) / (2 * s)).astype(np.float32)


def _perturb(
    out: np.ndarray,
    maps: np.ndarray,
    x: np.ndarray,
    deleted: np.ndarray,
    start_from: np.ndarray,
    *,
    step_n: np.ndarray,
    road_n: np.ndarray,
    tie_keys: np.ndarray,
    noise: np.ndarray | None,
) -> None:
    """Fill ``out (b, rows, H, W, C)`` with every perturbed image one method's maps call for.

    Rows: deletion steps ``1..S-1`` (the first ``step_n[k]`` pixels set to ``deleted``), insertion steps
    ``1..S-1`` (the same pixels of ``x`` put into ``start_from``), ROAD MoRF then LeRF at each fraction
    (``road_n`` pixels removed and imputed, plus ``noise (b, 2F, H, W, C)``), the explanation map
    ``deleted + M (x - deleted)``. Step 0 and step S are the same for every method; they are scored once.
    """
    b, h, w, c = x.shape
    steps, f_count = len(step_n) - 1, len(road_n)
    r_del, r_ins, r_road = slice(0, steps - 1), slice(steps - 1, 2 * steps - 2), 2 * steps - 2
    ranks = removal_ranks(maps, tie_keys)  # (b, P)
    top = (ranks[:, None, :] < step_n[None, 1:steps, None]).reshape(b, steps - 1, h, w, 1)
    np.copyto(out[:, r_del], x[:, None])
    np.copyto(out[:, r_del], deleted[:, None], where=top)
    np.copyto(out[:, r_ins], start_from[:, None])
    np.copyto(out[:, r_ins], x[:, None], where=top)
    p = h * w
    removed = np.concatenate(
        [ranks[:, None, :] < road_n[None, :, None], ranks[:, None, :] >= p - road_n[None, :, None]], axis=1
    ).reshape(b * 2 * f_count, h, w)
    out[:, r_road : r_road + 2 * f_count] = road_impute(
        np.repeat(x, 2 * f_count, axis=0),
        removed,
        None if noise is None else noise.reshape(b * 2 * f_count, h, w, c),
    ).reshape(b, 2 * f_count, h, w, c)
    weight = np.nan_to_num(normalize01(maps))[..., None]
    out[:, -1] = deleted + weight * (x - deleted)


def evaluate(
    model: Any,
    x: Any,
    results: Results,
    *,
    target: Any = None,
    steps: int = 20,
    fractions: Sequence[float] = FRACTIONS,
    deletion: Baseline = 0.0,
    insertion: Baseline = "blur",
    blur_sigma: float | None = None,
    road_noise: float = 0.01,
    softmax: bool | None = None,
    seed: int = 0,
    random_grid: str | tuple[int, int] = "auto",
    batch_size: int = 128,
    chunk_mb: float = 256,
) -> Evaluation:
    """Deletion / insertion AUC, ROAD MoRF / LeRF and Average Drop / Increase of each method's maps.

    See the module documentation for the definitions. Every perturbed image of a chunk of images is built
    as one stack (at most ``chunk_mb`` MB) and scored through the compiled forward pass in batches of
    ``batch_size`` rows; per image and method that is ``2 * (steps - 1) + 2 * len(fractions) + 1`` rows,
    plus three per image shared by all methods (the image and the two baselines).

    Args:
        model: The Keras model the maps explain (a path or zoo name is loaded).
        x: ``(N, H, W, C)`` preprocessed images (channels first if the model is), or one ``(H, W, C)``.
        results: A :class:`CamResult`, a list of them (named by their method), or a dict
            ``{name: CamResult or (N, H, W) maps}`` at the input resolution. Maps are only ranked, except
            for Average Drop, which scales each to [0, 1].
        target: What to score: default the target the CamResults explain (they must agree: class, output
            element, ``seg`` region or callable); needed for bare arrays: any target of
            :mod:`~convscope.attribution.targets` (``"top1"``: the argmax on the unperturbed image;
            ``"seg:1"``: class 1's logits summed over the pixels predicted as 1 there), one class per
            image, or a callable ``f(output) -> (N,)`` (it gets the logits of a softmax model).
        steps: Deletion / insertion steps (curves have ``steps + 1`` points).
        fractions: ROAD removal fractions, each in (0, 1).
        deletion: What removed pixels become: a number (default 0, in model input units), ``"blur"``, one
            sample, or one sample per image (model layout). Also the ``b`` of Average Drop's ``b + M (x - b)``.
        insertion: What insertion starts from: ``"blur"`` (default) or the same forms as ``deletion``.
        blur_sigma: Gaussian blur sigma in pixels (default ``0.1 * max(H, W)``).
        road_noise: ROAD noise std as a fraction of each image's standard deviation (0 = no noise).
        softmax: ``None``: class probability for softmax models, raw output otherwise; ``True``: softmax the
            (logit) output; ``False``: logits (the output softmax bypassed) or the raw output.
        seed: Seed (>= 0) of the random maps, the order of tied pixels and the ROAD noise.
        random_grid: Where the random maps are drawn: ``"auto"`` (default) on the coarsest grid the
            CamResults were computed on (e.g. 7x7 for a CAM of the last conv layer of an ImageNet net), then
            bilinear-resized to the image, so the baseline removes regions as coarse as the maps it is
            compared with; ``"pixel"``: one value per pixel (removing scattered single pixels, which
            hurts some networks far more than removing regions does); or ``(rows, cols)``.
        batch_size: Rows per compiled forward call.
        chunk_mb: Memory bound of one stack of perturbed images, in MB (at least one image per stack).

    Returns:
        An :class:`Evaluation`: per method (and ``"random"``) the per-image arrays, ``table()``, ``to_json()``.

    Raises:
        OptionError: ``steps`` < 1, fractions outside (0, 1), a bad baseline or option, duplicate names.
        InputError: Images or maps of the wrong shape (the message gives both shapes).
        AttributionError: Results explaining different classes, a target missing for bare arrays, a bad
            target, or scipy missing.
    """
    steps = _positive_int(steps, "steps")
    batch_size = _positive_int(batch_size, "batch_size")
    if isinstance(chunk_mb, bool) or not isinstance(chunk_mb, (int, float)) or not 0 < chunk_mb < math.inf:
        raise OptionError(f"chunk_mb must be a number > 0 (megabytes), got {chunk_mb!r}")
    fracs = _fractions(fractions)
    noise_frac = _road_noise(road_noise)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise OptionError(f"seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    if blur_sigma is not None and not (isinstance(blur_sigma, (int, float)) and 0 < blur_sigma < math.inf):
        raise OptionError(f"blur_sigma must be a number > 0 (pixels) or None, got {blur_sigma!r}")
    require_scipy()
    if not hasattr(model, "layers"):
        from convscope.models.load import load_model

        model = load_model(model)
    from convscope.models.spec import data_format, ensure_built

    named, explained = _named_maps(results)
    images = _images(x)
    model = ensure_built(model, tuple(images.shape[1:])) if not getattr(model, "built", True) else model
    first = data_format(model) == "channels_first"
    xl = np.ascontiguousarray(np.moveaxis(images, 1, -1)) if first else images  # channels last
    n, h, w, c = xl.shape
    grid = _random_grid(random_grid, results, h, w)
    for name, maps in named:
        if maps.shape != (n, h, w):
            raise InputError(
                f"maps of {name!r} have shape {maps.shape}; expected (N, H, W) = {(n, h, w)}, one map per "
                f"image at the input resolution of images shaped {images.shape}"
            )

    goal = target if target is not None else explained
    if goal is None:
        raise AttributionError(
            "maps given as arrays need target=: a class, one class per image, 'top1' or a callable"
        )
    if target is None and isinstance(explained, tuple) and any(t < 0 for t in explained):
        raise AttributionError(
            "the results explain a callable target; pass the same callable as target= to score it"
        )

    def layout(stack: np.ndarray) -> np.ndarray:
        return np.moveaxis(stack, -1, 1) if first else stack

    plan = _plan(model, images, goal, batch_size)
    unperturbed = _score(model, images, plan, softmax=softmax, batch_size=batch_size)
    plan = replace(plan, sel=plan.selection(unperturbed.classes))  # never re-chosen after perturbing

    def row_images(rows: slice, tile: int, repeat: int = 1) -> np.ndarray:
        """The image of each row of a stack ``(tile, len(rows), repeat)`` of perturbed images."""
        return np.repeat(np.tile(np.arange(n)[rows], tile), repeat)

    sigma = float(blur_sigma) if blur_sigma is not None else 0.1 * max(h, w)
    deleted, deletion_label = _baseline(deletion, images, first, sigma, "deletion")
    start_from, insertion_label = _baseline(insertion, images, first, sigma, "insertion")
    ends = _score(
        model,
        layout(np.concatenate([deleted, start_from])),
        plan,
        softmax=softmax,
        batch_size=batch_size,
        image=row_images(slice(0, n), 2),
    ).scores
    y = unperturbed.scores

    names = [*(name for name, _ in named), RANDOM]
    m_count, p, f_count = len(names), h * w, len(fracs)
    step_n = pixel_counts(np.arange(steps + 1) / steps, p)
    road_n = np.minimum(pixel_counts(fracs, p), p - 1)  # ROAD needs one kept pixel
    tie_keys = np.random.default_rng([seed, 0]).permutation(p)
    noise_scale = noise_frac * xl.reshape(n, -1).std(axis=1)
    # rows per image and method: deletion and insertion steps 1..S-1, ROAD MoRF then LeRF, explanation map
    r_del, r_ins, r_road = slice(0, steps - 1), slice(steps - 1, 2 * steps - 2), 2 * steps - 2
    per_image = r_road + 2 * f_count + 1
    chunk = max(1, int(chunk_mb * (1 << 20)) // (m_count * per_image * p * c * 4))

    del_curves = np.empty((m_count, n, steps + 1), np.float32)
    ins_curves = np.empty((m_count, n, steps + 1), np.float32)
    morf = np.empty((m_count, n, f_count), np.float32)
    lerf = np.empty((m_count, n, f_count), np.float32)
    explanation = np.empty((m_count, n), np.float32)
    del_curves[:, :, 0], del_curves[:, :, steps] = y, ends[:n]
    ins_curves[:, :, 0], ins_curves[:, :, steps] = ends[n:], y
    log.info(
        "evaluating %s on %d images: %d perturbed images per image and method, chunks of %d images",
        ", ".join(names),
        n,
        per_image,
        chunk,
    )

    for start in range(0, n, chunk):
        rows = range(start, min(start + chunk, n))
        b = len(rows)
        xc, dc, ic = xl[start : rows.stop], deleted[start : rows.stop], start_from[start : rows.stop]
        stack = np.empty((m_count, b, per_image, h, w, c), np.float32)
        for m, name in enumerate(names):
            maps = _random_maps(seed, rows, h, w, grid) if name == RANDOM else named[m][1][start : rows.stop]
            noise = (
                _noise(seed, name, rows, (2 * f_count, h, w, c), noise_scale[start : rows.stop])
                if noise_frac > 0
                else None
            )
            _perturb(stack[m], maps, xc, dc, ic, step_n=step_n, road_n=road_n, tie_keys=tie_keys, noise=noise)
        scored = _score(
            model,
            layout(stack.reshape(-1, h, w, c)),
            plan,
            softmax=softmax,
            batch_size=batch_size,
            image=row_images(slice(start, rows.stop), m_count, per_image),
        ).scores.reshape(m_count, b, per_image)
        part = slice(start, rows.stop)
        del_curves[:, part, 1:steps] = scored[:, :, r_del]
        ins_curves[:, part, 1:steps] = scored[:, :, r_ins]
        morf[:, part] = scored[:, :, r_road : r_road + f_count]
        lerf[:, part] = scored[:, :, r_road + f_count : r_road + 2 * f_count]
        explanation[:, part] = scored[:, :, -1]

    positive = y > 0
    if not positive.all():
        log.warning(
            "%d of %d images have a score <= 0 (%s): Average Drop leaves them out",
            int((~positive).sum()),
            n,
            unperturbed.kind,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        drops = np.where(
            positive, np.maximum(0.0, y - explanation) / np.where(positive, y, 1.0) * 100.0, np.nan
        )
    methods = tuple(
        MethodScores(
            method=name,
            deletion=del_curves[m],
            insertion=ins_curves[m],
            deletion_auc=_auc(del_curves[m]),
            insertion_auc=_auc(ins_curves[m]),
            road_morf=morf[m],
            road_lerf=lerf[m],
            explanation_scores=explanation[m],
            drop=drops[m].astype(np.float32),
            increase=explanation[m] > y,
        )
        for m, name in enumerate(names)
    )
    return Evaluation(
        methods=methods,
        scores=y,
        targets=tuple(int(t) for t in unperturbed.classes),
        score=unperturbed.kind,
        explained=plan.describe,
        steps=steps,
        fractions=fracs,
        deletion=deletion_label,
        insertion=insertion_label,
        road_noise=noise_frac,
        seed=seed,
        random_grid=grid,
    )


__all__ = ["FRACTIONS", "METRICS", "RANDOM", "Evaluation", "MethodScores", "evaluate"]
