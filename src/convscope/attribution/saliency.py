"""Input-gradient attributions: vanilla saliency, SmoothGrad and Integrated Gradients.

They work at the input resolution (no target layer). SmoothGrad and IG evaluate the gradient at many
points per image; the points of all images are streamed through the compiled pass in batches of
``batch_size`` rows and reduced on the fly, so memory stays bounded by one batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from convscope.attribution.activation import broadcast_baseline
from convscope.attribution.base import Attribution, check_gradients
from convscope.attribution.facts import ModelFacts
from convscope.attribution.targets import TargetPlan
from convscope.errors import OptionError
from convscope.models.tree import LayerNode
from convscope.probe.select import Selector

Block = tuple[int, np.ndarray, np.ndarray]  # (image index, points (m, ...), weights (m,))


class InputAttribution(Attribution):
    """Base of the input-gradient methods: gradients at ``x`` and weighted sums of gradients at many points."""

    at_input = True

    def at_x(
        self, x: np.ndarray, plan: TargetPlan, facts: ModelFacts
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``dS/dx``, scores, classes at ``x``, and the one-hot rows with top-1 classes resolved."""
        grad, scores, classes = self.input_gradients(x, plan.selection(), plan, facts)
        sel = self.fixed_selection(x, plan, facts, classes)
        return grad, scores, classes, sel

    def weighted_gradients(
        self, blocks: Iterator[Block], x: np.ndarray, sel: np.ndarray, plan: TargetPlan, facts: ModelFacts
    ) -> np.ndarray:
        """``out[i] = sum_r w_r * dS_i/dx(point_r)`` over the points of image ``i``, shaped like ``x``."""
        out = np.zeros(x.shape, np.float64)
        points: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        weights: list[np.ndarray] = []

        def flush(all_rows: bool) -> None:
            while points and (all_rows or sum(len(p) for p in points) >= self.batch_size):
                batch, who, wts = np.concatenate(points), np.concatenate(owners), np.concatenate(weights)
                m = min(self.batch_size, len(batch))
                grad, _, _ = self.input_gradients(batch[:m], sel[who[:m]], plan, facts)
                np.add.at(out, who[:m], grad.astype(np.float64) * wts[:m].reshape(-1, *([1] * (x.ndim - 1))))
                points[:], owners[:], weights[:] = (
                    ([batch[m:]], [who[m:]], [wts[m:]]) if m < len(batch) else ([], [], [])
                )

        for image, pts, wts in blocks:
            points.append(pts.astype(np.float32, copy=False))
            owners.append(np.full(len(pts), image))
            weights.append(np.asarray(wts, np.float64))
            flush(False)
        flush(True)
        return out.astype(np.float32)


