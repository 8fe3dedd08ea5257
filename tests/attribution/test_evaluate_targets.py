"""Faithfulness of maps of every target kind (seg: regions, output elements) and the random baseline's grid,
each against the naive per-image, per-step loop of test_evaluate.py with the target's score computed
directly from the model's logits."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("scipy")

import target_models as T  # noqa: E402
from evalref import TOL, predict, prob, reference  # noqa: E402
from PIL import Image  # noqa: E402

from convscope.attribution import cam, evaluate  # noqa: E402
from convscope.attribution.evaluate import RANDOM  # noqa: E402
from convscope.errors import AttributionError, OptionError  # noqa: E402

X = np.random.default_rng(5).random((3, 16, 16, 3)).astype(np.float32)
MAPS = np.random.default_rng(6).random((3, 16, 16)).astype(np.float32)  # no ties
ZEROS, HALVES = np.zeros_like(X), np.full_like(X, 0.5)
SETTINGS = dict(steps=4, fractions=(0.5,), deletion=0.0, insertion=0.5, road_noise=0.0, random_grid="pixel")


@pytest.fixture(scope="module")
def segmenter() -> T.Kind:
    return T.Segmenter()


@pytest.fixture(scope="module")
def twohead() -> T.Kind:
    return T.TwoHead()


def seg_score(kind: T.Kind, cls: int):
    """``score(image, i)``: class ``cls``'s logits summed over the pixels image ``i`` (unperturbed) predicts
    as ``cls``: the region is fixed once, never re-chosen on a perturbed image."""
    logits = keras.Model(kind.model.input, kind.model.get_layer("seg_logits").output)
    region = predict(logits, X).argmax(axis=-1) == cls  # (3, 16, 16)

    def score(image: np.ndarray, i: int) -> float:
        return float((predict(logits, image[None])[0, ..., cls] * region[i]).sum())

    return score, region


def check_curves(got, ref) -> None:
    for name, key in (("deletion", "deletion"), ("insertion", "insertion"), ("road_morf", "morf"),
                      ("road_lerf", "lerf"), ("deletion_auc", "deletion_auc")):
        scale = max(1.0, float(np.abs(ref[key]).max()))
        np.testing.assert_allclose(getattr(got, name), ref[key], atol=TOL * scale, err_msg=name)


@pytest.mark.tf_only
def test_seg_target_scores_the_class_logits_over_the_region_fixed_at_the_image(segmenter):
    score, region = seg_score(segmenter, 1)
    assert region.any(axis=(1, 2)).all()  # every image predicts some class-1 pixels
    ev = evaluate(segmenter.model, X, {"m": MAPS}, target="seg:1", **SETTINGS)
    assert ev.score == "logit" and ev.explained == "seg class 1" and ev.targets == (1, 1, 1)
    check_curves(ev["m"], reference(segmenter.model, X, MAPS, [1] * 3, deletion=ZEROS, insertion=HALVES,
                                    steps=4, fractions=(0.5,), score=score))


@pytest.mark.tf_only
def test_seg_cam_results_are_evaluated_on_their_own_target(segmenter):
    results = [cam(segmenter.model, X, m, target="seg:1") for m in ("gradcam", "layercam")]
    ev = evaluate(segmenter.model, X, results, **SETTINGS)
    again = evaluate(segmenter.model, X, {r.method: r.maps for r in results}, target="seg:1", **SETTINGS)
    for name in ("gradcam", "layercam"):
        np.testing.assert_allclose(ev[name].deletion, again[name].deletion, atol=1e-4)
    score, _ = seg_score(segmenter, 1)
    np.testing.assert_allclose(ev.scores, [score(X[i], i) for i in range(3)], rtol=1e-5, atol=1e-4)
    other = cam(segmenter.model, X, "gradcam", target="seg:2")
    with pytest.raises(AttributionError, match=r"different targets \(gradcam: seg:1 .*gradcam2: seg:2"):
        evaluate(segmenter.model, X, {"gradcam": results[0], "gradcam2": other})


@pytest.mark.tf_only
def test_output_element_target_scores_that_element(twohead):
    ev = evaluate(twohead.model, X, {"m": MAPS}, target="output:box[2]", **SETTINGS)
    assert ev.explained == "output box[2]" and ev.score == "probability"  # the box head's sigmoid

    def score(image: np.ndarray, i: int) -> float:  # one element for every image
        out = twohead.model.predict_on_batch(image[None])
        return float(np.asarray(out["box"] if isinstance(out, dict) else out[1])[0, 2])

    check_curves(ev["m"], reference(twohead.model, X, MAPS, [2] * 3, deletion=ZEROS, insertion=HALVES,
                                    steps=4, fractions=(0.5,), score=score))
    # a CamResult of the box element carries its plan: evaluated without target=
    result = cam(twohead.model, X, "gradcam", target="output:box[2]")
    assert evaluate(twohead.model, X, result, **SETTINGS).explained == "output box[2]"


def test_random_maps_are_drawn_on_the_grid_of_the_maps_and_resized_bilinearly():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(4, 3, strides=4, padding="same", activation="relu", name="conv"),  # 4x4 grid
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    result = cam(model, X, "gradcam", target=[0, 1, 2], layer="conv")
    assert result.raw.shape[1:] == (4, 4)
    ev = evaluate(model, X, result, steps=4, fractions=(0.5,), deletion=0.0, insertion=0.5, road_noise=0.0,
                  seed=3)
    assert ev.random_grid == (4, 4)
    grid = [np.random.default_rng([3, 1, i]).random((4, 4)).astype(np.float32) for i in range(3)]
    maps = np.stack([np.asarray(Image.fromarray(g).resize((16, 16), Image.Resampling.BILINEAR)) for g in grid])
    ref = reference(model, X, maps, [0, 1, 2], deletion=ZEROS, insertion=HALVES, steps=4, fractions=(0.5,),
                    seed=3)  # the resized maps tie at the borders: ties in evaluate's seeded order
    assert len(np.unique(maps[0])) < maps[0].size
    check_curves(ev[RANDOM], ref)
    pixel = evaluate(model, X, result, steps=4, fractions=(0.5,), road_noise=0.0, seed=3, random_grid="pixel")
    assert pixel.random_grid == (16, 16) and not np.allclose(pixel[RANDOM].deletion, ev[RANDOM].deletion)
    given = evaluate(model, X, result, steps=4, fractions=(0.5,), road_noise=0.0, random_grid=(2, 8))
    assert given.random_grid == (2, 8) and given.to_json()["settings"]["random_grid"] == [2, 8]
    np.testing.assert_allclose(ev.scores, [prob(model, X[i], c) for i, c in enumerate([0, 1, 2])], atol=TOL)
    for bad in ("coarse", (0, 4), (17, 4), 3):
        with pytest.raises(OptionError, match=r"random_grid must be 'auto', 'pixel' or \(rows, cols\)"):
            evaluate(model, X, result, steps=2, random_grid=bad)
