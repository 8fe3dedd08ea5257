"""Faithfulness metrics: every metric against a naive per-image, per-step reference that calls the Keras
model directly; ROAD's imputation on hand-computed cases; the random baseline; bad input; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("scipy")

from evalref import FRACTIONS, STEPS, TOL, predict, prob, reference, road_dense  # noqa: E402

from convscope.attribution import (  # noqa: E402
    Evaluation,
    cam,
    evaluate,
    perturb,
)
from convscope.attribution.evaluate import RANDOM  # noqa: E402
from convscope.errors import AttributionError, InputError, OptionError  # noqa: E402


# -- fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    """A seeded 6x6x2 CNN ending in a softmax over 3 classes."""
    keras.utils.set_random_seed(7)
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax", name="probs"),
    ], name="tiny")
    return model


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (3, 6, 6, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def maps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    return {"a": rng.random((3, 6, 6)).astype(np.float32), "b": rng.normal(size=(3, 6, 6)).astype(np.float32)}


CLASSES = [0, 2, 1]


def check(got, ref) -> None:
    np.testing.assert_allclose(got.deletion, ref["deletion"], atol=TOL)
    np.testing.assert_allclose(got.insertion, ref["insertion"], atol=TOL)
    np.testing.assert_allclose(got.deletion_auc, ref["deletion_auc"], atol=TOL)
    np.testing.assert_allclose(got.insertion_auc, ref["insertion_auc"], atol=TOL)
    np.testing.assert_allclose(got.road_morf, ref["morf"], atol=TOL)
    np.testing.assert_allclose(got.road_lerf, ref["lerf"], atol=TOL)
    np.testing.assert_allclose(got.drop, ref["drop"], atol=1e-3)  # percent: 1e-5 of a probability
    np.testing.assert_array_equal(got.increase, ref["increase"])
    assert got.average_drop == pytest.approx(float(np.mean(ref["drop"])), abs=1e-3)
    assert got.increase_in_confidence == pytest.approx(100 * float(np.mean(ref["increase"])))


# -- every metric equals the reference ------------------------------------------------------------------------
def test_every_metric_equals_the_naive_reference(tiny, images, maps):
    ev = evaluate(tiny, images, maps, target=CLASSES, steps=STEPS, fractions=FRACTIONS, deletion=0.0,
                  insertion=0.5, road_noise=0.0, seed=3)
    assert isinstance(ev, Evaluation) and ev.names == ("a", "b", RANDOM)
    assert ev.score == "probability" and ev.targets == tuple(CLASSES)
    zeros, halves = np.zeros_like(images), np.full_like(images, 0.5)
    for name in ("a", "b"):
        check(ev[name], reference(tiny, images, maps[name], CLASSES, deletion=zeros, insertion=halves))
    # the random baseline row: image i's map is default_rng([seed, 1, i]).random((H, W))
    random_maps = np.stack([np.random.default_rng([3, 1, i]).random((6, 6)) for i in range(3)]).astype(np.float32)
    check(ev.random, reference(tiny, images, random_maps, CLASSES, deletion=zeros, insertion=halves))
    assert ev.deletion == "0" and ev.insertion == "0.5"


def test_blurred_insertion_and_blurred_deletion_follow_scipy(tiny, images, maps):
    from scipy.ndimage import gaussian_filter

    blurred = np.stack([np.stack([gaussian_filter(images[i, :, :, c], 1.5, mode="reflect") for c in range(2)], -1)
                        for i in range(3)])
    ev = evaluate(tiny, images, {"a": maps["a"]}, target=CLASSES, steps=STEPS, fractions=FRACTIONS,
                  deletion="blur", insertion="blur", blur_sigma=1.5, road_noise=0.0)
    check(ev["a"], reference(tiny, images, maps["a"], CLASSES, deletion=blurred, insertion=blurred))
    assert ev.insertion == "the blurred image (sigma 1.5 px)"


def test_results_are_independent_of_chunks_and_batches_and_seeded(tiny, images, maps):
    kwargs = dict(target=CLASSES, steps=STEPS, fractions=FRACTIONS)
    whole = evaluate(tiny, images, maps, **kwargs)  # default ROAD noise
    pieces = evaluate(tiny, images, maps, **kwargs, chunk_mb=1e-5, batch_size=5)  # one image per chunk
    again = evaluate(tiny, images, maps, **kwargs, seed=1)
    for a, b, c in zip(whole.methods, pieces.methods, again.methods):
        for field in ("deletion", "insertion", "road_morf", "road_lerf", "drop"):
            np.testing.assert_allclose(getattr(a, field), getattr(b, field), atol=1e-6)
        if a.method != RANDOM:  # the seed moves only the random maps' curves (and ROAD's noise)
            np.testing.assert_allclose(a.deletion, c.deletion, atol=1e-6)
    assert not np.allclose(whole.random.deletion, again.random.deletion)  # another seed, other random maps
    quiet = evaluate(tiny, images, maps, **kwargs, road_noise=0.0)
    assert not np.allclose(whole["a"].road_morf, quiet["a"].road_morf)  # the noise is there


def test_cam_results_are_evaluated_on_the_classes_they_explain(tiny, images):
    results = [cam(tiny, images, "gradcam", target=CLASSES), cam(tiny, images, "layercam", target=CLASSES)]
    ev = evaluate(tiny, images, results, steps=3)
    assert ev.names == ("gradcam", "layercam", RANDOM) and ev.targets == tuple(CLASSES)
    assert ev["gradcam"].deletion.shape == (3, 4) and ev["gradcam"].road_morf.shape == (3, 5)
    np.testing.assert_allclose(ev.scores, [prob(tiny, images[i], c) for i, c in enumerate(CLASSES)], atol=TOL)
    np.testing.assert_allclose(ev["gradcam"].deletion[:, 0], ev.scores)  # step 0: nothing removed
    np.testing.assert_allclose(ev["gradcam"].insertion[:, -1], ev.scores)  # last step: everything back
    rows = ev.table()
    assert [r["method"] for r in rows] == ["gradcam", "layercam", RANDOM]
    assert rows[0]["deletion_auc"] == pytest.approx(float(ev["gradcam"].deletion_auc.mean()))
    data = json.loads(json.dumps(ev.to_json()))
    assert data["format"] == "convscope-evaluation/1" and set(data["methods"]) == {"gradcam", "layercam", RANDOM}
    assert len(data["methods"]["gradcam"]["deletion_curve"][0]) == 4
    assert set(ev.versus_random("deletion_auc")) == {"gradcam", "layercam"}
    with pytest.raises(ValueError):
        ev.scores[0] = 1.0  # read-only arrays
    single = evaluate(tiny, images, results[0], steps=2, fractions=[0.5])
    assert single.names == ("gradcam", RANDOM)


def test_top1_and_callable_targets_and_score_kinds(tiny, images, maps):
    top = predict(tiny, images).argmax(axis=1)
    ev = evaluate(tiny, images, maps, target="top1", steps=2, fractions=[0.5])
    assert ev.targets == tuple(int(t) for t in top) and ev.score == "probability"
    logits = evaluate(tiny, images, maps, target=CLASSES, steps=2, fractions=[0.5], softmax=False)
    assert logits.score == "logit" and not np.allclose(logits.scores, ev.scores)
    custom = evaluate(tiny, images, maps, target=lambda out: out[:, 0] - out[:, 1], steps=2, fractions=[0.5])
    assert custom.score == "custom" and custom.targets == (-1, -1, -1)


# -- ROAD's imputation ----------------------------------------------------------------------------------------
def test_road_imputation_by_hand():
    image = np.array([[1.0, 2.0, 4.0], [8.0, 100.0, 16.0], [32.0, 64.0, 128.0]], np.float32)[None, :, :, None]
    centre = np.zeros((1, 3, 3), bool)
    centre[0, 1, 1] = True
    out = perturb.road_impute(image, centre)
    # edge neighbours weigh 1/6, diagonal ones 1/12: (2 + 8 + 16 + 64) / 6 + (1 + 4 + 32 + 128) / 12
    assert out[0, 1, 1, 0] == pytest.approx(90 / 6 + 165 / 12, abs=1e-5)
    kept = ~centre[0]
    np.testing.assert_array_equal(out[0, kept], image[0, kept])
    # a corner: only 3 neighbours inside, weights 1/6, 1/6, 1/12 renormalized by their sum 5/12
    corner = np.zeros((1, 3, 3), bool)
    corner[0, 0, 0] = True
    assert perturb.road_impute(image, corner)[0, 0, 0, 0] == pytest.approx((2 / 6 + 8 / 6 + 100 / 12) / (5 / 12))


def test_road_imputation_equals_a_dense_solve_on_both_solvers(monkeypatch):
    rng = np.random.default_rng(4)
    images = rng.random((6, 9, 7, 3))
    removed = rng.random((6, 9, 7)) < np.linspace(0.1, 0.9, 6)[:, None, None]
    banded = perturb.road_impute(images, removed)
    for i in range(6):
        np.testing.assert_allclose(banded[i], road_dense(images[i], removed[i]), atol=1e-5)
    monkeypatch.setattr(perturb, "BANDED_MAX", -1)  # sparse LU
    monkeypatch.setattr(perturb, "MAX_UNKNOWNS", 50)  # several groups
    np.testing.assert_allclose(perturb.road_impute(images, removed), banded, atol=1e-5)
    noise = rng.normal(size=images.shape)
    noisy = perturb.road_impute(images, removed, noise)
    np.testing.assert_allclose(noisy[removed], banded[removed] + noise[removed], atol=1e-5)
    np.testing.assert_allclose(noisy[~removed], images[~removed], atol=1e-6)
    with pytest.raises(AttributionError, match=r"removes all 63 pixels of image 0"):
        perturb.road_impute(images[:1], np.ones((1, 9, 7), bool))


# -- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "error", "pattern"), [
    ({"steps": 0}, OptionError, r"steps must be an integer >= 1, got 0"),
    ({"fractions": (0.0, 0.5)}, OptionError, r"strictly between 0 and 1, got \[0.0, 0.5\] \(0 outside"),
    ({"fractions": (0.5, 1.0)}, OptionError, r"\(1 outside \(0, 1\)\)"),
    ({"fractions": ()}, OptionError, r"non-empty list"),
    ({"deletion": "gray"}, OptionError, r"deletion 'gray' is not understood; accepted: 'blur', a number"),
    ({"insertion": np.zeros((5, 5))}, InputError, r"insertion must be a number, one sample shaped \(6, 6, 2\)"),
    ({"seed": -1}, OptionError, r"seed must be an integer >= 0, got -1"),
    ({"road_noise": -0.1}, OptionError, r"road_noise must be a number >= 0"),
    ({"batch_size": 0}, OptionError, r"batch_size must be an integer >= 1"),
])
def test_bad_options_raise_the_library_errors(tiny, images, maps, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        evaluate(tiny, images, maps, target=CLASSES, **kwargs)


def test_bad_maps_and_targets_raise_the_library_errors(tiny, images, maps):
    with pytest.raises(InputError, match=r"maps of 'a' have shape \(3, 5, 6\); expected \(N, H, W\) = \(3, 6, 6\)"):
        evaluate(tiny, images, {"a": maps["a"][:, :5]}, target=CLASSES)
    with pytest.raises(InputError, match=r"maps of 'a' have shape \(2, 6, 6\)"):
        evaluate(tiny, images, {"a": maps["a"][:2]}, target=CLASSES)
    with pytest.raises(AttributionError, match=r"maps given as arrays need target="):
        evaluate(tiny, images, maps)
    with pytest.raises(OptionError, match=r"'random' is taken by the random-map baseline"):
        evaluate(tiny, images, {RANDOM: maps["a"]}, target=CLASSES)
    with pytest.raises(OptionError, match=r"results is empty"):
        evaluate(tiny, images, {}, target=CLASSES)
    a = cam(tiny, images, "gradcam", target=CLASSES)
    with pytest.raises(OptionError, match=r"two results are named 'gradcam'; pass a dict"):
        evaluate(tiny, images, [a, a])
    b = cam(tiny, images, "gradcam", target=[1, 1, 1])
    with pytest.raises(AttributionError, match=r"the results explain different classes"):
        evaluate(tiny, images, {"x": a, "y": b})
    with pytest.raises(AttributionError, match=r"class index 3 .* out of range"):
        evaluate(tiny, images, maps, target=[0, 3, 1])
    with pytest.raises(InputError, match=r"images shaped \(N, H, W, C\)"):
        evaluate(tiny, images[0, :, :, 0], maps, target=CLASSES)


# -- the CLI --------------------------------------------------------------------------------------------------------
def run(capsys, *args: object) -> tuple[int, str, str]:
    from convscope.present.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory) -> tuple[list[Path], np.ndarray]:
    from PIL import Image

    from convscope.models.zoo import sample_digits

    folder = tmp_path_factory.mktemp("eval-digits")
    x, _ = sample_digits()
    grays = (x[[0, 5, 9], :, :, 0] * 255).round().astype(np.uint8)
    paths = []
    for i, g in enumerate(grays):
        paths.append(folder / f"d{i}.png")
        Image.fromarray(g, "L").save(paths[-1])
    return paths, (grays.astype(np.float32) / 255.0)[..., None]


@pytest.mark.tf_only
def test_cli_evaluate_prints_one_table_and_writes_json_and_png(capsys, tmp_path, mnist, digit_files):
    from PIL import Image

    paths, x = digit_files
    out = tmp_path / "cam"
    code, stdout, err = run(capsys, "cam", "mnist-cnn", *paths, "--method", "gradcam", "--method", "gradcam++",
                            "--evaluate", "--out", out)
    assert code == 0, err
    assert (out / "evaluation.json").is_file() and (out / "evaluation.png").is_file()
    assert str(out / "evaluation.png") in stdout
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method ") and "deletion AUC" in line)
    table = [line.split()[0] for line in lines[header + 2: header + 5]]
    assert table == ["gradcam", "gradcampp", RANDOM] and "ROAD MoRF" in lines[header]
    assert sum("deletion AUC" in line and line.startswith("method") for line in lines) == 1  # one table
    data = json.loads((out / "evaluation.json").read_text())
    assert data["model"] == "mnist-cnn" and data["inputs"] == ["d0", "d1", "d2"] and data["score"] == "probability"
    assert set(data["methods"]) == {"gradcam", "gradcampp", RANDOM}
    picture = Image.open(out / "evaluation.png")
    assert picture.format == "PNG" and picture.size[0] > 1000
    # the same numbers as the API on the same decoded pixels
    results = [cam(mnist, x, "gradcam"), cam(mnist, x, "gradcampp")]
    ev = evaluate(mnist, x, results)
    got = {row["method"]: row for row in data["summary"]}
    for row in ev.table():
        for key in ("deletion_auc", "insertion_auc", "road_morf", "road_lerf", "average_drop"):
            assert got[row["method"]][key] == pytest.approx(row[key], abs=1e-4), (row["method"], key)


@pytest.mark.tf_only
@pytest.mark.parametrize(("args", "needles"), [
    (["--evaluate", "--steps", "3"], ["no such option --steps"]),
    (["--evaluat"], ["no such option --evaluat", "--evaluate"]),
    (["--evaluate", "--class", "10"], ["class index 10", "0..9"]),
])
def test_cli_evaluate_bad_options_are_one_line_exit_2(capsys, tmp_path, digit_files, args, needles):
    out = tmp_path / "cam"
    code, _, err = run(capsys, "cam", "mnist-cnn", digit_files[0][0], *args, "--out", out)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), (code, err)
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not out.exists()
