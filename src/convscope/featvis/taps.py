"""What the objectives read from a forward pass, and the cheapest way to get it.

An objective declares :class:`Need` s (a layer's output, its input, "channel means" of a layer, the
logits). :class:`TapPlan` resolves them against a model once; :func:`run_taps` then runs the model while
temporarily wrapping the tapped layers' ``call`` (in the instance ``__dict__``, restored in ``finally``,
exactly like :mod:`convscope.models.capture`), and hands the objectives a :class:`Taps` to read from.

Two savings make a batch of many channels cheap:

* **Early exit.** Once every tap has been recorded the wrapper raises :class:`_StopForward`; the rest of
  the model is neither traced nor run (and so gets no backward pass either).
* **Channels from the input.** The mean of channel ``k_b`` of a plain ``Conv2D`` for image ``b`` needs
  one output channel per image. The layer's *input* is tapped (the layer itself never runs) and that
  channel is computed with the layer's own kernel, bias and activation (:mod:`~convscope.featvis.fastconv`).
  The weights are read inside the wrapped call, so under JAX they are the traced values of
  ``stateless_call``, never stale constants.

The same trick makes channels of a ReLU/ReLU6 ``Activation`` layer (the BN -> activation blocks of
MobileNet/EfficientNet) come from the layer's input with ``redirect_relu``: the channel is picked from the
pre-activation and the redirected ReLU applied, so a channel that is off everywhere at the start still gets
a gradient (otherwise its picture stays flat gray).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from convscope.errors import LayerNotFound, OptionError
from convscope.featvis.fastconv import (
    DEFAULT_ROUTE,
    ROUTES,
    act_name,
    can_compute,
    channel_maps,
    check_channels,
    redirected,
)
from convscope.models.tree import LayerNode, layer_tree
from convscope.probe.select import select_layers

Tensor = Any
NeedKind = Literal["output", "input", "channel", "logits"]
_MISSING = object()
_SQUASH: Final = frozenset({"softmax", "sigmoid", "log_softmax"})


class _StopForward(Exception):
    """Raised inside a tapped call once everything needed has been recorded."""


@dataclass(frozen=True)
class Need:
    """Something an objective reads: ``kind`` of layer ``layer`` (a selector; ``None`` = the output layer)."""

    layer: str | int | None
    kind: NeedKind


@dataclass
class _Tap:
    node: LayerNode
    want_input: bool = False
    want_output: bool = False
    want_params: bool = False


@dataclass
class TapPlan:
    """Needs resolved against one model: which layers to wrap and what to record from each.

    Attributes:
        model_name: For messages.
        taps: One entry per tapped layer.
        routes: For each :class:`Need`, ``(tap index, how)`` with ``how`` in ``output``, ``input``,
            ``slice`` / ``taps`` / ``conv`` (channel means computed from the input, see
            :mod:`~convscope.featvis.fastconv`), ``act`` (a ReLU Activation's channel from its input,
            redirected), ``dense`` (logits = input @ kernel + bias).
        redirect_relu: Channels computed from the input pass gradient through a ReLU that is off
            everywhere (see :func:`~convscope.featvis.fastconv.redirected`).
        route: How channel means of a plain Conv2D are computed: ``slice``, ``taps``, ``conv`` or ``output``
            (let the layer run and read its output); ``None`` = the backend's faster one.
    """

    model_name: str
    redirect_relu: bool = False
    route: str = "slice"
    taps: list[_Tap] = field(default_factory=list)
    routes: dict[Need, tuple[int, str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, model: Any, needs: Sequence[Need], *, redirect_relu: bool = False, route: str | None = None
    ) -> TapPlan:
        """Resolve ``needs`` (see the module docstring).

        Raises:
            LayerNotFound: a selector matches no layer or several; the message lists valid layer paths.
            OptionError: logits were asked for but the output layer's pre-activation cannot be reached.
        """
        nodes = layer_tree(model)
        if route is None:
            import keras

            route = DEFAULT_ROUTE.get(keras.backend.backend(), "conv")
        if route not in (*ROUTES, "output"):
            raise OptionError(f"unknown channel route {route!r}; valid: {', '.join(ROUTES)}, output")
        plan = cls(model.name, redirect_relu, route)
        index: dict[int, int] = {}
        outputs = {id(find_layer(nodes, n.layer, model.name).layer) for n in needs if n.kind == "output"}

        def tap(node: LayerNode) -> _Tap:
            if id(node.layer) not in index:
                index[id(node.layer)] = len(plan.taps)
                plan.taps.append(_Tap(node))
            return plan.taps[index[id(node.layer)]]

        for need in needs:
            if need.kind == "logits":
                node = logit_layer(nodes, need)
            else:
                node = find_layer(nodes, need.layer, model.name)
            t, how = tap(node), str(need.kind)
            if need.kind == "channel":
                free = route != "output" and id(node.layer) not in outputs
                if free and can_compute(node.layer):
                    how = route
                elif free and redirect_relu and is_relu_activation(node.layer):
                    how = "act"
                else:
                    how = "output"
            elif need.kind == "logits":
                how = logit_route(node.layer)
            t.want_input |= how in ("input", "dense", "act", *ROUTES)
            t.want_output |= how == "output"
            t.want_params |= how in ("dense", *ROUTES)
            plan.routes[need] = (index[id(node.layer)], how)
        return plan


def is_relu_activation(layer: Any) -> bool:
    """True for a Keras ``Activation`` layer applying ``relu`` or ``relu6`` (see the module docstring)."""
    return type(layer).__name__ == "Activation" and act_name(layer) in ("relu", "relu6")


def find_layer(nodes: Sequence[LayerNode], selector: str | int | None, model_name: str) -> LayerNode:
    """The one layer ``selector`` names (path, unique name or index).

    Raises:
        LayerNotFound: no match or several; the message lists the valid layer paths.
    """
    valid = ", ".join(n.path for n in nodes[:60]) + (", ..." if len(nodes) > 60 else "")
    try:
        hits = select_layers(nodes, selector, model_name=model_name) if selector is not None else []
    except LayerNotFound as err:
        raise LayerNotFound(f"{err}; valid layer paths: {valid}") from None
    if len(hits) != 1:
        raise LayerNotFound(
            f"layer selector {selector!r} must name exactly one layer of model "
            f"{model_name!r}, it matched {len(hits)}; valid layer paths: {valid}"
        )
    return hits[0]


def logit_layer(nodes: Sequence[LayerNode], need: Need) -> LayerNode:
    """The layer whose pre-activation is the logits: ``need.layer`` or the model's last leaf layer."""
    if need.layer is not None:
        return find_layer(nodes, need.layer, "model")
    leaves = [n for n in nodes if not n.is_container]
    if not leaves:
        raise LayerNotFound("the model has no layers to read logits from")
    return leaves[-1]


