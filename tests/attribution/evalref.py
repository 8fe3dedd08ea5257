"""The naive reference of the faithfulness tests: every metric by plain loops over images and steps, calling
the Keras model on one image at a time; ROAD's imputation as a dense system built pixel by pixel."""

from __future__ import annotations

import warnings

import numpy as np

from convscope.attribution import perturb

STEPS = 4
FRACTIONS = (0.25, 0.5, 0.75)
TOL = 1e-5


def predict(model, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # Keras' own torch -> numpy conversion warns about numpy 2's copy=
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(model.predict_on_batch(x.astype(np.float32)))


def prob(model, image: np.ndarray, cls: int) -> float:
    return float(predict(model, image[None])[0, cls])


def order(m: np.ndarray, seed: int | None = None) -> list[tuple[int, int]]:
    """Pixels by decreasing map value; equal values in the order of evaluate's tie keys for ``seed``
    (``numpy.random.default_rng([seed, 0]).permutation(H * W)``, lower key first), or raster order."""
    flat = m.ravel()
    keys = np.arange(flat.size) if seed is None else np.random.default_rng([seed, 0]).permutation(flat.size)
    idx = sorted(range(flat.size), key=lambda p: (-float(flat[p]), int(keys[p])))
    return [divmod(p, m.shape[1]) for p in idx]


def road_dense(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """ROAD's linear imputation with a dense matrix built pixel by pixel (no noise)."""
    h, w, c = image.shape
    unknown = {(i, j): k for k, (i, j) in enumerate(zip(*np.nonzero(removed)))}
    a = np.zeros((len(unknown), len(unknown)))
    b = np.zeros((len(unknown), c))
    for (i, j), k in unknown.items():
        for di, dj, wt in perturb.ROAD_WEIGHTS:
            ii, jj = i + di, j + dj
            if 0 <= ii < h and 0 <= jj < w:
                a[k, k] += wt
                if removed[ii, jj]:
                    a[k, unknown[(ii, jj)]] -= wt
                else:
                    b[k] += wt * image[ii, jj]
    out = image.astype(np.float64).copy()
    if unknown:
        v = np.linalg.solve(a, b)
        for (i, j), k in unknown.items():
            out[i, j] = v[k]
    return out


def reference(model, x, m, classes, *, deletion, insertion, steps=STEPS, fractions=FRACTIONS, score=None,
              seed=None):
    """Every metric of one method by plain loops over images and steps (``score(image, i)``: the score of
    image ``i``'s target on one image; default the probability of ``classes[i]``)."""
    n, h, w, _ = x.shape
    p = h * w
    out = {k: [] for k in ("deletion", "insertion", "morf", "lerf", "drop", "increase")}
    for i in range(n):
        cls = classes[i]

        def value(image, i=i, cls=cls):
            return prob(model, image, cls) if score is None else score(image, i)

        y = value(x[i])
        ranked = order(m[i], seed)
        dels, inss = [], []
        for k in range(steps + 1):
            count = int(np.floor(k / steps * p + 0.5))
            gone = np.zeros((h, w), bool)
            for r, c in ranked[:count]:
                gone[r, c] = True
            dels.append(value(np.where(gone[..., None], deletion[i], x[i])))
            inss.append(value(np.where(gone[..., None], x[i], insertion[i])))
        out["deletion"].append(dels)
        out["insertion"].append(inss)
        morf, lerf = [], []
        for f in fractions:
            count = min(int(np.floor(f * p + 0.5)), p - 1)
            most = np.zeros((h, w), bool)
            least = np.zeros((h, w), bool)
            for r, c in ranked[:count]:
                most[r, c] = True
            for r, c in ranked[p - count:]:
                least[r, c] = True
            morf.append(value(road_dense(x[i], most)))
            lerf.append(value(road_dense(x[i], least)))
        out["morf"].append(morf)
        out["lerf"].append(lerf)
        scaled = (m[i] - m[i].min()) / (m[i].max() - m[i].min())
        o = value(deletion[i] + scaled[..., None] * (x[i] - deletion[i]))
        out["drop"].append(max(0.0, y - o) / y * 100 if y > 0 else np.nan)
        out["increase"].append(o > y)
    res = {k: np.array(v) for k, v in out.items()}
    res["deletion_auc"] = np.trapezoid(res["deletion"], dx=1 / steps, axis=1)
    res["insertion_auc"] = np.trapezoid(res["insertion"], dx=1 / steps, axis=1)
    return res