class Saliency(InputAttribution):
    """Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks:
    Visualising Image Classification Models and Saliency Maps", ICLR Workshop 2014).

    ``M_ij = max_c |dS/dx_ijc|``.
    """

    name = "saliency"

    def attribute(
        self, x: np.ndarray, plan: TargetPlan, facts: ModelFacts, node: LayerNode | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        grad, scores, classes, _ = self.at_x(x, plan, facts)
        check_gradients(grad, "the input")
        return np.abs(grad).max(axis=self.channel_axis(facts)), classes, scores


class SmoothGrad(InputAttribution):
    """SmoothGrad (Smilkov et al., "SmoothGrad: removing noise by adding noise", ICML Workshop 2017).

    ``g_hat(x) = 1/n sum_{r=1..n} dS/dx (x + eps_r)``, ``eps_r ~ N(0, s^2)``, with
    ``s = sigma * (max(x) - min(x))`` per image; ``M_ij = max_c |g_hat_ijc|`` (as saliency).
    Noise is drawn in numpy from ``seed``, image by image, so results are reproducible and identical on
    every backend and for every batch size.

    Args:
        n: The noisy copies per image (the paper uses 50; 25 is usually enough).
        sigma: The noise's standard deviation as a fraction of each image's value range (the paper's
            "noise level", 10-20% works well; 0 gives saliency).
        seed: Seed of the noise.
    """

    name = "smoothgrad"

    def __init__(
        self,
        model: Any,
        layer: Selector | None = None,
        *,
        n: int = 25,
        sigma: float = 0.15,
        seed: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(model, layer, **options)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise OptionError(f"n (noisy copies per image) must be an integer >= 1, got {n!r}")
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma >= 0:
            raise OptionError(f"sigma must be a number >= 0 (a fraction of the input range), got {sigma!r}")
        self.n, self.sigma, self.seed = n, float(sigma), seed

    def attribute(
        self, x: np.ndarray, plan: TargetPlan, facts: ModelFacts, node: LayerNode | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, scores, classes, sel = self.at_x(x, plan, facts)
        rng = np.random.default_rng(self.seed)
        flat = x.reshape(len(x), -1)
        std = self.sigma * (flat.max(axis=1) - flat.min(axis=1))
        weights = np.full(self.n, 1.0 / self.n)

        def blocks() -> Iterator[Block]:
            for i in range(len(x)):
                noise = rng.standard_normal((self.n, *x.shape[1:]), dtype=np.float32)
                yield i, x[i] + np.float32(std[i]) * noise, weights

        mean = self.weighted_gradients(blocks(), x, sel, plan, facts)
        check_gradients(mean, "the input")
        return np.abs(mean).max(axis=self.channel_axis(facts)), classes, scores


class IntegratedGradients(InputAttribution):
    """Integrated Gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017).

    ``IG(x) = (x - x') * integral_0^1 dS/dx (x' + a (x - x')) da``, approximated with ``steps`` intervals:
    ``rule="trapezoid"`` evaluates ``a = 0, 1/steps, ..., 1`` with weights ``1/(2 steps)`` at the ends and
    ``1/steps`` inside; ``rule="midpoint"`` evaluates ``a = (m + 1/2)/steps``. Completeness:
    ``sum IG(x) ~= S(x) - S(x')``. ``raw`` is ``IG`` summed over input channels (signed); ``maps`` show
    its absolute value.

    Args:
        steps: Number of intervals (default 64).
        baseline: ``x'``: ``None``/0 for zeros, a number, one sample or one per image.
        rule: ``"trapezoid"`` or ``"midpoint"``.
    """

    name = "integrated_gradients"
    signed = True
    RULES = ("trapezoid", "midpoint")

    def __init__(
        self,
        model: Any,
        layer: Selector | None = None,
        *,
        steps: int = 64,
        baseline: Any = None,
        rule: str = "trapezoid",
        **options: Any,
    ) -> None:
        super().__init__(model, layer, **options)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise OptionError(f"steps must be an integer >= 1, got {steps!r}")
        if rule not in self.RULES:
            raise OptionError(f"rule must be one of {', '.join(self.RULES)}, got {rule!r}")
        self.steps, self.baseline, self.rule = steps, baseline, rule

    def alphas(self) -> tuple[np.ndarray, np.ndarray]:
        """The interpolation points ``a`` and their quadrature weights (summing to 1)."""
        if self.rule == "midpoint":
            return (np.arange(self.steps) + 0.5) / self.steps, np.full(self.steps, 1.0 / self.steps)
        weights = np.full(self.steps + 1, 1.0 / self.steps)
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, self.steps + 1), weights

    def attribute(
        self, x: np.ndarray, plan: TargetPlan, facts: ModelFacts, node: LayerNode | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, scores, classes, sel = self.at_x(x, plan, facts)
        base = broadcast_baseline(self.baseline, x)
        alphas, weights = self.alphas()
        shape = (-1, *([1] * (x.ndim - 1)))

        def blocks() -> Iterator[Block]:
            for i in range(len(x)):
                a = alphas.astype(np.float32).reshape(shape)
                yield i, base[i] + a * (x[i] - base[i]), weights

        mean = self.weighted_gradients(blocks(), x, sel, plan, facts)
        check_gradients(mean, "the input")
        return ((x - base) * mean).sum(axis=self.channel_axis(facts)), classes, scores