def logit_route(layer: Any) -> str:
    """``output`` (already linear), ``input`` (a Softmax/Activation layer) or ``dense`` (bypass its act).

    Raises:
        OptionError: a squashing activation on a layer other than Dense.
    """
    name = type(layer).__name__
    if name == "Softmax" or (name == "Activation" and act_name(layer) in _SQUASH):
        return "input"
    if act_name(layer) not in _SQUASH:
        return "output"
    if name == "Dense":
        return "dense"
    raise OptionError(
        f"cannot reach the logits before the {act_name(layer)} of layer {layer.name!r} "
        f"({name}); give the pre-activation layer explicitly, e.g. class_logit(k, layer=...)"
    )


class Taps:
    """What one forward pass recorded, read by objectives (all tensors have the batch axis first)."""

    def __init__(self, plan: TapPlan, records: dict[int, dict[str, Any]], image: Tensor) -> None:
        self.plan, self.records, self.image = plan, records, image

    def _get(self, need: Need) -> tuple[dict[str, Any], str, Any]:
        index, how = self.plan.routes[need]
        rec = self.records.get(index)
        if rec is None:
            raise OptionError(f"layer {self.plan.taps[index].node.path!r} did not run in the forward pass")
        return rec, how, self.plan.taps[index].node.layer

    def layer(self, layer: str | int | None, kind: NeedKind = "output") -> Any:
        """The Keras layer object behind a need (e.g. to read its ``data_format``)."""
        return self._get(Need(layer, kind))[2]

    def output(self, layer: str | int) -> Tensor:
        """The layer's output (its first call)."""
        return self._get(Need(layer, "output"))[0]["output"]

    def input(self, layer: str | int) -> Tensor:
        """The layer's first positional input (its first call)."""
        return self._get(Need(layer, "input"))[0]["input"]

    def channel_means(self, layer: str | int, ks: np.ndarray) -> Tensor:
        """``(B,)``: for image ``b`` the spatial mean of channel ``ks[b]`` of ``layer``'s output."""
        from keras import ops

        rec, how, lay = self._get(Need(layer, "channel"))
        ks = np.asarray(ks, np.int64)
        if how in ROUTES:
            maps = channel_maps(
                rec["input"], rec["params"], ks, lay, route=how, redirect=self.plan.redirect_relu
            )
            return ops.mean(maps, axis=(1, 2))
        if how == "act":  # the channel's pre-activation, then the ReLU with the redirected gradient
            pre = rec["input"]
            check_channels(ks, int(pre.shape[-1]), lay.name)
            onehot = ops.convert_to_tensor(np.eye(int(pre.shape[-1]), dtype=np.float32)[ks])
            z = ops.sum(pre * ops.reshape(onehot, (len(ks),) + (1,) * (len(pre.shape) - 2) + (-1,)), axis=-1)
            return ops.mean(redirected(z, lay.activation), axis=tuple(range(1, len(z.shape))))
        out = rec["output"]
        if getattr(lay, "data_format", "channels_last") == "channels_first" and len(out.shape) > 2:
            out = ops.moveaxis(out, 1, -1)
        check_channels(ks, int(out.shape[-1]), lay.name)
        means = ops.mean(out, axis=tuple(range(1, len(out.shape) - 1))) if len(out.shape) > 2 else out
        onehot = ops.convert_to_tensor(np.eye(int(out.shape[-1]), dtype=np.float32)[ks])
        return ops.sum(means * onehot, axis=-1)

    def logits(self, layer: str | int | None = None) -> Tensor:
        """``(B, K)`` pre-activation of the output (or given) layer."""
        from keras import ops

        rec, how, _ = self._get(Need(layer, "logits"))
        if how == "dense":
            kernel, bias = rec["params"]
            z = ops.matmul(rec["input"], kernel)
            return z if bias is None else z + bias
        return rec["input"] if how == "input" else rec["output"]


