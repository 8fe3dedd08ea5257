"""Adam, in place on numpy arrays: the optimizer state is tiny, so it stays off the compiled graph."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Adam:
    """Adam (Kingma & Ba) ascending the objective, in place on float32 numpy arrays."""

    def __init__(
        self, params: Sequence[np.ndarray], lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """One ascent step: ``params += lr * m_hat / (sqrt(v_hat) + eps)`` (arrays updated in place)."""
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * np.square(g)
            p += (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)
