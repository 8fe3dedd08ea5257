"""The attribution base class: everything the methods share, so that each method is a few lines.

:class:`Attribution` is a template method. ``__call__`` validates the images and the target, resolves the
target layer, asks the subclass for its map (:meth:`Attribution.attribute`), then rectifies it (ReLU; IG:
absolute value), upsamples it to the input resolution and scales each image's map to [0, 1]. Subclasses
use the helpers here for the passes they need — :meth:`layer_gradients` (activation and gradient at the
target layer), :meth:`input_gradients`, :meth:`forward` — which run compiled, batched and cached per
(model, layer, settings).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from convscope.attribution.engines import Forward, InputGradients, LayerGradients, Outputs, cached
from convscope.attribution.facts import ModelFacts, OutputSoftmax, analyze
from convscope.attribution.result import CamResult
from convscope.attribution.targets import Target, TargetPlan, plan_targets
from convscope.attribution.upsample import UPSAMPLE_MODES, make_resampler, normalize01
from convscope.errors import AttributionError, InputError, OptionError
from convscope.models.spec import ensure_built, input_shapes
from convscope.models.tokens import parse_tokens
from convscope.models.tree import LayerNode
from convscope.probe.select import Selector

log = logging.getLogger(__name__)


def relu(a: np.ndarray) -> np.ndarray:
    """``max(a, 0)`` as float32."""
    return np.maximum(np.asarray(a, np.float32), 0.0)


def channel_sum(act: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_k weights[n, k] * act[n, :, :, k]``: ``(N, h, w, C), (N, C) -> (N, h, w)`` (a batched matmul)."""
    n, h, w, c = act.shape
    return np.matmul(act.reshape(n, h * w, c), weights.astype(act.dtype)[:, :, None]).reshape(n, h, w)


class ZeroGradient(AttributionError):
    """The target score does not depend (differentiably) on the layer explained."""


def check_gradients(grads: np.ndarray, where: str) -> None:
    """Raise if ``grads`` is zero everywhere (the score does not depend on ``where`` differentiably).

    Raises:
        AttributionError: Naming ``where`` and suggesting what to do.
    """
    if not np.any(grads):
        raise ZeroGradient(
            f"the gradient of the target score with respect to {where} is zero everywhere for all "
            f"{len(grads)} images: the path from it to the model output is not differentiable (an argmax, "
            "cast, rounding or stop_gradient inside the model, or a class-token head that this layer's tokens "
            "never reach?); choose another layer, or method='scorecam', which needs no gradients"
        )
    dead = np.flatnonzero(~grads.reshape(len(grads), -1).any(axis=1)).tolist()
    if dead:
        log.warning("zero gradient with respect to %s for images %s: their maps are blank", where, dead)