def _read(variable: Any) -> Tensor:
    from keras import ops

    return None if variable is None else ops.convert_to_tensor(variable)


def _float32(tensor: Any) -> Any:
    """A floating tensor of another precision (a mixed-precision layer's float16) as float32; else as is.

    Objectives are computed in float32 from what the layers record, whatever their compute dtype; the
    cast is differentiable, so gradients still flow back through the float16 model.
    """
    import keras

    dtype = getattr(tensor, "dtype", None)
    if dtype is None:
        return tensor
    name = keras.backend.standardize_dtype(dtype)
    return keras.ops.cast(tensor, "float32") if name in ("float16", "bfloat16", "float64") else tensor


@contextmanager
def _wrapped(plan: TapPlan, records: dict[int, dict[str, Any]]) -> Iterator[None]:
    """Wrap each tapped layer's ``call`` for the duration of the block (restored in ``finally``)."""
    pending = set(range(len(plan.taps)))

    def wrap(original: Callable[..., Any], i: int, t: _Tap) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if i not in pending:  # later calls of the layer run untouched
                return original(*args, **kwargs)
            rec = records.setdefault(i, {})
            if t.want_input:
                rec["input"] = _float32(args[0] if args else kwargs.get("inputs"))
            if t.want_params:
                lay = t.node.layer
                rec["params"] = (_read(lay.kernel), _read(getattr(lay, "bias", None)))
            if not t.want_output:
                pending.discard(i)
                if not pending:
                    raise _StopForward
                return original(*args, **kwargs)
            out = original(*args, **kwargs)
            rec["output"] = _float32(out)
            pending.discard(i)
            if not pending:
                raise _StopForward
            return out

        return wrapper

    patched: list[tuple[Any, str, Any]] = []
    try:
        for i, t in enumerate(plan.taps):
            layer = t.node.layer
            attr = "quantized_call" if getattr(layer, "quantization_mode", None) is not None else "call"
            state = vars(layer)
            patched.append((layer, attr, state.get(attr, _MISSING)))
            state[attr] = wrap(getattr(layer, attr), i, t)
        yield
    finally:
        for layer, attr, previous in reversed(patched):
            if previous is _MISSING:
                vars(layer).pop(attr, None)
            else:
                vars(layer)[attr] = previous


def run_taps(plan: TapPlan, call: Callable[[Tensor], Tensor], x: Tensor, image: Tensor) -> Taps:
    """Run ``call(x)`` (the model) with ``plan``'s layers tapped; stop as soon as all are recorded."""
    records: dict[int, dict[str, Any]] = {}
    if plan.taps:
        with _wrapped(plan, records), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
            try:
                call(x)
            except _StopForward:
                pass
    return Taps(plan, records, image)
