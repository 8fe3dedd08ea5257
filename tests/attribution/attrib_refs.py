"""Independent numpy references for the attribution tests (no convscope code is used here).

Everything is float64: convolutions by explicit loops over kernel offsets, the CAM formulas written
straight from the papers, min-max scaling.
"""

from __future__ import annotations

import numpy as np


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, padding: str) -> np.ndarray:
    """Cross-correlation ``(N, H, W, C) * (kh, kw, C, O) + b``, 'same' (zero pad, odd kernel) or 'valid'."""
    x = x.astype(np.float64)
    kh, kw = kernel.shape[:2]
    if padding == "same":
        x = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros((x.shape[0], oh, ow, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nhwc,co->nhwo", x[:, i:i + oh, j:j + ow, :], kernel[i, j].astype(np.float64))
    return out + bias


def relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0.0)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def minmax(m: np.ndarray) -> np.ndarray:
    """Per-image min-max to [0, 1]; constant -> 0."""
    out = np.zeros_like(m, dtype=np.float64)
    for i, a in enumerate(m):
        span = a.max() - a.min()
        out[i] = (a - a.min()) / span if span > 0 else 0.0
    return out


def gradcam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Selvaraju et al.: ReLU(sum_k mean_ij(g^k) A^k)."""
    n, h, w, c = a.shape
    out = np.zeros((n, h, w))
    for i in range(n):
        for k in range(c):
            out[i] += g[i, :, :, k].mean() * a[i, :, :, k]
    return relu(out)


def gradcampp(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Chattopadhay et al. Eq. 19 with Y = exp(S), the common exp(S) factor dropped."""
    n, h, w, c = a.shape
    out = np.zeros((n, h, w))
    for i in range(n):
        for k in range(c):
            gk, total = g[i, :, :, k], a[i, :, :, k].sum()
            alpha = np.zeros_like(gk)
            nz = gk != 0
            alpha[nz] = gk[nz] ** 2 / (2 * gk[nz] ** 2 + total * gk[nz] ** 3)
            out[i] += (alpha * relu(gk)).sum() * a[i, :, :, k]
    return relu(out)


def layercam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Jiang et al.: ReLU(sum_k ReLU(g^k) * A^k)."""
    return relu((relu(g) * a).sum(axis=-1))


def close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-5) -> None:
    """max |actual - expected| <= rtol * max(1, max |expected|) (float32 computations vs float64 references)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err, scale = np.max(np.abs(actual - expected)), max(1.0, float(np.max(np.abs(expected))))
    assert err <= rtol * scale, f"max abs diff {err:.3g} > {rtol:g} * {scale:.3g}"


def to_numpy(t) -> np.ndarray:
    """A backend tensor or Keras variable as a numpy copy (without the torch ``__array__`` deprecation path)."""
    value = getattr(t, "value", t)
    if hasattr(value, "detach"):  # torch
        return value.detach().cpu().numpy().copy()
    if hasattr(value, "numpy"):  # TensorFlow tensor or variable
        return np.array(value.numpy())
    return np.array(value)  # jax


def weights(layer) -> list[np.ndarray]:
    """A layer's weights as numpy copies."""
    return [to_numpy(w) for w in layer.weights]