class Attribution:
    """Base class of the attribution methods (see the module doc).

    Args:
        model: A Keras model of any kind (never modified: no compile, no rename; patches last one traced
            pass). An unbuilt model is built by its first call on the images, as Keras would.
        layer: Target layer selector (path ``outer/inner``, name, index, ...); ``None`` picks the last
            spatial layer feeding the classifier head. Ignored by input-gradient methods.
        use_logits: Explain the pre-softmax logit when the model ends in a softmax.
        batch_size: Rows per compiled pass.
        upsample: ``"grid"`` (receptive-field placement, falling back to stretching) or ``"stretch"``.
        compile: Compile the passes (``tf.function`` / ``jax.jit``) — on by default.
        tokens: ``(h, w)`` (or ``"HxW"``) grid of a token layer ``(N, T, C)`` whose grid is not found
            automatically (see :mod:`convscope.models.tokens`).
    """

    name: ClassVar[str] = ""
    #: The map is computed at the input (saliency family), not at a layer.
    at_input: ClassVar[bool] = False
    #: ``raw`` is signed (IG): it is not ReLU'd and the displayed map is ``|raw|``.
    signed: ClassVar[bool] = False

    def __init__(
        self,
        model: Any,
        layer: Selector | None = None,
        *,
        use_logits: bool = True,
        batch_size: int = 64,
        upsample: str = "grid",
        compile: bool = True,
        tokens: tuple[int, int] | str | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise OptionError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if upsample not in UPSAMPLE_MODES:
            raise OptionError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {upsample!r}")
        self.model = model
        self.layer = layer
        self.use_logits = bool(use_logits)
        self.batch_size = batch_size
        self.upsample = upsample
        self.compile = compile
        self.tokens = parse_tokens(tokens)

    # -- the template ----------------------------------------------------------------------------------
    def __call__(self, x: Any, target: Target = "top1") -> CamResult:
        """Explain ``target`` for each image of ``x``.

        Args:
            x: ``(N, H, W, C)`` preprocessed model input (``(H, W, C)`` = one image; channels first if the
                model is).
            target: Any form of :mod:`convscope.attribution.targets`: ``"top1"``, ``"class:IDX"``,
                ``"output:NAME[IDX]"``, ``"seg:CLS"`` (or a :class:`~convscope.attribution.targets.SegTarget`
                with a region), a class index, one index per image, or ``f(outputs) -> (N,)`` scores.

        Returns:
            A :class:`CamResult` with ``maps (N, H, W)`` in [0, 1] and ``raw`` at the layer resolution.
        """
        x = self._prepare(x)
        if not getattr(self.model, "built", True):  # built by its first call, as Keras would
            self.model = ensure_built(self.model, tuple(x.shape[1:]))
        facts = analyze(self.model, x)
        first = facts.data_format == "channels_first"
        in_size = x.shape[2:4] if first else x.shape[1:3]
        plan = plan_targets(target, len(x), facts.outputs, (int(in_size[0]), int(in_size[1])), first)
        node = None if self.at_input else facts.target_layer(self.layer, self.tokens)
        grid = facts.token_grid(node.path, self.tokens) if node is not None else None
        log.debug(
            "%s on %d images of %s: layer %s%s, target %s on output %s (bypassed: %s)",
            self.name,
            len(x),
            facts.name,
            node.path if node else "input",
            f" as a {grid} token grid" if grid else "",
            plan.target,
            plan.output,
            [s.path for s in self.squashes(facts, plan)],
        )
        try:
            raw, classes, scores = self.attribute(x, plan, facts, node)
        except ZeroGradient as first:
            if self.layer is not None or node is None or grid is not None:
                raise
            found = self._earlier_layer(x, plan, facts, node)
            if found is None:
                raise first from None
            raw, classes, scores, node = found
        raw = np.asarray(raw, np.float32) if self.signed else relu(raw)
        place = facts.grid_layer(node.path, grid) if node is not None and grid is not None else None
        resample = make_resampler(
            self.model,
            place if place is not None else node.path if node else "",
            tuple(x.shape[1:]),
            tuple(raw.shape[1:3]),
            tuple(in_size),
            self.upsample,
        )
        maps = normalize01(resample(np.abs(raw) if self.signed else raw))
        kind, used = self.score_kind(facts, plan)
        return CamResult(
            maps=maps,
            raw=raw,
            method=self.name,
            layer=node.path if node else "input",
            targets=tuple(int(c) for c in classes),
            scores=np.asarray(scores, np.float32),
            used_logits=used,
            score=kind,
            upsample=resample.mode,
            target=str(plan.target),
            explained=plan.describe,
            plan=replace(plan, sel=plan.selection(np.asarray(classes))),
        )

    def _earlier_layer(
        self, x: np.ndarray, plan: TargetPlan, facts: ModelFacts, node: LayerNode
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, LayerNode] | None:
        """The automatic layer feeds only another output's head (e.g. the box branch of a two-head model):
        walk back to the latest earlier feature layer the explained score depends on (``None``: none does)."""
        for alt in facts.auto_fallbacks(node.path):
            try:
                raw, classes, scores = self.attribute(x, plan, facts, alt)
            except ZeroGradient:
                continue
            log.info("auto layer: %s does not reach target %s; using %s", node.path, plan.target, alt.path)
            return raw, classes, scores, alt
        return None

    def attribute(
        self, x: np.ndarray, plan: TargetPlan, facts: ModelFacts, node: LayerNode | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The method's map before rectification: ``(raw (N, h, w), classes (N,), scores (N,))``."""
        raise NotImplementedError

    # -- shared pieces ---------------------------------------------------------------------------------
    def _prepare(self, x: Any) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"attribution needs a numeric image array (N, H, W, C), got dtype {arr.dtype}")
        shapes = input_shapes(self.model)
        if shapes and len(shapes) > 1:
            raise InputError(
                f"model {self.model.name!r} has {len(shapes)} inputs; attribution supports "
                "single-input image models"
            )
        if shapes and arr.ndim == len(shapes[0]):
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[0] == 0:
            raise InputError(
                f"attribution needs images shaped (N, H, W, C) (or one (H, W, C) image), "
                f"got shape {arr.shape}"
            )
        return np.ascontiguousarray(arr, dtype=np.float32)

    def squashes(self, facts: ModelFacts, plan: TargetPlan) -> tuple[OutputSoftmax, ...]:
        """The output softmax/sigmoid layers to bypass: the explained output's (every output's for a
        callable target); none with ``use_logits=False``."""
        if not self.use_logits:
            return ()
        chosen = facts.squashes if plan.fn is not None else (facts.squashes[plan.output],)
        return tuple(s for s in chosen if s is not None)

    def score_kind(self, facts: ModelFacts, plan: TargetPlan) -> tuple[str, bool]:
        """``(CamResult.score, CamResult.used_logits)`` for this method's scores."""
        used = bool(self.squashes(facts, plan))
        if plan.fn is not None:
            return "custom", used
        squash = facts.squashes[plan.output]
        return ("logit" if used else "probability" if squash is not None else "output"), used

    def batches(self, n: int, size: int | None = None) -> Iterator[slice]:
        """Consecutive row slices of at most ``size`` (default :attr:`batch_size`) rows."""
        step = size or self.batch_size
        for start in range(0, n, step):
            yield slice(start, min(start + step, n))

    def _engine(
        self, kind: str, path: str, facts: ModelFacts, plan: TargetPlan, factory: Any, *extra: Any
    ) -> Any:
        squashes = tuple(s.path for s in self.squashes(facts, plan))
        key = (kind, path, squashes, plan.kind, self.compile, *extra)
        return cached(self.model, key, factory)

    def _names(self, facts: ModelFacts) -> tuple[str, ...]:
        return tuple(o.name for o in facts.outputs)

    def _as_grid(self, facts: ModelFacts, node: LayerNode, *arrays: np.ndarray) -> list[np.ndarray]:
        """Channels-last ``(N, h, w, C)`` views of a layer's arrays (token layers laid out on their grid)."""
        grid = facts.token_grid(node.path, self.tokens)
        if grid is not None:
            return [grid.to_grid(a) for a in arrays]
        if facts.data_format == "channels_first":
            return [np.moveaxis(a, 1, -1) for a in arrays]
        return list(arrays)

    def layer_gradients(
        self, x: np.ndarray, plan: TargetPlan, facts: ModelFacts, node: LayerNode, *, pooled: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``A`` and ``dS/dA`` at ``node``, channels last ``(N, h, w, C)``, then ``scores``, ``classes``.

        With ``pooled`` the gradient comes summed over the positions, ``(N, 1, 1, C)``, reduced inside the
        compiled pass (see :class:`LayerGradients`); the zero-gradient check then sees those sums.

        Raises:
            AttributionError: The gradient is zero everywhere (non-differentiable path).
        """
        grid = facts.token_grid(node.path, self.tokens)
        pooled = pooled and grid is None  # a token layer's sum would include the extra (class) tokens
        engine = self._engine(
            "layer-grad",
            node.path,
            facts,
            plan,
            lambda: LayerGradients(
                self.model,
                node.layer,
                self.squashes(facts, plan),
                plan,
                self._names(facts),
                compile=self.compile,
            ),
            pooled,
        )
        sel, shape = plan.selection(), facts.shapes[node.path]
        if pooled:  # size 1 on the spatial axes: the offset's gradient is dS/dA summed over positions
            shape = (shape[0], 1, 1) if facts.data_format == "channels_first" else (1, 1, shape[-1])
        parts = [engine(x[rows], sel[rows], shape) for rows in self.batches(len(x))]
        act, grad, scores, classes = (p[0] if len(p) == 1 else np.concatenate(p) for p in zip(*parts))
        act, grad = self._as_grid(facts, node, act, grad)
        check_gradients(grad, f"layer {node.path!r}")
        return act, grad, scores, classes

    def input_gradients(
        self, x: np.ndarray, sel: np.ndarray, plan: TargetPlan, facts: ModelFacts
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``dS/dx`` (shaped like ``x``), ``scores`` and ``classes`` for rows ``x`` with one-hot ``sel``."""
        engine = self._engine(
            "input-grad",
            "",
            facts,
            plan,
            lambda: InputGradients(
                self.model, self.squashes(facts, plan), plan, self._names(facts), compile=self.compile
            ),
        )
        parts = [engine(x[rows], sel[rows]) for rows in self.batches(len(x))]
        return tuple(np.concatenate(p) for p in zip(*parts))  # type: ignore[return-value]

    def forward(
        self,
        x: np.ndarray,
        sel: np.ndarray,
        plan: TargetPlan,
        facts: ModelFacts,
        node: LayerNode | None,
        *,
        apply_softmax: bool = False,
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Forward only: ``A`` at ``node`` (channels last; ``None`` without a node), ``scores``, ``classes``."""
        layer = node.layer if node is not None else None
        engine = self._engine(
            "forward",
            node.path if node else "",
            facts,
            plan,
            lambda: Forward(
                self.model,
                layer,
                self.squashes(facts, plan),
                plan,
                self._names(facts),
                apply_softmax=apply_softmax,
                compile=self.compile,
            ),
            apply_softmax,
        )
        parts = [engine(x[rows], sel[rows]) for rows in self.batches(len(x))]
        acts, scores, classes = zip(*parts)
        act = np.concatenate(acts) if node is not None else None
        if act is not None and node is not None:
            act = self._as_grid(facts, node, act)[0]
        return act, np.concatenate(scores), np.concatenate(classes)

    def fixed_selection(
        self, x: np.ndarray, plan: TargetPlan, facts: ModelFacts, classes: np.ndarray
    ) -> np.ndarray:
        """``sel`` with each image's choice made at ``x`` fixed, for passes over perturbed copies of ``x``:
        the element picked by a top-1 target, or the pixels predicted as the class of a ``seg`` target
        without a region (else the region would move with the perturbation)."""
        if plan.mode == "element":
            return plan.selection(classes)
        if plan.mode != "seg" or plan.sel.any(axis=1).all():
            return plan.sel
        engine = self._engine(
            "outputs", "", facts, plan, lambda: Outputs(self.model, plan.output, compile=self.compile)
        )
        return plan.predicted(np.concatenate([engine(x[rows]) for rows in self.batches(len(x))]))

    def channel_axis(self, facts: ModelFacts) -> int:
        """The channel axis of the model input."""
        return 1 if facts.data_format == "channels_first" else -1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model.name!r}, layer={self.layer!r})"
