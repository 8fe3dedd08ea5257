"""Score-CAM: channel weights from how much each activation map, used as a mask, raises the score."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from convscope.attribution.base import Attribution, channel_sum
from convscope.attribution.facts import ModelFacts
from convscope.attribution.targets import TargetPlan
from convscope.attribution.upsample import make_resampler, normalize01
from convscope.errors import InputError, OptionError
from convscope.models.tree import LayerNode
from convscope.probe.select import Selector


def broadcast_baseline(baseline: Any, x: np.ndarray, what: str = "baseline") -> np.ndarray:
    """``baseline`` (a number, one sample, or one per image) as an array shaped like ``x``.

    Raises:
        InputError: The shape fits neither one sample nor the batch.
    """
    base = np.asarray(0.0 if baseline is None else baseline, dtype=np.float32)
    if base.ndim == 0 or base.shape == x.shape[1:] or base.shape == x.shape:
        return np.ascontiguousarray(np.broadcast_to(base, x.shape))
    raise InputError(
        f"{what} must be a number, one sample shaped {x.shape[1:]} or a batch shaped {x.shape}; "
        f"got shape {base.shape}"
    )


class ScoreCAM(Attribution):
    """Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
    Networks", CVPR Workshops 2020).

    Each channel map ``A^k`` is upsampled to the input and min-max normalized to ``H^k`` in [0, 1]; the
    masked input ``X_b + H^k * (X - X_b)`` (``X * H^k`` for the zero baseline) is scored, and the weight is
    the score increase over the baseline: ``w_k = s(X_b + H^k (X - X_b)) - s(X_b)``; ``L = ReLU(sum_k w_k
    A^k)``. ``s`` is the softmax probability of the target class, as in the paper (``use_logits=True``
    scores logits instead). Only the ``max_channels`` channels with the highest mean activation of each
    image are scored (the others get weight 0); masked inputs run in batches of ``batch_size``.

    Args:
        model: As :class:`~convscope.attribution.base.Attribution`.
        layer: As :class:`~convscope.attribution.base.Attribution`.
        max_channels: At most this many channels are scored per image.
        baseline: ``X_b``: a number, one sample, or one per image (default 0, a black image).
        use_logits: Score pre-softmax logits instead of probabilities (default False, as in the paper).
        batch_size: As :class:`~convscope.attribution.base.Attribution`.
        upsample: As :class:`~convscope.attribution.base.Attribution`.
        compile: As :class:`~convscope.attribution.base.Attribution`.
        tokens: As :class:`~convscope.attribution.base.Attribution`.
    """

    name = "scorecam"

    def __init__(
        self,
        model: Any,
        layer: Selector | None = None,
        *,
        max_channels: int = 256,
        baseline: Any = 0.0,
        use_logits: bool = False,
        batch_size: int = 64,
        upsample: str = "grid",
        compile: bool = True,
        tokens: tuple[int, int] | str | None = None,
    ) -> None:
        super().__init__(
            model,
            layer,
            use_logits=use_logits,
            batch_size=batch_size,
            upsample=upsample,
            compile=compile,
            tokens=tokens,
        )
        if isinstance(max_channels, bool) or not isinstance(max_channels, int) or max_channels < 1:
            raise OptionError(f"max_channels must be an integer >= 1, got {max_channels!r}")
        self.max_channels = max_channels
        self.baseline = baseline

    def _apply_softmax(self, facts: ModelFacts, plan: TargetPlan) -> bool:
        """Softmax the output when it is taken as logits: no softmax found and no callable target."""
        return not self.use_logits and plan.class_like and facts.squashes[plan.output] is None

    def score_kind(self, facts: ModelFacts, plan: TargetPlan) -> tuple[str, bool]:
        if plan.class_like and not self.use_logits:
            return "probability", False
        return super().score_kind(facts, plan)

    def attribute(
        self, x: np.ndarray, plan: TargetPlan, facts: ModelFacts, node: LayerNode | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert node is not None
        if self.layer is None and len(facts.outputs) > 1:
            # masking the input moves every output, so Score-CAM cannot tell by itself that the automatic
            # layer feeds only another head; one pooled gradient of the first image can (ZeroGradient makes
            # the base walk back to an earlier layer that reaches the target)
            self.layer_gradients(x[:1], replace(plan, sel=plan.sel[:1]), facts, node, pooled=True)
        soft = self._apply_softmax(facts, plan)
        act, scores, classes = self.forward(x, plan.selection(), plan, facts, node, apply_softmax=soft)
        assert act is not None
        sel = self.fixed_selection(x, plan, facts, classes)  # top-1 / predicted region fixed at x
        base = broadcast_baseline(self.baseline, x)
        _, base_scores, _ = self.forward(base, sel, plan, facts, None, apply_softmax=soft)

        n, h, w, c = act.shape
        k = min(self.max_channels, c)
        top = np.argsort(-act.mean(axis=(1, 2)), axis=1, kind="stable")[:, :k]  # (N, k) channel ids
        chosen = np.take_along_axis(act, top[:, None, None, :], axis=3)  # (N, h, w, k)
        first = facts.data_format == "channels_first"
        resample = make_resampler(
            self.model,
            node.path,
            tuple(x.shape[1:]),
            (h, w),
            tuple(x.shape[2:4] if first else x.shape[1:3]),
            self.upsample,
        )
        masked_scores = np.empty(n * k, np.float32)
        for rows in self.batches(n * k):
            image, channel = np.divmod(np.arange(rows.start, rows.stop), k)
            masks = normalize01(resample(chosen[image, :, :, channel]))  # (m, H, W)
            masks = masks[:, None] if first else masks[..., None]
            inputs = base[image] + masks * (x[image] - base[image])
            _, masked_scores[rows], _ = self.forward(
                inputs, sel[image], plan, facts, None, apply_softmax=soft
            )
        weights = masked_scores.reshape(n, k) - base_scores[:, None]
        return channel_sum(chosen, weights), classes, scores
