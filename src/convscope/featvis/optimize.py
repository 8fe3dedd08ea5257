"""The optimizer: Adam on the image parameters, with gradients from the backend, compiled once.

    res = maximize(model, "conv_1:7", steps=128)               # one image
    res = maximize_channels(model, "conv_1", "64")              # 64 channels = ONE batch of 64 images
    res.to_grid().save("conv_1_features.png")

Per step: draw the transforms' random parameters (numpy, seeded), run the compiled
``value_and_grad`` (param -> image in [0, 1] -> transforms -> model's value range -> model, stopped as
soon as the objective has what it needs -> per-image objective), update the parameters with Adam in
numpy. The compiled function depends only on the *structure* (model, objective, parameterization,
transform chain, shapes), never on the random values, so it is traced once and reused by every step —
and by later calls with the same structure (a small cache; see :func:`clear_cache`).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from convscope import backend
from convscope.errors import OptionError
from convscope.featvis import objectives as objs
from convscope.featvis.adam import Adam
from convscope.featvis.geometry import Geometry, ValueMap, layer_channels, resolve_geometry
from convscope.featvis.objectives import Objective
from convscope.featvis.options import Progress, check_number, progress_reporter
from convscope.featvis.param import Param, get_param
from convscope.featvis.parse import parse_objective
from convscope.featvis.result import MaxResult
from convscope.featvis.taps import TapPlan, run_taps
from convscope.featvis.transforms import Compose, get_transforms
from convscope.models.spec import ensure_built
from convscope.render.channels import ChannelSpec, parse_channels

log = logging.getLogger(__name__)

CACHE_SIZE: Final = 8
_CACHE: OrderedDict[tuple[Any, ...], _Compiled] = OrderedDict()


@dataclass
class _Compiled:
    """The compiled gradient and evaluation functions of one structure, and how often they were traced."""

    model_ref: weakref.ref[Any]
    objective: Objective
    grad: Callable[..., Any]
    evaluate: Callable[..., Any]
    traces: list[int]


def clear_cache() -> None:
    """Forget every compiled function (they hold references to their models)."""
    _CACHE.clear()


def _build(
    model: Any,
    objective: Objective,
    param: Param,
    chain: Compose,
    vmap: ValueMap,
    geo: Geometry,
    tv: float,
    l2: float,
    redirect: bool,
    route: str | None,
) -> _Compiled:
    from keras import ops

    be = backend.get()
    plan = TapPlan.build(model, objective.needs, redirect_relu=redirect, route=route)
    shape = geo.shape
    reg = [(w, f) for w, f in ((tv, objs.total_variation()), (l2, objs.l2())) if w]
    traces = [0]

    def evaluate(call: Callable[[Any], Any], image: Any, x: Any) -> tuple[Any, Any]:
        x = vmap.apply(x)
        if geo.channels_first:
            x = ops.transpose(x, (0, 3, 1, 2))
        taps = run_taps(plan, call, x, image)
        user = objective(taps) + ops.zeros((shape[0],))
        total = user
        for weight, term in reg:
            total = total - weight * term(taps)
        return user, total

    def grad_fn(call: Callable[[Any], Any], wrt: list[Any], *others: Any) -> tuple[Any, Any]:
        traces[0] += 1  # a Python side effect: runs once per trace under tf.function / jax.jit
        image = param.render(wrt, shape)
        user, total = evaluate(call, image, chain.apply(image, [ops.convert_to_tensor(o) for o in others]))
        return ops.sum(total), (user,)

    def eval_body(call: Callable[[Any], Any], params: list[Any]) -> tuple[Any, Any]:
        image = param.render([ops.convert_to_tensor(p) for p in params], shape)
        return evaluate(call, image, image)[0], image

    return _Compiled(
        weakref.ref(model),
        objective,
        be.value_and_grad(model, grad_fn),
        be.compile_run(model, eval_body),
        traces,
    )


def _compiled(
    model: Any,
    objective: Objective,
    param: Param,
    chain: Compose,
    vmap: ValueMap,
    geo: Geometry,
    tv: float,
    l2: float,
    redirect: bool,
    route: str | None,
) -> _Compiled:
    key = (
        id(model),
        backend.current(),
        objective.key,
        param.key,
        chain.key,
        vmap,
        geo,
        float(tv),
        float(l2),
        redirect,
        route,
    )
    entry = _CACHE.get(key)
    if entry is None or entry.model_ref() is not model:
        entry = _build(model, objective, param, chain, vmap, geo, tv, l2, redirect, route)
        _CACHE[key] = entry
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return entry


def maximize(
    model: Any,
    objective: Objective | str,
    *,
    batch: int | None = None,
    steps: int = 256,
    lr: float = 0.05,
    param: str | Param = "fft",
    transforms: str | Compose | Sequence[Any] | None = "default",
    tv: float = 0.0,
    l2: float = 0.0,
    seed: int = 0,
    size: int | tuple[int, int] | None = None,
    value_range: Sequence[float] | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    decorrelate: bool = True,
    init: np.ndarray | None = None,
    redirect_relu: bool = True,
    route: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    progress: Progress | bool | None = None,
) -> MaxResult:
    """Optimize a batch of images to maximize ``objective``.

    Args:
        model: A Keras model with one image input (never modified, compiled or renamed).
        objective: An :class:`~convscope.featvis.objectives.Objective` or a string such as ``"conv_1:7"``.
        batch: Images to optimize together (independently); a batched objective sets it (default 1).
        steps: Adam steps.
        lr: Adam learning rate.
        param: ``"fft"`` (decorrelated Fourier, default), ``"pixel"`` or a :class:`Param`.
        transforms: ``"default"`` (lucid's jitter/scale/rotate chain sized to the image), ``"none"`` or
            ``None``, a list of transforms, or a :class:`~convscope.featvis.transforms.Compose`.
        tv: Weight of the total-variation penalty (subtracted).
        l2: Weight of the L2 penalty (distance from mid gray, subtracted).
        seed: Seeds the initial parameters and every random transform: equal seeds, equal results.
        size: Image size ``H`` or ``(H, W)``; ``None`` = the model's input size (128 if it is free).
        value_range: ``(lo, hi)`` the model expects (default ``(0, 1)``); or give ``mean`` and ``std``
            (per channel or one number) for ``(x - mean) / std`` of the [0, 1] image.
        mean: See ``value_range``.
        std: See ``value_range``.
        decorrelate: ImageNet color decorrelation for 3-channel images.
        init: Optional starting images ``(B, H, W, C)`` in [0, 1] (instead of a random start).
        redirect_relu: lucid's redirected ReLU gradient for channels computed from a Conv2D's input: an
            image whose target channel is off everywhere still gets a gradient (the values reported
            are always the true ReLU values).
        route: How a channel of a plain Conv2D is computed: ``"slice"`` / ``"taps"`` (only that
            channel), ``"conv"`` (all, then pick), ``"output"`` (run the layer); ``None`` = the
            backend's fastest (see :mod:`~convscope.featvis.fastconv`).
        input_shape: One sample's shape: builds an unbuilt model, and gives a subclassed model (which has
            no graph inputs) its image geometry; default: the shape it was first called with.
        progress: ``callable(step, steps, per-image values)`` after every step, or True to log.

    Returns:
        A :class:`~convscope.featvis.result.MaxResult`.

    Raises:
        OptionError: a malformed option (echoed, with what is accepted).
        LayerNotFound: the objective names a layer the model does not have.
        InputError: the model does not take one image input.
    """
    steps = int(check_number("steps", steps, integer=True))
    lr = check_number("lr", lr, positive=True)
    tv, l2 = check_number("tv", tv), check_number("l2", l2)
    seed = int(check_number("seed", seed, integer=True))
    report = progress_reporter(progress, steps)
    model = ensure_built(model, input_shape)
    if isinstance(objective, str):
        objective = parse_objective(objective, model)
    elif not isinstance(objective, Objective):
        raise OptionError(f"objective must be an Objective or a string like 'conv_1:7', got {objective!r}")
    if batch is not None:
        batch = int(check_number("batch", batch, positive=True, integer=True))
    if objective.batch is not None and batch is not None and batch != objective.batch:
        raise OptionError(
            f"batch={batch} conflicts with the objective {objective.name}, which optimizes "
            f"{objective.batch} images (one per channel); leave batch unset"
        )
    n = objective.batch or batch or 1
    geo = resolve_geometry(model, size, n, input_shape)
    chain = get_transforms(transforms, max(geo.h, geo.w))
    if geo.fixed and chain.out_size(geo.h, geo.w) != (geo.h, geo.w):
        raise OptionError(
            f"the transforms turn {geo.h}x{geo.w} images into {chain.out_size(geo.h, geo.w)}, "
            f"but model {model.name!r} takes exactly {geo.h}x{geo.w}; drop Pad from the "
            "transforms"
        )
    vmap = ValueMap.build(value_range, mean, std)
    if vmap.mean is not None and len(vmap.mean) not in (1, geo.c):
        raise OptionError(
            f"mean/std have {len(vmap.mean)} values for a {geo.c}-channel input; give 1 or {geo.c}"
        )
    p = get_param(param, decorrelate)
    fns = _compiled(model, objective, p, chain, vmap, geo, tv, l2, bool(redirect_relu), route)
    be = backend.get()
    rng = np.random.default_rng(seed)
    t_rng = np.random.default_rng([seed, 1])
    if init is not None:
        init = np.asarray(init, np.float32)
        if init.shape != geo.shape:
            raise OptionError(f"init must have shape {geo.shape} (B, H, W, C) in [0, 1], got {init.shape}")
        params = [np.array(a, np.float32) for a in p.from_image(init)]
    else:
        params = p.init(rng, geo.shape)
    traces0, t0 = fns.traces[0], time.perf_counter()
    initial = np.array(be.to_numpy(fns.evaluate(params)[0]), np.float32)
    adam = Adam(params, lr)
    history = np.empty((steps, n), np.float32)
    first_step = 0.0
    for step in range(steps):
        ts = time.perf_counter()
        _, aux, grads = fns.grad(params, *chain.sample(t_rng, n, geo.h, geo.w))
        history[step] = be.to_numpy(aux[0])
        adam.step(params, [np.asarray(be.to_numpy(g), np.float32) for g in grads])
        if step == 0:
            first_step = time.perf_counter() - ts
        if report is not None:
            report(step + 1, steps, history[step])
    values, image = fns.evaluate(params)
    final = np.array(be.to_numpy(values), np.float32)
    image01 = np.asarray(be.to_numpy(image), np.float32)
    images = np.clip(np.floor(image01 * 255.0 + 0.5), 0, 255).astype(np.uint8)
    if not np.all(np.isfinite(final)):
        log.warning("the objective is not finite after %d steps (lr=%g); try a smaller lr", steps, lr)
    seconds = time.perf_counter() - t0
    log.debug("maximize %s: %d steps of %d images in %.2fs", objective.name, steps, n, seconds)
    name = transforms if isinstance(transforms, str) else ("none" if transforms is None else "custom")
    settings = {
        "steps": steps,
        "lr": lr,
        "param": p.kind,
        "param_repr": repr(p),
        "transforms": repr(chain),
        "transforms_name": name,
        "tv": tv,
        "l2": l2,
        "seed": seed,
        "size": (geo.h, geo.w),
        "batch": n,
        "value_map": vmap.describe(),
        "backend": backend.current(),
        "seconds": seconds,
        "first_step_seconds": first_step,
        "traces": fns.traces[0] - traces0,
        "layer": _layer_of(objective),
        "redirect_relu": bool(redirect_relu),
        "route": route,
    }
    labels = objective.labels or tuple(str(i) for i in range(n))
    return MaxResult(images, history, initial, final, objective.name, tuple(labels), settings)


def _layer_of(objective: Objective) -> str:
    layers = {str(need.layer) for need in objective.needs if need.layer is not None}
    return layers.pop() if len(layers) == 1 else ""


def maximize_channels(
    model: Any,
    layer: str | int,
    channels: ChannelSpec = "16",
    *,
    input_shape: tuple[int, ...] | None = None,
    **kwargs: Any,
) -> MaxResult:
    """Visualize many channels of ``layer`` in ONE optimization: image ``b`` maximizes channel ``ks[b]``.

    Args:
        model: The Keras model.
        layer: Layer path, unique name or index.
        channels: A channel spec (see :mod:`convscope.render.channels`): ``"16"`` = the first 16,
            ``"0-7,12"``, ``[3, 5]``, ``"all"``. ``top-k`` specs need data and are refused.
        input_shape: Only needed to build an unbuilt model.
        **kwargs: Passed to :func:`maximize` (``steps``, ``lr``, ``param``, ``seed``, ...; not ``batch``).

    Returns:
        A :class:`~convscope.featvis.result.MaxResult` whose labels are the channel numbers.
    """
    if "batch" in kwargs:
        raise OptionError("maximize_channels sets the batch itself (one image per channel); drop batch=")
    model = ensure_built(model, input_shape)
    n = layer_channels(model, layer, kwargs.get("size"), input_shape)
    plan = parse_channels(channels, n)
    if plan.kind == "top":
        raise OptionError(
            f"channel spec {channels!r} ranks channels by activation data, which feature "
            "visualization does not have; give a count like '16' or a list like '0-7,12'"
        )
    ks = [int(k) for k in plan.resolve()]
    result = maximize(model, objs.channels(layer, ks), **kwargs)
    return replace(result, settings={**result.settings, "n_channels": n})
