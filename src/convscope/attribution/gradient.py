"""Gradient-weighted class activation maps: Grad-CAM, Grad-CAM++ and LayerCAM.

All three need the same pass — the target layer's activation ``A (N, h, w, C)`` and the gradient
``g = dS/dA`` of the target score ``S`` — and differ only in how they combine the two, which is all a
subclass supplies (:meth:`GradientCAM.combine`, in numpy). The base class applies the final ReLU,
upsamples and normalizes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from convscope.attribution.base import Attribution, channel_sum, relu
from convscope.attribution.facts import ModelFacts
from convscope.attribution.targets import TargetPlan
from convscope.models.tree import LayerNode


class GradientCAM(Attribution):
    """Base of the CAMs computed from ``A`` and ``dS/dA`` at the target layer."""

    #: :meth:`combine` only needs ``dS/dA`` summed over the positions: get it as ``(N, 1, 1, C)``, reduced
    #: inside the compiled pass, instead of the full gradient.
    pooled: ClassVar[bool] = False

    def attribute(
        self, x: np.ndarray, plan: TargetPlan, facts: ModelFacts, node: LayerNode | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert node is not None
        act, grad, scores, classes = self.layer_gradients(x, plan, facts, node, pooled=self.pooled)
        return self.combine(act, grad), classes, scores

    @staticmethod
    def combine(act: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The map before the final ReLU.

        Args:
            act: ``(N, h, w, C)`` activations ``A``.
            grad: ``(N, h, w, C)`` gradients ``dS/dA`` (``(N, 1, 1, C)``, their sum over positions, when
                :attr:`pooled`).

        Returns:
            ``(N, h, w)``.
        """
        raise NotImplementedError


class GradCAM(GradientCAM):
    """Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
    Localization", ICCV 2017).

    ``w_k = 1/(h*w) * sum_ij dS/dA_ij^k`` (global-average-pooled gradients);
    ``L = ReLU(sum_k w_k A^k)``. Only the sums over positions are needed, so they are taken inside the
    compiled pass (:attr:`pooled`); :meth:`combine` accepts the full gradient too.
    """

    name = "gradcam"
    pooled = True

    @staticmethod
    def combine(act: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return channel_sum(act, grad.sum(axis=(1, 2)) / (act.shape[1] * act.shape[2]))


class GradCAMPlusPlus(GradientCAM):
    """Grad-CAM++ (Chattopadhay et al., "Grad-CAM++: Generalized Gradient-based Visual Explanations for
    Deep Convolutional Networks", WACV 2018), closed form of their Eq. 19 under ``Y = exp(S)``.

    With ``g = dS/dA_ij^k`` (higher derivatives of ``S`` taken as zero, exact for piecewise-linear nets):
    ``alpha_ij^k = g^2 / (2 g^2 + (sum_ab A_ab^k) g^3)`` (0 where ``g = 0``);
    ``w_k = sum_ij alpha_ij^k ReLU(g)``; ``L = ReLU(sum_k w_k A^k)``. The positive factor ``exp(S)`` common
    to all ``w_k`` of an image is dropped (it cancels in the normalized map; ``raw`` omits it).
    """

    name = "gradcampp"  # one id for files, npz keys and URLs; "gradcam++" is an accepted alias

    @staticmethod
    def combine(act: np.ndarray, grad: np.ndarray) -> np.ndarray:
        g2 = grad * grad
        denom = 2.0 * g2 + act.sum(axis=(1, 2), keepdims=True) * g2 * grad
        ok = (g2 > 0) & (denom != 0)
        alpha = np.where(ok, g2 / np.where(ok, denom, 1.0), 0.0)
        return channel_sum(act, (alpha * relu(grad)).sum(axis=(1, 2)))


class LayerCAM(GradientCAM):
    """LayerCAM (Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization",
    IEEE TIP 2021).

    Element-wise weights ``w_ij^k = ReLU(dS/dA_ij^k)``; ``L = ReLU(sum_k w^k * A^k)``.
    """

    name = "layercam"

    @staticmethod
    def combine(act: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return (relu(grad) * act).sum(axis=-1)


__all__: list[Any] = ["GradCAM", "GradCAMPlusPlus", "GradientCAM", "LayerCAM"]
